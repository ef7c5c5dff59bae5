"""``/coverage`` rows for days still in QuestDB, computed like the rollover's
``coverage_daily`` (pure): rows per instrument, the trade_seq range and how many sequence
numbers inside it are missing. ``gap_seconds`` of every row, whatever its tier, is
computed by the route from the gap rows with ``api.gap_cover``."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tickarchive.api.warm import COVERAGE_SCHEMA


def hot_day_rows(day: dt.date, table: str, raw: pl.DataFrame) -> pl.DataFrame:
    """``raw``: instrument, rows, seq_min, seq_max, seq_distinct (``HotReader.coverage``)."""
    out = []
    for inst, rows, smin, smax, sdist in raw.iter_rows():
        missing = (smax - smin + 1 - sdist) if table == "trades" and smin is not None else None
        out.append((day, inst, table, rows, smin, smax, missing, 0.0))
    return pl.DataFrame(out, schema=COVERAGE_SCHEMA, orient="row")
