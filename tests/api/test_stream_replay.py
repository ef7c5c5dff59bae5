"""Replay messages (pure): a window's rows of several tables cut into ``merged`` messages
(``api.stream.replay.chunks``), encoded (``api.stream.messages``) and decoded by the
client (``tickarchive.client.stream``).

Properties: every row of every table is in exactly one message, in the table's own order;
the merged order is the exchange-time order with ties in channel order; a message's
position ``r.<ts>`` means every row before ``ts`` was sent with it or before; pacing
buckets and the message size cut messages; Arrow and JSON decode to the same rows.
"""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest

from tickarchive.api.stream import messages as msg
from tickarchive.api.stream.replay import (
    MAX_WINDOW_US,
    MIN_WINDOW_US,
    Chunk,
    Window,
    chunks,
    next_window,
    parse_position,
)
from tickarchive.client.rows import Quote, Trade
from tickarchive.client.stream import Merged, decode_message, rows

NAMES = ["quotes", "trades", "book_changes"]


def frames(seed: int, sizes: tuple[int, ...] = (300, 40, 500), span_us: int = 2_000) -> list[pl.DataFrame]:
    """Per table, rows ordered by ts with many equal ts across and within tables."""
    rnd = random.Random(seed)
    out = []
    for k, n in enumerate(sizes):
        ts = sorted(1_000_000 + rnd.randrange(span_us) for _ in range(n))
        out.append(pl.DataFrame({"ts": ts, "instrument": [f"I{k}-{i}" for i in range(n)], "v": [float(i) for i in
                                                                                                 range(n)]}))
    return out


def expected_order(fs: list[pl.DataFrame]) -> list[tuple[int, int]]:
    """(table, row) of every row in exchange-time order, ties: table order then row order."""
    keyed = [(int(t), k, i) for k, f in enumerate(fs) for i, t in enumerate(f.get_column("ts").to_list())]
    return [(k, i) for _, k, i in sorted(keyed)]


def replayed(cs: list[Chunk]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for c in cs:
        its = [iter(f.iter_rows(named=True)) for _, f in c.parts]
        out.extend((c.parts[p][0], next(its[p])) for p in c.order)
        assert all(next(it, None) is None for it in its), "a part holds rows the order does not name"
    return out


@pytest.mark.parametrize(("seed", "max_rows", "bucket_us"), [(1, 20_000, None), (2, 97, None), (3, 50, 300),
                                                              (4, 1, None)])
def test_chunks_cover_every_row_once_in_exchange_time_order(seed: int, max_rows: int, bucket_us: int | None) -> None:
    fs = frames(seed)
    cut = 1_002_000
    w = Window(fs, cut, False)
    cs = chunks(NAMES, w, bucket_us, 1_000_000, max_rows)
    got = replayed(cs)
    want = [(NAMES[k], fs[k].row(i, named=True)) for k, i in expected_order(fs)]
    assert got == want
    assert all(0 < c.rows <= max_rows for c in cs)
    assert all(f.height for c in cs for _, f in c.parts), "an empty part was sent"
    if bucket_us:  # a message never spans two pacing buckets
        for c in cs:
            stamps = pl.concat([f.get_column("ts") for _, f in c.parts])
            assert (stamps.min() - 1_000_000) // bucket_us == (stamps.max() - 1_000_000) // bucket_us  # type: ignore[operator]
    assert cs[-1].position == f"r.{cut}"
    sent = 0
    for c in cs:
        sent += c.rows
        if c.position is None:
            continue
        at = parse_position(c.position)
        assert at is not None
        # every row before the position has been sent, none at or after it
        assert sum(1 for _, r in got if r["ts"] < at) == sent
        assert all(r["ts"] >= at for _, r in got[sent:])
    assert sum(c.position is not None for c in cs) > (1 if max_rows < 100 else 0)


def test_a_single_table_keeps_its_rows_and_empty_tables_are_left_out() -> None:
    fs = [frames(5)[0], frames(5)[1].head(0), frames(5)[2].head(0)]
    cs = chunks(NAMES, Window(fs, 1_002_000, False), None, 0, 64)
    assert {c.parts[0][0] for c in cs} == {"quotes"}
    assert all(len(c.parts) == 1 for c in cs)
    assert pl.concat([c.parts[0][1] for c in cs]).equals(fs[0])
    assert all(set(c.order) == {0} for c in cs)
    assert chunks(NAMES, Window([f.head(0) for f in fs], 5, False), None, 0) == []


def real_frames() -> list[pl.DataFrame]:
    """Quotes and trades with the tables' real columns and types."""
    from tickarchive.api import frames as fr
    from tickarchive.tables import BY_NAME

    out = []
    for name, n in (("quotes", 7), ("trades", 3)):
        t = BY_NAME[name]
        schema = fr.schema(t, t.column_names)
        data: dict[str, list[Any]] = {}
        for col, dtype in schema.items():
            if col == "ts":
                data[col] = [1_700_000_000_000_000 + 3 * i + (1 if name == "trades" else 0) for i in range(n)]
            elif dtype == pl.String:
                data[col] = [f"ETH-{name}-{i}" for i in range(n)]
            elif dtype == pl.Boolean:
                data[col] = [i % 2 == 0 for i in range(n)]
            elif dtype == pl.Float64:
                data[col] = [float(i) / 4 if i != 2 else None for i in range(n)]
            else:
                data[col] = list(range(n))
        out.append(pl.DataFrame(data, schema=schema))
    return out


@pytest.mark.parametrize("fmt", ["arrow", "json"])
def test_merged_messages_decode_to_the_same_rows(fmt: str) -> None:
    fs = real_frames()
    [c] = chunks(["quotes", "trades"], Window(fs, 1_800_000_000_000_000, False), None, 0)
    data: str | bytes = (msg.merged_arrow(c.parts, c.order, c.position) if fmt == "arrow"
                         else msg.merged_json(c.parts, c.order, c.position))
    m = decode_message(data, 0)
    assert isinstance(m, Merged)
    assert m.position == c.position
    assert m.count == 10
    assert m.order == c.order
    assert [ch for ch, _ in m.parts] == ["quotes", "trades"]
    for (_, got), want in zip(m.parts, fs, strict=True):
        assert got.equals(want)
    merged = m.frame()
    assert merged.get_column("ts").to_list() == sorted(merged.get_column("ts").to_list())
    assert merged.get_column("channel").to_list() == ["quotes" if p == 0 else "trades" for p in c.order]
    assert merged.columns[:2] == ["channel", "ts"]
    assert merged.filter(pl.col("channel") == "trades").select(fs[1].columns).equals(fs[1])
    typed = rows(m)
    assert [type(r) for r in typed] == [Quote if p == 0 else Trade for p in c.order]
    assert [r.ts for r in typed] == merged.get_column("ts").to_list()
    assert typed[2].bid_price == 0.25
    assert typed[2].instrument == "ETH-quotes-1"


def test_the_window_aims_at_a_page_of_rows() -> None:
    s = 1_000_000
    assert next_window(s, s, 1_000, False, 100_000) == 4 * s  # sparse: at most 4x longer
    assert next_window(60 * s, 60 * s, 200_000, False, 100_000) == 30 * s  # a page at the rate seen
    assert next_window(s, s, 0, False, 100_000) == 4 * s
    assert next_window(8 * s, 3 * s, 100_000, True, 100_000) == 3 * s // 2  # a page filled: half what it got
    assert next_window(s, 10, 100_000, True, 100_000) == MIN_WINDOW_US
    assert next_window(MAX_WINDOW_US, MAX_WINDOW_US, 1, False, 100_000) == MAX_WINDOW_US
