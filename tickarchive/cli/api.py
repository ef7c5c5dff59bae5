"""``tickarchive api``: serve the API with uvicorn.

The listening socket is bound here, before uvicorn starts, so a port another process holds
is one line naming the setting and the flag to change (not uvicorn's ``[Errno 98]``); while
it serves, ``tickarchive status`` lists it (``store/stack/running.py``).
"""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from tickarchive.errors import TickarchiveError


class ApiServeError(TickarchiveError):
    """The API cannot listen where it was asked to."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or ``ApiServeError`` naming what to change."""
    from tickarchive.store.stack.procs import env_name, port_conflict

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        change = f"choose another with --port N or setting api.port ({env_name('api.port')})"
        if exc.errno == errno.EADDRINUSE:
            raise ApiServeError(port_conflict(host, port, change)) from None
        raise ApiServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {change}") from None
    return sock


def register(app: typer.Typer) -> None:
    @app.command("api")
    def api_cmd(
        host: Annotated[str | None, typer.Option("--host", help="listen address (default api.host)")] = None,
        port: Annotated[int | None, typer.Option("--port", help="listen port (default api.port)")] = None,
    ) -> None:
        """Serve the query, streaming and health API (docs/api.md)."""
        import uvicorn

        from tickarchive.api.app import create_app, uvicorn_options
        from tickarchive.api.auth import is_loopback
        from tickarchive.api.errors import ApiError
        from tickarchive.api.keys import KeyStore
        from tickarchive.api.stores import Stores
        from tickarchive.settings import load_settings
        from tickarchive.store.stack.running import registered

        settings = load_settings()
        h = host or settings.api.host
        stores = Stores(settings)
        keys = KeyStore(stores.warm_pool, settings.api.keys_refresh_s)
        try:
            keys.refresh()
        except ApiError as exc:
            typer.secho(f"warning: API keys unreadable ({exc.detail}); serving as if none were issued", err=True)
        if keys.keys_issued == 0 and not is_loopback(h) and h not in ("localhost",):
            stores.close()
            typer.secho(
                f"error: no API key is issued, so the API is open to everyone who reaches it; it listens on "
                f"loopback only then, not on {h}. Issue a key first (`tickarchive keys add --plan NAME`) "
                "or use --host 127.0.0.1.",
                err=True,
            )
            raise typer.Exit(2)
        p = port if port is not None else settings.api.port
        try:
            sock = bind(h, p)
        except ApiServeError:
            stores.close()
            raise
        actual = sock.getsockname()[1]
        typer.echo(f"API on http://{h}:{actual} (docs http://{h}:{actual}/docs, streams ws://{h}:{actual}/stream)")
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, stores),
                log_level="info",
                access_log=False,
                **uvicorn_options(settings),
            )
        )
        with registered(settings.paths.local_dir, "api", h, {"http": actual}, f"http://{h}:{actual}/docs"):
            server.run(sockets=[sock])
