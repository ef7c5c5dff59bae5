"""``tickarchive report ...``: the daily data-quality report and the data dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer


def register(app: typer.Typer) -> None:
    report = typer.Typer(help="Reports: daily data quality, the data dictionary.", no_args_is_help=True)
    app.add_typer(report, name="report")

    @report.command("quality")
    def quality(
        day: Annotated[
            str, typer.Option("--day", metavar="YYYY-MM-DD", help="UTC day: YYYY-MM-DD, today or yesterday")
        ],
        out: Annotated[
            Path, typer.Option("--out", metavar="DIR", help="directory; the report goes to OUT/<day>/index.html")
        ],
        source: Annotated[
            str, typer.Option("--source", help="auto (warm store if the rollover ledger has the day), hot or warm")
        ] = "auto",
        volume_tolerance_pct: Annotated[
            float, typer.Option("--volume-tolerance-pct", help="volume mismatch threshold, percent")
        ] = 5.0,
    ) -> None:
        """Data-quality report of one day: HTML + PNG plots + report.json. Checks flag rows, never drop them."""
        from tickarchive.ops.quality.errors import QualityError
        from tickarchive.ops.quality.report import build_report, parse_day, write_report
        from tickarchive.ops.quality.source import choose_source
        from tickarchive.settings import load_settings

        if source not in ("auto", "hot", "warm"):
            raise QualityError(f"--source {source!r}: expected auto, hot or warm")
        prefer: Literal["auto", "hot", "warm"] = source  # type: ignore[assignment]
        d = parse_day(day)
        src = choose_source(load_settings(), d, prefer)
        typer.echo(f"reading {d} from {src.label}", err=True)
        result = build_report(src, d, volume_tolerance_pct=volume_tolerance_pct)
        files = write_report(result, out)
        comp = result.trade_completeness_pct
        flagged = ", ".join(f"{c.name} {c.count}" for c in result.checks if c.count) or "none"
        typer.echo(
            f"{d}: {result.quote_rows} quotes, {result.trade_rows} trades, "
            f"{len(result.coverage.instruments)} instruments, coverage {result.coverage.cells_with_data_pct:.2f} % "
            f"of {result.coverage.collected_hours} collected hours, "
            f"trade completeness {'-' if comp is None else f'{comp:.3f} %'}, {len(result.gaps)} gaps, "
            f"flagged: {flagged}"
        )
        typer.echo(str(files.html))

    @report.command("data-dictionary")
    def data_dictionary() -> None:
        """Print the data dictionary in Markdown (the source of docs/data-dictionary.md)."""
        from tickarchive.ops.data_dictionary import data_dictionary_markdown

        typer.echo(data_dictionary_markdown(), nl=False)
