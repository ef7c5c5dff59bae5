"""``/coverage`` rows for days still in QuestDB, computed like the rollover's
``coverage_daily`` (pure parts): rows per instrument, the trade_seq range and how many
sequence numbers inside it are missing, and the seconds of the day covered by recorded
gaps of the instrument or of the whole connection (``*``)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tickarchive.api.timefmt import US_PER_DAY, US_PER_S, day_start_us
from tickarchive.api.warm import COVERAGE_SCHEMA


def hot_day_rows(day: dt.date, table: str, raw: pl.DataFrame, gaps: pl.DataFrame, now_us: int) -> pl.DataFrame:
    """``raw``: instrument, rows, seq_min, seq_max, seq_distinct; ``gaps``: ts, end_ts, instrument."""
    lo = day_start_us(day)
    hi = lo + US_PER_DAY
    out = []
    for inst, rows, smin, smax, sdist in raw.iter_rows():
        missing = (smax - smin + 1 - sdist) if table == "trades" and smin is not None else None
        out.append((day, inst, table, rows, smin, smax, missing, gap_seconds(gaps, inst, lo, hi, now_us)))
    return pl.DataFrame(out, schema=COVERAGE_SCHEMA, orient="row")


def gap_seconds(gaps: pl.DataFrame, instrument: str, lo_us: int, hi_us: int, now_us: int) -> float:
    total = 0
    for start, end, inst in gaps.select("ts", "end_ts", "instrument").iter_rows():
        if inst not in (instrument, "*"):
            continue
        stop = min(end if end is not None else now_us, hi_us)
        total += max(0, stop - max(start, lo_us))
    return total / US_PER_S
