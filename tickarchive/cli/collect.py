"""``tickarchive collect`` and ``tickarchive backfill``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer


def setup_logging(level: str = "INFO") -> None:
    """One line per event on stderr (the collector never logs per frame)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def register(app: typer.Typer) -> None:
    app.command("collect", help="Collect every configured Deribit channel into the journal and QuestDB.")(collect)
    app.command("backfill", help="Re-fetch missed trades from the history API for gaps or a time range.")(backfill)


def collect(
    simulator: Annotated[
        str | None, typer.Option("--simulator", help="collect from a simulator at this ws:// URL instead of Deribit")
    ] = None,
    journal_dir: Annotated[
        Path | None, typer.Option(help="journal directory (default: paths.local_dir/journal)")
    ] = None,
    connections: Annotated[int | None, typer.Option(help="override deribit.connections")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="override metrics.port (0: any free port)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
    exit_report: Annotated[
        bool, typer.Option(hidden=True, help="on exit, say what is still running (the demo turns it off)")
    ] = True,
) -> None:
    import uvloop

    from tickarchive import venues
    from tickarchive.ingest.collector import Collector
    from tickarchive.ingest.supervision import run_until_signalled
    from tickarchive.settings import load_settings

    setup_logging(log_level)
    settings = load_settings()
    updates: dict[str, object] = {}
    if connections is not None:
        updates["deribit"] = settings.deribit.model_copy(update={"connections": connections})
    if metrics_port is not None:
        updates["metrics"] = settings.metrics.model_copy(update={"port": metrics_port})
    if updates:
        settings = settings.model_copy(update=updates)
    from tickarchive.store.stack.running import left_running, record_ports, registered

    collector = Collector(settings, venues.load(settings, ws_url=simulator), journal_dir)
    m = settings.metrics
    source = f"simulator {simulator}" if simulator else f"venue {settings.collector.venue}"
    journal = journal_dir or settings.paths.journal_dir
    try:
        with registered(settings.paths.local_dir, "collector", m.host, {"metrics": m.port},
                        f"{source}; journal {journal}") as entry:

            def bound(port: int) -> None:  # --metrics-port 0: the run file names the kernel's choice
                if port != m.port:
                    record_ports(settings.paths.local_dir, entry, {"metrics": port})

            collector.on_metrics_port = bound
            uvloop.run(run_until_signalled(collector.run))
    finally:
        for line in left_running(settings) if exit_report else ():  # `make run` after Ctrl-C: the stack is up
            typer.echo(line, err=True)


def backfill(
    open_gaps: Annotated[
        bool, typer.Option("--open", help="every closed gap still 'open' (trade-recoverable kinds)")
    ] = False,
    gap: Annotated[str | None, typer.Option("--gap", help="the gap starting at this time (ISO or µs)")] = None,
    instrument: Annotated[
        str | None, typer.Option(help="one instrument ('*' = all of the configured currencies)")
    ] = None,
    start: Annotated[str | None, typer.Option(help="range start (ISO or µs)")] = None,
    end: Annotated[str | None, typer.Option(help="range end (ISO or µs)")] = None,
    history_url: Annotated[str | None, typer.Option(help="override deribit.history_url (e.g. the simulator)")] = None,
    log_level: Annotated[str, typer.Option()] = "INFO",
) -> None:
    import asyncio

    from tickarchive.ingest.backfill import run_backfill

    setup_logging(log_level)
    if not (open_gaps or gap or (instrument and start and end)):
        raise typer.BadParameter("give --open, --gap TS, or --instrument I --start T --end T")
    n = asyncio.run(run_backfill(open_gaps, gap, instrument, start, end, history_url))
    typer.echo(f"backfill: {n} trades inserted")


