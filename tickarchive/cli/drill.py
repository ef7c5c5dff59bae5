"""``tickarchive drill``: the recovery drill (``tickarchive.ops.drill``) from the command line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tickarchive.ops.errors import DrillError

if TYPE_CHECKING:
    from tickarchive.ops.drill import DrillReport


def _day(text: str | None, what: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DrillError(f"{what} {text!r}: expected YYYY-MM-DD") from None


def print_report(report: DrillReport, console: object) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    assert isinstance(console, Console)
    steps = RichTable(title="recovery drill: time per step")
    for col in ("step", "seconds", "detail"):
        steps.add_column(col, justify="right" if col == "seconds" else "left")
    for st in report.steps:
        steps.add_row(st.name, f"{st.seconds:.1f}", st.detail)
    steps.add_row("[bold]total[/]", f"[bold]{report.total_s:.1f}[/]", "")
    console.print(steps)
    if report.checks:
        per = RichTable(title="checksums per table (days in range)")
        for col in ("table", "days", "rows", "identical", "mismatching", "rebuild only", "tiers compared"):
            per.add_column(col, justify="left" if col in ("table", "tiers compared") else "right")
        for name in dict.fromkeys(c.table for c in report.checks):
            cs = [c for c in report.checks if c.table == name]
            tiers = sorted({label for c in cs for label in c.checksums})
            per.add_row(name, str(len(cs)), f"{sum(c.rows for c in cs):,}", str(sum(c.ok for c in cs)),
                        str(sum(not c.ok for c in cs)), str(sum(c.rebuild_only for c in cs)), ", ".join(tiers))
        console.print(per)
    if report.ok:
        console.print(f"[green]drill OK[/]: {len(report.checks)} table-days identical; total {report.total_s:.1f} s")


def register(app: typer.Typer) -> None:
    @app.command("drill")
    def drill_cmd(
        archive: Annotated[str | None, typer.Option(
            "--archive", help="Parquet archive target (default: archive.target)")] = None,
        journal_archive: Annotated[str | None, typer.Option(
            "--journal-archive", help="raw journal archive target (default: the --archive target)")] = None,
        journal_dir: Annotated[Path | None, typer.Option(
            "--journal-dir",
            help="local journal with the segments not archived yet (default: paths.journal_dir)")] = None,
        no_local_journal: Annotated[bool, typer.Option(
            "--no-local-journal", help="use only the archived journal (a lost server's local disk)")] = False,
        workdir: Annotated[Path | None, typer.Option(
            "--workdir", help="empty dir for the fresh stack, kept (default: a temporary dir, removed)")] = None,
        since: Annotated[str | None, typer.Option("--since", help="first day compared, YYYY-MM-DD")] = None,
        until: Annotated[str | None, typer.Option(
            "--until", help="day after the last one compared (default: today UTC)")] = None,
        keep: Annotated[bool, typer.Option("--keep", help="keep the temporary work dir")] = False,
    ) -> None:
        """Rebuild a fresh stack from the archive + journal and compare checksums with the original."""
        from rich.console import Console

        from tickarchive.ops.drill import DrillOptions, run_drill
        from tickarchive.rich_progress import RichProgress
        from tickarchive.settings import load_settings

        settings = load_settings()
        jdir: Path | None = None
        if not no_local_journal:
            jdir = journal_dir or settings.paths.journal_dir
            if journal_dir is None and not jdir.is_dir():
                jdir = None  # no local journal on this machine
        options = DrillOptions(
            archive=archive or settings.archive.target, journal_archive=journal_archive, journal_dir=jdir,
            workdir=workdir, since=_day(since, "--since"), until=_day(until, "--until"), keep=keep,
        )
        out = Console() if Console().is_terminal else Console(width=200)
        err = Console(stderr=True)
        with RichProgress(err) as progress:
            report = run_drill(settings, options, progress)
        print_report(report, out)
        if not report.ok:
            err.print(f"[bold red]drill FAILED: {len(report.mismatches)} mismatch(es)[/]")
            for m in report.mismatches:
                err.print(f"  [red]{m}[/]", soft_wrap=True)
            raise typer.Exit(1)
