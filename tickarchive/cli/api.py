"""``tickarchive api``: serve the API with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("api")
    def api_cmd(
        host: Annotated[str | None, typer.Option("--host", help="listen address (default api.host)")] = None,
        port: Annotated[int | None, typer.Option("--port", help="listen port (default api.port)")] = None,
    ) -> None:
        """Serve the query and health API (docs/api.md)."""
        import uvicorn

        from tickarchive.api.app import create_app
        from tickarchive.settings import load_settings

        settings = load_settings()
        uvicorn.run(
            create_app(settings),
            host=host or settings.api.host,
            port=port or settings.api.port,
            log_level="info",
            access_log=False,
        )

