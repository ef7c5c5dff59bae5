"""``tickarchive rollover`` and ``tickarchive warm-retention``.

``rollover`` moves every sealed day QuestDB still holds into the warm store (or only
``--day``), verifies it, records it in ``rollover_ledger`` and drops QuestDB partitions
older than ``lifecycle.hot_retention_days`` that verified. ``warm-retention`` drops warm
months older than ``lifecycle.warm_retention_months`` whose archive verified.
(``archive export`` already reads the warm store through ``postgres.dsn`` or the local
stack's reader role: nothing to wire there.)
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from tickarchive.store.errors import RolloverError, VerificationMismatch
from tickarchive.store.hot import HotReader
from tickarchive.store.seal import US_PER_DAY

if TYPE_CHECKING:
    from tickarchive.store.rollover import RolloverReport
    from tickarchive.store.warm import LedgerRow

err = Console(stderr=True)


def _out() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=180)


def _parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise RolloverError(f"invalid day {text!r}: expected YYYY-MM-DD") from None


def _parse_now(text: str | None) -> int:
    if text is None:
        return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RolloverError(f"invalid --now {text!r}: expected ISO 8601, e.g. 2026-11-25T01:00:00Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def register(app: typer.Typer) -> None:
    @app.command("rollover")
    def rollover_cmd(
        day: Annotated[str | None, typer.Option("--day", help="only this UTC day (YYYY-MM-DD); must be sealed")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would happen; change nothing")] = False,
        table: Annotated[list[str] | None, typer.Option("--table", help="table (repeatable); default: all")] = None,
        now: Annotated[str | None, typer.Option("--now", help="pretend it is this UTC time (ISO 8601)")] = None,
        reader: Annotated[HotReader, typer.Option("--reader", help="how to read QuestDB")] = HotReader.AUTO,
        no_drop: Annotated[bool, typer.Option("--no-drop", help="never drop QuestDB partitions")] = False,
        dsn: Annotated[str | None, typer.Option("--dsn", help="warm-store DSN (owner); default: settings")] = None,
        status: Annotated[bool, typer.Option("--status", help="print the rollover ledger and exit")] = False,
    ) -> None:
        """Move sealed days QuestDB → warm store, verify, record, then drop old hot partitions."""
        from tickarchive.rich_progress import RichProgress
        from tickarchive.settings import load_settings
        from tickarchive.store import rollover as ro
        from tickarchive.store.hot import open_hot
        from tickarchive.store.warm import open_warm
        from tickarchive.tables import table as table_named

        settings = load_settings()
        with open_warm(settings, dsn) as warm:
            if status:
                _print_ledger(warm.ledger_all())
                return
            try:
                tables = tuple(table_named(t) for t in table) if table else ro.ROLLOVER_TABLES
            except KeyError as exc:
                raise RolloverError(str(exc.args[0])) from None
            order = [t.name for t in ro.ROLLOVER_TABLES]
            tables = tuple(sorted(tables, key=lambda t: order.index(t.name)))  # gaps first, trades before quotes
            options = ro.RolloverOptions.from_settings(
                settings.lifecycle, tables=tables, dry_run=dry_run, reader=reader, drop=not no_drop
            )
            with open_hot(settings) as hot, RichProgress() as progress:
                report = ro.run(hot, warm, _parse_now(now), options,
                                day=_parse_day(day) if day else None, progress=progress)
        _print_report(report)
        if not report.ok:
            for p in report.problems:
                err.print(f"  [red]{p}[/]")
            raise VerificationMismatch(
                f"{len(report.problems)} mismatch(es): those (day, table) stay in QuestDB and are marked "
                "'mismatch' in rollover_ledger; see docs/lifecycle.md"
            )

    @app.command("warm-retention")
    def warm_retention_cmd(
        today: Annotated[str | None, typer.Option("--today", help="pretend today is this day (YYYY-MM-DD)")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="print the decisions; drop nothing")] = False,
        target: Annotated[str | None, typer.Option("--target", help="archive target; default archive.target")] = None,
        dsn: Annotated[str | None, typer.Option("--dsn", help="warm-store DSN (owner); default: settings")] = None,
    ) -> None:
        """Drop warm months older than the retention whose archive verified."""
        from tickarchive.archive.export import ExportOptions
        from tickarchive.archive.targets import open_target
        from tickarchive.ops.lifecycle import warm_retention
        from tickarchive.rich_progress import RichProgress
        from tickarchive.settings import load_settings
        from tickarchive.store.warm import open_warm

        settings = load_settings()
        day = _parse_day(today) if today else dt.datetime.now(dt.UTC).date()
        tgt = open_target(target or settings.archive.target)
        with open_warm(settings, dsn) as warm, RichProgress() as progress:
            out = warm_retention(warm, tgt, day, settings.lifecycle.warm_retention_months, dry_run=dry_run,
                                 progress=progress, export_options=ExportOptions.from_settings(settings.archive))
        t = RichTable(title=f"warm retention on {day} ({settings.lifecycle.warm_retention_months} months)")
        for col in ("table", "month", "decision", "rows", "done", "detail"):
            t.add_column(col, overflow="fold")
        for o in out:
            done = "dropped" if o.dropped else ("would drop" if o.verdict.value == "drop" else "-")
            if o.reexported:
                done = f"exported again, {done}"
            t.add_row(o.table, str(o.month), o.verdict.value, "-" if o.rows < 0 else f"{o.rows:,}", done, o.detail)
        _out().print(t)

def _print_ledger(rows: list[LedgerRow]) -> None:
    t = RichTable(title="rollover_ledger")
    for col in ("day", "table", "rows hot", "rows warm", "checksum hot", "checksum warm", "status", "at"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r.day), r.table_name, str(r.rows_hot), str(r.rows_warm), r.checksum_hot or "-",
                  r.checksum_warm or "-", r.status, str(r.loaded_at)[:19])
    _out().print(t)


def _print_report(report: RolloverReport) -> None:
    out = _out()
    prefix = "(dry run) " if report.dry_run else ""
    for s in report.seals:
        state = "sealed" if s.sealed else "not sealed"
        why = f" ({'; '.join(s.reasons)})" if s.reasons else ""
        out.print(f"{prefix}{s.day}: {state}{why}")
    if report.tables:
        t = RichTable(title=f"{prefix}rollover")
        for col in ("day", "table", "action", "rows hot", "rows warm", "inserted", "checksum", "result"):
            t.add_column(col)
        for o in report.tables:
            result = "dry run" if o.dry_run else ("ok" if o.ok else "MISMATCH")
            if o.action.value == "unchanged":
                result = "ok (ledger)"
            checksum = o.checksum_hot or "-"
            t.add_row(str(o.day), o.table, ("would " if o.dry_run else "") + o.action.value, f"{o.rows_hot:,}",
                      "-" if o.rows_warm is None else f"{o.rows_warm:,}", f"{o.inserted:,}", checksum, result)
        out.print(t)
    for d in report.drops:
        out.print(f"{prefix}QuestDB {d.table} {d.day}: {d.reason}")
    late_months = sorted({f"{o.day:%Y-%m}" for o in report.tables if o.action.value == "copy late rows" and o.inserted})
    for m in late_months:
        out.print(f"late rows loaded into {m}: if that month is archived, re-export it: "
                  f"tickarchive archive export --month {m}")
    if not report.seals:
        out.print(f"{prefix}nothing to roll over: QuestDB holds no day before "
                  f"{dt.date(1970, 1, 1) + dt.timedelta(days=report.now_us // US_PER_DAY)}")
