"""The condition of a dataset per UTC day and table (pure): may a user trust this day?

=========== ==============================================================================
pending     the day is not sealed yet (not rolled over: it may still receive rows, and
            its gaps may still be backfilled)
missing     sealed, and the table holds no row of the day
degraded    sealed, rows present, and known gaps overlap the day
available   sealed, rows present, no known gap
=========== ==============================================================================

For a degraded day: ``gap_seconds`` is the length of the union of the relevant gaps
within the day (any instrument; a gap still open counts up to now), ``gaps`` how many
overlap it, and ``affected_share`` the share of the day's instruments (those with rows
or with a gap of their own) touched by a gap — 1.0 when a whole-connection gap (``*``)
overlaps the day. Relevant gaps per table are those of ``tickarchive.products.gaps``
(trade gaps whose trades were backfilled do not count for ``trades``).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from tickarchive.products import gaps as gapmod
from tickarchive.products.timegrid import US_PER_DAY, US_PER_S

PENDING = "pending"
MISSING = "missing"
DEGRADED = "degraded"
AVAILABLE = "available"

KINDS = {"quotes": gapmod.QUOTE_KINDS, "trades": gapmod.TRADE_KINDS, "book_changes": gapmod.BOOK_KINDS}

SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date(),
    "table_name": pl.String(),
    "condition": pl.String(),
    "rows": pl.Int64(),
    "instruments": pl.Int64(),
    "instruments_affected": pl.Int64(),
    "affected_share": pl.Float64(),
    "gap_seconds": pl.Float64(),
    "gaps": pl.Int64(),
}


def _day_start(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * US_PER_DAY


def _union_us(spans: list[tuple[int, int]]) -> int:
    total = 0
    cur_lo = cur_hi = None
    for lo, hi in sorted(spans):
        if cur_hi is None or lo > cur_hi:
            if cur_hi is not None and cur_lo is not None:
                total += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    if cur_hi is not None and cur_lo is not None:
        total += cur_hi - cur_lo
    return total


def classify(
    table: str,
    days: list[dt.date],
    sealed: set[dt.date],
    rows: pl.DataFrame,
    gaps: pl.DataFrame,
    now_us: int,
) -> pl.DataFrame:
    """One row per day of ``days`` for ``table``. ``rows``: ``day``, ``instrument``,
    ``rows`` (the table's rows per instrument and day); ``gaps``: the gaps
    (``ts``, ``end_ts``, ``instrument``, ``kind``, ``status``) overlapping the days."""
    relevant = gapmod.relevant(gaps, KINDS[table], trades=table == "trades")
    out = []
    for day in days:
        lo = _day_start(day)
        hi = lo + US_PER_DAY
        mine = rows.filter((pl.col("day") == day) & (pl.col("rows") > 0)) if rows.height else rows
        total = int(mine.get_column("rows").sum()) if mine.height else 0
        names = set(mine.get_column("instrument").to_list()) if mine.height else set()
        hit = relevant.filter((pl.col("g_lo") < hi) & (pl.col("g_hi") > lo)) if relevant.height else relevant
        spans = [(max(a, lo), min(b, hi, max(now_us, lo))) for a, b in hit.select("g_lo", "g_hi").iter_rows()]
        gap_us = _union_us([s for s in spans if s[1] > s[0]])
        gap_names = set(hit.get_column("instrument").to_list()) if hit.height else set()
        everyone = names | (gap_names - {gapmod.ALL})
        affected = len(everyone) if gapmod.ALL in gap_names else len(gap_names & everyone)
        if day not in sealed:
            condition = PENDING
        elif total == 0:
            condition = MISSING
        elif hit.height:
            condition = DEGRADED
        else:
            condition = AVAILABLE
        share = affected / len(everyone) if everyone else (1.0 if hit.height else 0.0)
        out.append((day, table, condition, total, len(everyone), affected, share, gap_us / US_PER_S, hit.height))
    return pl.DataFrame(out, schema=SCHEMA, orient="row")
