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


def _book(rows: list[tuple[str, int, int, str, float]]) -> pa.Table:
    n = len(rows)
    cols: dict[str, pa.Array] = {}
    schema = with_ord_schema(t.BOOK_CHANGES)
    for f in schema:
        if f.name == "instrument":
            cols[f.name] = pa.array([r[0] for r in rows], f.type)
        elif f.name == "ts" or f.name == "recv_ts":
            cols[f.name] = pa.array([r[1] for r in rows], f.type)
        elif f.name == "change_id":
            cols[f.name] = pa.array([r[2] for r in rows], f.type)
        elif f.name == "side":
            cols[f.name] = pa.array([r[3] for r in rows], f.type)
        elif f.name == "price":
            cols[f.name] = pa.array([r[4] for r in rows], f.type)
        elif f.name == ORD_COLUMN:
            cols[f.name] = pa.array(list(range(n)), f.type)
        else:
            cols[f.name] = pa.nulls(n, f.type)
    return pa.Table.from_pydict(cols, schema=schema)


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
    schema = with_ord_schema(t.TRADES)
    rows = [("A", 5, None), ("A", 5, None), ("A", 5, "7"), ("A", 4, "7")]
    cols: dict[str, pa.Array] = {}
    for f in schema:
        if f.name == "instrument":
            cols[f.name] = pa.array([r[0] for r in rows], f.type)
        elif f.name == "ts":
            cols[f.name] = pa.array([r[1] for r in rows], f.type)
        elif f.name == "trade_id":
            cols[f.name] = pa.array([r[2] for r in rows], f.type)
        elif f.name == ORD_COLUMN:
            cols[f.name] = pa.array(list(range(len(rows))), f.type)
        else:
            cols[f.name] = pa.nulls(len(rows), f.type)
    data = pa.Table.from_pydict(cols, schema=schema)
    assert sorted_order(t.TRADES, data).to_pylist() == [3, 2, 1]
