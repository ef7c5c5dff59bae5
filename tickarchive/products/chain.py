"""Point-in-time option chains (pure): per instant, per live option, the last quote
known at that instant and how old it was.

A *snapshot* at instant ``at`` holds, for every option whose last quote at or before
``at`` is at most ``max_age`` old and that has not expired at ``at`` (expiry 08:00 UTC),
that quote's values and its ``staleness_s`` = ``at`` − its time. No quote after ``at`` is
ever used, so a backtest reading snapshots cannot look ahead.

"Known at" has two bases:

* ``exchange`` (default): the quote's exchange timestamp ``ts`` is at or before ``at``
  (the exchange's own view, as ``/chain`` answers it);
* ``receive``: the time the collector received it, ``recv_ts``, is at or before ``at``
  (what a strategy running live would have seen: a quote stamped just before ``at`` but
  received after it is not yet known).

``ChainSnapshotter`` is fed the quotes window by window in time order and carries, per
option, the last quote it saw (and, on the receive basis, quotes received after the
window), so a whole day is never held in memory at once.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import polars as pl

from tickarchive.products.instruments import option_columns
from tickarchive.products.timegrid import US_PER_S

VALUE_COLUMNS: tuple[str, ...] = (
    "bid_price",
    "bid_amount",
    "bid_iv",
    "ask_price",
    "ask_amount",
    "ask_iv",
    "mark_price",
    "mark_iv",
    "underlying_index",
    "underlying_price",
    "index_price",
    "delta",
    "gamma",
    "vega",
    "theta",
    "rho",
    "open_interest",
    "last_price",
)
"""The quote columns a chain snapshot carries (a subset may be asked for)."""

READ_COLUMNS: tuple[str, ...] = ("ts", "recv_ts", "instrument", *VALUE_COLUMNS)
KEY_COLUMNS: tuple[str, ...] = (
    "at",
    "instrument",
    "expiration",
    "strike",
    "option_type",
    "ts",
    "recv_ts",
    "staleness_s",
)
"""The leading columns of every snapshot row (``in_gap`` follows, then the values)."""
TIME_COLUMNS: tuple[str, ...] = ("at", "ts", "recv_ts", "expiration")


class Basis(enum.StrEnum):
    EXCHANGE = "exchange"
    RECEIVE = "receive"

    @property
    def key(self) -> str:
        return "ts" if self is Basis.EXCHANGE else "recv_ts"


def snapshot_schema(values: Sequence[str]) -> dict[str, pl.DataType]:
    """The schema of a snapshot frame carrying ``values``."""
    from tickarchive.tables import QUOTES, ColumnType

    schema: dict[str, pl.DataType] = {
        "at": pl.Int64(),
        "instrument": pl.String(),
        "expiration": pl.Int64(),
        "strike": pl.Float64(),
        "option_type": pl.String(),
        "ts": pl.Int64(),
        "recv_ts": pl.Int64(),
        "staleness_s": pl.Float64(),
        "in_gap": pl.Boolean(),
    }
    for v in values:
        schema[v] = pl.String() if QUOTES.column(v).type is ColumnType.SYMBOL else pl.Float64()
    return schema


class ChainSnapshotter:
    """Snapshots of one chain over consecutive windows (feed them in time order)."""

    def __init__(self, max_age_us: int, basis: Basis = Basis.EXCHANGE, values: Sequence[str] = VALUE_COLUMNS) -> None:
        self.max_age_us = max_age_us
        self.basis = basis
        self.values = tuple(values)
        self._carry: pl.DataFrame | None = None

    def reset(self) -> None:
        """Forget everything seen (the next window does not follow the last one)."""
        self._carry = None

    def window(self, quotes: pl.DataFrame, instants: Sequence[int], window_end_us: int) -> pl.DataFrame:
        """Snapshots at ``instants`` (all ``< window_end_us``) from the quotes seen so far
        plus ``quotes`` (rows with exchange ``ts`` in this window, any order). Rows
        without ``in_gap`` (the caller marks gaps)."""
        key = self.basis.key
        cols = ["ts", "recv_ts", "instrument", *self.values]
        rows = quotes.select(cols)
        if self._carry is not None and self._carry.height:
            rows = pl.concat([self._carry, rows], how="vertical_relaxed")
        known = rows.filter(pl.col(key) < window_end_us)
        pending = rows.filter(pl.col(key) >= window_end_us)
        known = option_columns(known.sort(key, "instrument")).filter(pl.col("expiration").is_not_null())
        out = self._asof(known, instants)
        horizon = window_end_us - self.max_age_us
        last = (
            known.group_by("instrument", maintain_order=True)
            .last()
            .filter((pl.col(key) >= horizon) & (pl.col("expiration") > window_end_us))
            .select(cols)
        )
        self._carry = pl.concat([last, pending], how="vertical_relaxed") if pending.height else last
        return out

    def _asof(self, known: pl.DataFrame, instants: Sequence[int]) -> pl.DataFrame:
        key = self.basis.key
        schema = snapshot_schema(self.values)
        del schema["in_gap"]
        if not instants or known.height == 0:
            return pl.DataFrame(schema=schema)
        names = known.select(pl.col("instrument").unique().sort())
        grid = pl.DataFrame({"at": list(instants)}, schema={"at": pl.Int64}).join(names, how="cross").sort("at")
        right = known.with_columns(pl.col(key).alias("_key"))
        joined = grid.join_asof(
            right, left_on="at", right_on="_key", by="instrument", strategy="backward", check_sortedness=False
        )
        return (
            joined.filter(
                pl.col("_key").is_not_null()
                & (pl.col("at") - pl.col("_key") <= self.max_age_us)
                & (pl.col("expiration") > pl.col("at"))
            )
            .with_columns(((pl.col("at") - pl.col("_key")) / US_PER_S).alias("staleness_s"))
            .select(list(schema))
            .sort("at", "instrument")
            .cast(schema)  # type: ignore[arg-type]
        )
