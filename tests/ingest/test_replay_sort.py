"""Replay's sort-and-deduplicate order: the NumPy way gives exactly the order of Arrow's
multi-key sort, on the key values that make sorts differ (equal keys, NaN, -0.0, text
that sorts by bytes), and the rows it keeps are the last of each dedup key."""

from __future__ import annotations

import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tickarchive import tables as t
from tickarchive.ingest.replay_parquet import sorted_order, sorted_order_arrow, with_ord_schema
from tickarchive.venue import ORD_COLUMN

_NAMES = st.sampled_from(["BTC-27MAR26-100000-C", "BTC-27MAR26-100000-P", "ETH-PERPETUAL", "ETH-1JAN27", "é-X", "a"])
_TS = st.integers(1_767_225_600_000_000, 1_767_225_600_000_004)
_PRICES = st.sampled_from([0.0, -0.0, 0.0005, 1e-8, 97_123.5, math.nan, math.inf, -1.5])


def _table(table: t.Table, columns: dict[str, list[object]]) -> pa.Table:
    """Rows of ``table`` (plus the input order) with the given columns' values, NULLs
    elsewhere."""
    n = len(next(iter(columns.values())))
    schema = with_ord_schema(table)
    values: dict[str, list[object]] = {**columns, ORD_COLUMN: list(range(n))}
    return pa.Table.from_pydict(
        {f.name: pa.array(values[f.name], f.type) if f.name in values else pa.nulls(n, f.type) for f in schema},
        schema=schema,
    )


def _book(rows: list[tuple[str, int, int, str, float]]) -> pa.Table:
    names = ("instrument", "ts", "change_id", "side", "price")
    columns: dict[str, list[object]] = {name: [r[i] for r in rows] for i, name in enumerate(names)}
    return _table(t.BOOK_CHANGES, {**columns, "recv_ts": columns["ts"]})


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_NAMES, _TS, st.integers(1, 3), st.sampled_from(["bid", "ask"]), _PRICES), max_size=60)
)
def test_numpy_order_is_arrows_order(rows: list[tuple[str, int, int, str, float]]) -> None:
    data = _book(rows)
    got = sorted_order(t.BOOK_CHANGES, data).to_pylist()
    assert got == sorted_order_arrow(t.BOOK_CHANGES, data).to_pylist()
    # each kept row is the last one read of its dedup key, and every key is kept once
    keys = [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def same(a: tuple[str, int, int, str, float], b: tuple[str, int, int, str, float]) -> bool:
        return a[:4] == b[:4] and (a[4] == b[4])  # NaN is never equal to NaN, -0.0 equals 0.0

    for i in got:
        assert not any(same(keys[i], keys[j]) for j in range(i + 1, len(keys)))
    kept = set(got)
    for j in range(len(keys)):
        assert j in kept or any(same(keys[j], keys[i]) for i in kept if i > j)


def test_key_columns_with_nulls_take_arrows_way() -> None:
    """A NULL in a key column: two NULLs are one key, a NULL and a value are two."""
    rows = [("A", 5, None), ("A", 5, None), ("A", 5, "7"), ("A", 4, "7")]
    names = ("instrument", "ts", "trade_id")
    data = _table(t.TRADES, {name: [r[i] for r in rows] for i, name in enumerate(names)})
    assert sorted_order(t.TRADES, data).to_pylist() == [3, 2, 1]
