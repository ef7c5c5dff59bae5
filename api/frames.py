"""Polars schemas of query results: timestamps as Int64 microseconds (pure).

Every tier returns frames of this shape, so results from QuestDB, the warm store and the
Parquet archive concatenate, de-duplicate and compare exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from tickarchive.tables import ColumnType, Table

DTYPE: dict[ColumnType, Any] = {
    ColumnType.TIMESTAMP: pl.Int64,
    ColumnType.SYMBOL: pl.String,
    ColumnType.VARCHAR: pl.String,
    ColumnType.DOUBLE: pl.Float64,
    ColumnType.LONG: pl.Int64,
    ColumnType.INT: pl.Int32,
    ColumnType.BOOLEAN: pl.Boolean,
}

BARS_SCHEMA: dict[str, Any] = {
    "ts": pl.Int64,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "buy_volume": pl.Float64,
    "sell_volume": pl.Float64,
    "trade_count": pl.Int64,
    "pv": pl.Float64,
}
"""One-minute trade bars as every tier returns them (``pv`` = sum of price * amount)."""


def schema(table: Table, columns: Sequence[str]) -> dict[str, Any]:
    return {c: DTYPE[table.column(c).type] for c in columns}


def time_columns(table: Table, columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(c for c in columns if table.column(c).type is ColumnType.TIMESTAMP)


def from_rows(rows: list[tuple[Any, ...]], schema_: dict[str, Any]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=schema_)
    return pl.DataFrame(rows, schema=schema_, orient="row")


def order_keys(table: Table, exact_column: str | None = None) -> tuple[str, ...]:
    """The row order of every result: ``ts`` then the other dedup keys (minus a column
    fixed by an exact filter, which cannot change the order)."""
    return tuple(k for k in table.dedup_keys if k != exact_column)


def without_fixed(columns: Sequence[str], fixed: str | None) -> tuple[str, ...]:
    """The columns to fetch when ``fixed`` is pinned to one value by an exact filter (it is
    added back with ``with_fixed``: no need to decode the same string 100k times)."""
    return tuple(c for c in columns if c != fixed)


def with_fixed(frame: pl.DataFrame, columns: Sequence[str], fixed: str | None, value: str | None) -> pl.DataFrame:
    if fixed is None or fixed not in columns:
        return frame
    return frame.with_columns(pl.lit(value, dtype=pl.String).alias(fixed)).select(list(columns))
