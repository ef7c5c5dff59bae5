"""Where products read stored ticks from: the ``TickSource`` protocol.

The API implements it over every tier (``tickarchive.api.routes_products.StoresSource``:
QuestDB, the warm store and the Parquet archive through the tier router), so a product
over a range that spans tiers reads each day from the one tier that holds it. Tests
implement it over frames in memory (``FrameSource``).

Frames use the API's internal form: timestamps as integer µs since the epoch (Int64),
columns named as in ``tickarchive.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from tickarchive.products.instruments import chain_regex


class TickSource(Protocol):
    def quotes(self, currency: str, columns: Sequence[str], lo_us: int, hi_us: int) -> pl.DataFrame:
        """Quotes of the options of ``currency`` with ``lo <= ts < hi``: ``columns`` (which
        include ts, recv_ts and instrument), ordered by ts."""
        ...

    def book_changes(self, instrument: str, lo_us: int, hi_us: int) -> pl.DataFrame:
        """Every ``book_changes`` row of ``instrument`` with ``lo <= ts < hi``."""
        ...

    def last_book_snapshot(self, instrument: str, lo_us: int, at_us: int) -> int | None:
        """Time of the newest book snapshot of ``instrument`` with ``lo <= ts <= at``."""
        ...

    def gaps(self, lo_us: int, hi_us: int) -> pl.DataFrame:
        """Gaps (``ts``, ``end_ts``, ``instrument``, ``kind``, ``status``) overlapping
        ``[lo, hi)``."""
        ...


@dataclass
class FrameSource:
    """A ``TickSource`` over frames held in memory (tests, benchmarks, exports of files)."""

    quote_rows: pl.DataFrame
    book_rows: pl.DataFrame = field(default_factory=pl.DataFrame)
    gap_rows: pl.DataFrame = field(default_factory=pl.DataFrame)

    def quotes(self, currency: str, columns: Sequence[str], lo_us: int, hi_us: int) -> pl.DataFrame:
        q = self.quote_rows
        return (
            q.filter((pl.col("ts") >= lo_us) & (pl.col("ts") < hi_us) & pl.col("instrument").str.contains(
                chain_regex(currency)))
            .select(list(columns))
            .sort("ts", "instrument")
        )

    def book_changes(self, instrument: str, lo_us: int, hi_us: int) -> pl.DataFrame:
        b = self.book_rows
        return b.filter((pl.col("instrument") == instrument) & (pl.col("ts") >= lo_us) & (pl.col("ts") < hi_us))

    def last_book_snapshot(self, instrument: str, lo_us: int, at_us: int) -> int | None:
        b = self.book_rows
        if b.height == 0:
            return None
        hit = b.filter(
            (pl.col("instrument") == instrument) & pl.col("is_snapshot") & (pl.col("ts") >= lo_us)
            & (pl.col("ts") <= at_us)
        )
        return None if hit.height == 0 else int(hit.get_column("ts").max())  # type: ignore[arg-type]

    def gaps(self, lo_us: int, hi_us: int) -> pl.DataFrame:
        g = self.gap_rows
        if g.height == 0:
            return g
        return g.filter((pl.col("ts") < hi_us) & (pl.col("end_ts").is_null() | (pl.col("end_ts") > lo_us)))
