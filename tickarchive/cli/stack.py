"""``tickarchive up | status | down | migrate``: the local stack (store/stack) and schemas."""

from __future__ import annotations

from typing import Annotated

import typer

from tickarchive.store.stack.status import ActionResult, ComponentStatus, State


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _print_actions(actions: tuple[ActionResult, ...]) -> None:
    for a in actions:
        extra = f" ({a.detail})" if a.detail else ""
        typer.echo(f"{a.name}: {a.action} in {a.seconds:.2f} s{extra}")


def _status_table(rows: tuple[ComponentStatus, ...]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tickarchive: local stack and running commands")
    for col in ("component", "state", "version", "address", "pid", "data", "dialect", "notes"):
        table.add_column(col)
    colors = {State.UP: "green", State.EXTERNAL: "green", State.DOWN: "yellow"}
    for r in rows:
        color = colors.get(r.state, "red")
        table.add_row(
            r.name,
            f"[{color}]{r.state}[/{color}]",
            r.version or "-",
            r.address,
            str(r.pid) if r.pid else "-",
            _human_bytes(r.data_bytes),
            str(r.dialect) if r.dialect else "-",
            r.detail,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


def register(app: typer.Typer) -> None:
    from tickarchive.settings import load_settings
    from tickarchive.store.stack.stack import Stack

    @app.command("up")
    def up(
        no_migrate: Annotated[bool, typer.Option("--no-migrate", help="start only, skip migrations")] = False,
        timescaledb_test: Annotated[
            bool,
            typer.Option(
                "--timescaledb-test",
                help="also serve the PGlite TimescaleDB test server on postgres.port + 1 (migrated)",
            ),
        ] = False,
    ) -> None:
        """Start QuestDB and PostgreSQL (unless running) and apply migrations."""
        report = Stack(load_settings()).up(run_migrations=not no_migrate, timescaledb_test=timescaledb_test)
        _print_actions(report.actions)
        for m in report.migrations:
            what = "applied " + ", ".join(f"V{v:03d}" for v in m.applied) if m.applied else "up to date"
            typer.echo(f"migrations {m.target}: {what} (at V{m.current:03d})")

    @app.command("down")
    def down() -> None:
        """Stop the local servers gracefully (an external PostgreSQL is left alone)."""
        from tickarchive.store.stack.running import running

        settings = load_settings()
        _print_actions(Stack(settings).down())
        for c in running(settings.paths.local_dir):
            typer.echo(f"still running: {c.name} (pid {c.pid}, {c.address}): Ctrl-C where it runs, or kill {c.pid}")

    @app.command("status")
    def status() -> None:
        """Every component: the stack's servers (up/down, version, ports, data size, warm-store
        dialect) and the collector, API, simulator and demo while they run (pid, ports)."""
        from tickarchive.store.stack.running import running

        settings = load_settings()
        rows = Stack(settings).status() + tuple(c.status() for c in running(settings.paths.local_dir))
        _status_table(rows)

    @app.command("migrate")
    def migrate_cmd() -> None:
        """Apply pending schema migrations to QuestDB and the warm store (idempotent)."""
        reports = Stack(load_settings()).migrate(timescaledb_test=True)
        for m in reports:
            what = "applied " + ", ".join(f"V{v:03d}" for v in m.applied) if m.applied else "up to date"
            typer.echo(f"migrations {m.target}: {what} (at V{m.current:03d})")

