"""``tickarchive loadtest ...``: the load and chaos harness (``loadtest.harness``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "loadtest",
        help="Drive simulator -> collector -> QuestDB at --rate for --duration, optional chaos; reconcile.",
    )(loadtest)


def loadtest(
    rate: Annotated[float, typer.Option(help="ticker+book notifications per second (the simulator's rate)")] = 5000.0,
    duration: Annotated[float, typer.Option(help="seconds of load")] = 600.0,
    instruments: Annotated[int, typer.Option(help="options in each currency's simulated chain")] = 800,
    currencies: Annotated[
        str, typer.Option(help="currencies listed and collected, comma-separated: ETH, BTC")
    ] = "ETH",
    kinds: Annotated[
        str, typer.Option(help="kinds listed and collected, comma-separated: option, future, option_combo")
    ] = "option",
    connections: Annotated[int, typer.Option(help="collector WebSocket connections")] = 4,
    chaos: Annotated[
        list[str] | None,
        typer.Option(
            help="disconnects, questdb-restart, questdb-kill, collector-kill, stale, malformed, journal-corrupt, "
            "disk-full (needs root: mounts a small file system), poison, questdb-reject, or all (repeatable; "
            "see docs/performance.md)"
        ),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
    run_dir: Annotated[Path, typer.Option(help="working directory (wiped first)")] = Path(".local/loadtest/run"),
    trades_per_s: Annotated[float, typer.Option(help="simulated trades per second")] = 5.0,
    flush_interval_ms: Annotated[
        int | None, typer.Option(help="collector writer.flush_interval_ms (default: its setting, 50)")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG of rate and latency over time here")] = None,
) -> None:
    from rich.console import Console

    from tickarchive.loadtest.harness import LoadSpec, run
    from tickarchive.loadtest.report import render

    console = Console()
    modes: list[str] = []
    for c in chaos or []:
        modes.extend(x for x in c.replace(",", " ").split() if x)
    spec = LoadSpec(
        rate=rate,
        duration_s=duration,
        instruments=instruments,
        connections=connections,
        chaos=tuple(modes),
        run_dir=run_dir,
        trades_per_s=trades_per_s,
        currencies=tuple(x.strip() for x in currencies.split(",") if x.strip()),
        kinds=tuple(x.strip() for x in kinds.split(",") if x.strip()),
    )
    result = run(spec, echo=lambda s: console.print(s, highlight=False, markup=False))
    console.print(render(result))
    data: dict[str, Any] = result.as_json()
    if json_path is not None:
        json_path.write_text(json.dumps(data, indent=2) + "\n")
    if plot is not None:
        from tickarchive.loadtest.plot import plot_samples

        plot_samples(result.samples, plot, f"tickarchive loadtest --rate {rate:g} --duration {duration:g}")
    if result.recon.lost or result.recon.uncovered_disconnects:
        from tickarchive.loadtest.errors import HarnessError

        raise HarnessError(
            f"{result.recon.lost} rows lost (no gap covers them), "
            f"{len(result.recon.uncovered_disconnects)} disconnects without a gap; run dir {run_dir}"
        )
