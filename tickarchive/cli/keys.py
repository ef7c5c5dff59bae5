"""``tickarchive keys add | list | revoke | usage``: API keys and their metered usage.

Keys live in the warm store (``api_keys``, only their SHA-256; ``tickarchive.api.keys``);
the command connects as the warm store's writer role. ``add`` prints the key once: store
it, it cannot be shown again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

if TYPE_CHECKING:
    import psycopg

    from tickarchive.settings import Settings


def _conn() -> tuple[Settings, psycopg.Connection[Any]]:
    import psycopg

    from tickarchive.settings import load_settings
    from tickarchive.store.dialect import warm_dsns
    from tickarchive.store.errors import StackError

    settings = load_settings()
    dsn = warm_dsns(settings.postgres).writer
    try:
        return settings, psycopg.connect(dsn, autocommit=True, connect_timeout=5, prepare_threshold=None)
    except psycopg.OperationalError as exc:
        raise StackError(
            f"cannot reach the warm store ({exc.__class__.__name__}); is it up (`tickarchive up`) and migrated?"
        ) from None


def _out() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=160)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="API keys: issue, list, revoke, and their usage.", no_args_is_help=True)

    @group.command("add")
    def add_cmd(
        plan: Annotated[
            str, typer.Option("--plan", metavar="PLAN", help="a plan of api.plans (free, researcher, professional...)")
        ],
        label: Annotated[str, typer.Option("--label", help="who the key is for")] = "",
        json_out: Annotated[bool, typer.Option("--json", help="print key_id, plan and key as JSON")] = False,
    ) -> None:
        """Issue a key of PLAN and print it (once: only its SHA-256 is stored)."""
        from tickarchive.api.keys import add_key

        settings, conn = _conn()
        with conn:
            rec, key = add_key(conn, plan, label, set(settings.api.plans))
        if json_out:
            typer.echo(json.dumps({"key_id": rec.key_id, "plan": rec.plan, "label": rec.label, "key": key}))
            return
        typer.echo(f"key {rec.key_id} (plan {rec.plan}{', ' + label if label else ''}):\n\n  {key}\n")
        typer.echo("Send it as the X-API-Key header. It is shown only now; `tickarchive keys revoke "
                   f"{rec.key_id}` disables it.")

    @group.command("list")
    def list_cmd(
        all_keys: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
    ) -> None:
        """List keys (never the keys themselves)."""
        from tickarchive.api.keys import list_keys

        _settings, conn = _conn()
        with conn:
            keys = list_keys(conn, include_revoked=all_keys)
        t = RichTable(title="API keys")
        for col in ("key_id", "plan", "label", "created", "revoked"):
            t.add_column(col)
        for k in keys:
            t.add_row(k.key_id, k.plan, k.label, f"{k.created_at:%Y-%m-%d %H:%M}",
                      f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
        _out().print(t)
        if not keys:
            _out().print("(no keys: the API is open to loopback clients only; `tickarchive keys add --plan NAME`)")

    @group.command("revoke")
    def revoke_cmd(key_id: Annotated[str, typer.Argument(help="the key_id shown by `keys list`")]) -> None:
        """Revoke a key (the API refuses it within api.keys_refresh_s)."""
        from tickarchive.api.keys import revoke_key

        settings, conn = _conn()
        with conn:
            rec = revoke_key(conn, key_id)
        if rec is None:
            typer.secho(f"no key {key_id!r}; `tickarchive keys list --all` shows them", err=True)
            raise typer.Exit(1)
        typer.echo(f"key {key_id} revoked at {rec.revoked_at:%Y-%m-%d %H:%M:%S} UTC "
                   f"(refused within {settings.api.keys_refresh_s:g} s)")

    @group.command("usage")
    def usage_cmd(
        key_id: Annotated[str | None, typer.Option("--key", help="only this key_id")] = None,
        days: Annotated[int, typer.Option("--days", min=1, help="this many UTC days up to today")] = 7,
        json_out: Annotated[bool, typer.Option("--json", help="rows as JSON lines")] = False,
    ) -> None:
        """Usage per key and day: requests, rows, bytes, stream messages, refused requests."""
        from tickarchive.api.keys import usage

        _settings, conn = _conn()
        last = dt.datetime.now(dt.UTC).date()
        with conn:
            rows = usage(conn, key_id, last - dt.timedelta(days=days - 1), last)
        if json_out:
            for r in rows:
                typer.echo(json.dumps({**dataclasses.asdict(r), "day": r.day.isoformat()}))
            return
        t = RichTable(title=f"API usage, {days} days to {last}")
        for col in ("day", "key_id", "requests", "rows", "bytes", "stream msgs", "refused"):
            t.add_column(col, justify="left" if col in ("day", "key_id") else "right")
        for r in rows:
            t.add_row(r.day.isoformat(), r.key_id, f"{r.requests:,}", f"{r.rows:,}", f"{r.bytes:,}",
                      f"{r.stream_messages:,}", f"{r.limited:,}")
        _out().print(t)

    app.add_typer(group, name="keys")
