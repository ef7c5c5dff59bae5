"""Queries across tiers: one ordered, de-duplicated result from hot, warm and cold.

``rows`` pages through a table over [start, end): each segment of the tier plan is read
from its tier in order until the page is full; rows are ordered by the table's dedup keys
(``ts`` first), de-duplicated on them, and the cursor says where the next page starts.
``latest`` (chain, instruments) and ``minute_bars`` (OHLCV) merge per-tier partial
results the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from tickarchive.api import frames
from tickarchive.api.cursor import Cursor, next_cursor
from tickarchive.api.params import InstrumentMatch
from tickarchive.api.stores import Stores
from tickarchive.tables import Table


@dataclass(frozen=True, slots=True)
class Page:
    frame: pl.DataFrame
    cursor: Cursor | None
    """Where the next page starts; None when this is the last page."""


def merge(parts: list[pl.DataFrame], table: Table, schema: dict[str, Any]) -> pl.DataFrame:
    """Concatenate per-segment results (each already ordered by the dedup keys, segments in
    time order and disjoint) and drop rows whose dedup key was already seen. A single part
    comes from one store, which enforces the keys itself, and is returned as is."""
    if not parts:
        return pl.DataFrame(schema=schema)
    if len(parts) == 1:
        return parts[0]
    keys = [k for k in table.dedup_keys if k in parts[0].columns]
    return pl.concat(parts).unique(subset=keys, keep="first", maintain_order=True)


def rows(
    stores: Stores,
    table: Table,
    columns: Sequence[str],
    start_us: int,
    end_us: int,
    match: InstrumentMatch | None,
    eq: Mapping[str, Any],
    limit: int,
    cursor: Cursor | None,
) -> Page:
    lo = start_us
    skip = 0
    if cursor is not None:
        lo = max(lo, cursor.ts_us)
        skip = cursor.skip if cursor.ts_us >= start_us else 0
    want = limit + 1 + skip
    parts: list[pl.DataFrame] = []
    have = 0
    if lo < end_us:
        for seg in stores.segments(table, lo, end_us):
            part = stores.reader(seg.tier).rows(table, columns, seg.lo_us, seg.hi_us, match, eq, want - have)
            if part.height:
                parts.append(part)
                have += part.height
            if have >= want:
                break
    frame = merge(parts, table, frames.schema(table, columns))
    if skip:
        frame = frame.slice(skip)
    more = frame.height > limit
    frame = frame.head(limit)
    nxt = next_cursor(cursor, frame.get_column("ts").to_list()) if more else None
    return Page(frame, nxt)


def latest(
    stores: Stores,
    table: Table,
    columns: Sequence[str],
    lo_us: int,
    at_us: int,
    match: InstrumentMatch | None,
    partition_by: str,
) -> pl.DataFrame:
    """The last row per ``partition_by`` with lo <= ts <= at, over every tier."""
    parts = []
    for seg in stores.segments(table, lo_us, at_us + 1):
        part = stores.reader(seg.tier).latest(table, columns, seg.lo_us, min(seg.hi_us - 1, at_us), match, partition_by)
        if part.height:
            parts.append(part)
    if not parts:
        return pl.DataFrame(schema=frames.schema(table, columns))
    merged = pl.concat(parts).sort("ts", partition_by)
    return merged.group_by(partition_by, maintain_order=True).last().select(list(columns)).sort(partition_by)


def minute_bars(
    stores: Stores, table: Table, instrument: str, lo_us: int, hi_us: int, minutes: int = 1
) -> pl.DataFrame:
    """Trade bars per tier segment, each of ``minutes`` or finer (``api.ohlcv.fold`` finishes)."""
    parts = []
    for seg in stores.segments(table, lo_us, hi_us):
        part = stores.reader(seg.tier).minute_bars(instrument, seg.lo_us, seg.hi_us, minutes)
        if part.height:
            parts.append(part)
    if not parts:
        return pl.DataFrame(schema=frames.BARS_SCHEMA)
    return pl.concat(parts).sort("ts", maintain_order=True)


def last_snapshot_ts(stores: Stores, table: Table, instrument: str, lo_us: int, at_us: int) -> int | None:
    """The newest snapshot time in [lo, at], searching the newest tier segment first."""
    for seg in reversed(stores.segments(table, lo_us, at_us + 1)):
        found = stores.reader(seg.tier).last_snapshot_ts(instrument, seg.lo_us, min(seg.hi_us - 1, at_us))
        if found is not None:
            return found
    return None
