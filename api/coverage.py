"""``/coverage`` rows for days still in QuestDB, computed like the rollover's
``coverage_daily`` (pure): rows per instrument, the trade_seq range and how many sequence
numbers inside it are missing. ``gap_seconds`` of every row, whatever its tier, is
computed by the route from the gap rows with ``api.gap_cover``."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tickarchive.api.timefmt import US_PER_DAY
from tickarchive.api.warm import COVERAGE_SCHEMA


def hot_rows(table: str, raw: pl.DataFrame) -> pl.DataFrame:
    """``raw``: day_us, instrument, rows, seq_min, seq_max, seq_distinct (``HotReader.coverage``)."""
    out = []
    for day_us, inst, rows, smin, smax, sdist in raw.iter_rows():
        missing = (smax - smin + 1 - sdist) if table == "trades" and smin is not None else None
        day = dt.date(1970, 1, 1) + dt.timedelta(days=day_us // US_PER_DAY)
        out.append((day, inst, table, rows, smin, smax, missing, 0.0))
    return pl.DataFrame(out, schema=COVERAGE_SCHEMA, orient="row")
