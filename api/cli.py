"""``tickarchive api`` (serve with uvicorn) and ``tickarchive bench api``."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
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

    @bench.command("api")
    def bench_api(
        rows: Annotated[int, typer.Option("--rows", help="quotes in the instrument-day")] = 100_000,
        repeat: Annotated[int, typer.Option("--repeat", help="requests per measured query")] = 30,
        http: Annotated[
            bool, typer.Option("--http", help="over loopback HTTP to uvicorn (httpx) instead of in-process")
        ] = False,
    ) -> None:
        """p50/p95 latency: one instrument-day of quotes (hot, warm), a chain snapshot, a month of OHLCV."""
        from tickarchive.api.bench import run

        run(rows=rows, repeat=repeat, http=http)
