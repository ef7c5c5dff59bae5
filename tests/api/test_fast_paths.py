"""The fast row-page paths: QuestDB /exp with inlined literals (hot) and COPY TO STDOUT
(warm) give exactly what the bind-parameter PG-wire paths give."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import pytest

from tests.api import data
from tickarchive.api import frames, inline, warm
from tickarchive.api.chain import chain_regex
from tickarchive.api.errors import StoreUnavailable
from tickarchive.api.hot import HotReader, export_latest_sql, export_sql
from tickarchive.api.params import InstrumentMatch, instrument_match
from tickarchive.api.pool import Pool
from tickarchive.api.warm import WarmReader
from tickarchive.api.warm_copy import parse_binary_fixed, parse_csv
from tickarchive.rows import events_to_arrow
from tickarchive.store.questdb_http import QuestDBHttp
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import QUOTES, TRADES

_PAGE_CASES: tuple[tuple[InstrumentMatch | None, int], ...] = (
    (instrument_match("ETH-30OCT26-3000-C"), 1000),
    (instrument_match("ETH-*"), 1000),
    (instrument_match("*-C"), 17),
    (None, 1000),
    (instrument_match("NO-SUCH"), 10),
)
"""(instrument match, limit) of the row pages the fast read paths must answer exactly."""

# -- inline literals (pure) -------------------------------------------------------------


def test_inline_renders_validated_values_exactly() -> None:
    assert inline.text("ETH-27DEC24-4000-C") == "'ETH-27DEC24-4000-C'"
    assert inline.text(instrument_match("ETH-*-?-C").regex or "") == "'^ETH-.*-.-C$'"
    assert inline.text(instrument_match("A*B*C").hot_regex or "") == "'^A(?>.*?B).*C$'"
    assert inline.text("(?:^A$)|(?:^B-.*$)") == "'(?:^A$)|(?:^B-.*$)'"
    assert inline.text("^ETH-[0-9]+[A-Z]+[0-9]+-[0-9d]+-[CP]$") == "'^ETH-[0-9]+[A-Z]+[0-9]+-[0-9d]+-[CP]$'"
    assert inline.integer(100_000) == "100000"
    assert inline.timestamp_us(1_790_985_600_000_001) == "'2026-10-03T00:00:00.000001Z'"
    assert inline.timestamp_us(0) == "'1970-01-01T00:00:00.000000Z'"


@pytest.mark.parametrize(
    "value", ["a'b", "a\\b", "a b", "a;b", "", "x" * 201, "ETH'--", "a\nb", "é", "a,b", "a/*b", "a{2}", "a#b", "a%b"]
)
def test_inline_refuses_anything_else(value: str) -> None:
    with pytest.raises(inline.InlineRefused):
        inline.text(value)


def test_inline_refuses_non_integers_and_out_of_range_times() -> None:
    for bad in (True, 1.5, "1", None):
        with pytest.raises(inline.InlineRefused):
            inline.integer(bad)  # type: ignore[arg-type]
    for t in (-1, inline.MAX_US + 1, False, 1.0):
        with pytest.raises(inline.InlineRefused):
            inline.timestamp_us(t)  # type: ignore[arg-type]


def test_export_sql_inlines_only_rendered_literals() -> None:
    sql = export_sql(QUOTES, ("ts", "bid_price"), 0, 86_400_000_000, instrument_match("ETH-30OCT26-3000-C"), 7)
    assert sql == (
        "SELECT ts, bid_price FROM quotes WHERE ts >= '1970-01-01T00:00:00.000000Z' "
        "AND ts < '1970-01-02T00:00:00.000000Z' AND instrument = 'ETH-30OCT26-3000-C' ORDER BY ts LIMIT 7"
    )
    with pytest.raises(inline.InlineRefused):
        export_sql(QUOTES, ("ts",), 0, 1, InstrumentMatch("instrument", regex="^a' OR 1=1 --$"), 7)


# -- COPY CSV parsing (pure) ----------------------------------------------------------------


def test_parse_csv_tells_null_from_empty_string() -> None:
    schema = {"ts": pl.Int64, "s": pl.String, "x": pl.Float64, "n": pl.Int32, "b": pl.Boolean}
    frame = parse_csv(b'1,"",NaN,,t\n2,,1.5,-3,f\n3,"a,""b",,7,\n', schema)
    assert frame.schema == pl.Schema(schema)
    assert frame.get_column("s").to_list() == ["", None, 'a,"b']
    assert frame.get_column("x").to_list() == [None, 1.5, None]
    assert frame.get_column("n").to_list() == [None, -3, 7]
    assert frame.get_column("b").to_list() == [True, False, None]
    assert parse_csv(b"", schema).height == 0


# -- against the real stores ------------------------------------------------------------


def test_warm_copy_output_parses_on_both_dialects(warm_store: WarmHandle) -> None:
    pool = Pool("warm store", warm_store.reader_dsn, size=1, wait_s=5, deadline_s=30)
    try:
        out = pool.copy_out(
            "COPY (SELECT %s::bigint, ''::text, NULL::text, %s::float8, 'NaN'::float8, true) TO STDOUT (FORMAT csv)",
            [1_790_985_600_000_001, 0.1 + 0.2],
        )
        row = parse_csv(
            out, {"ts": pl.Int64, "e": pl.String, "z": pl.String, "x": pl.Float64, "y": pl.Float64, "b": pl.Boolean}
        ).row(0)
        assert row == (1_790_985_600_000_001, "", None, 0.1 + 0.2, None, True)
        binary = pool.copy_out(
            "COPY (SELECT %s::timestamptz + make_interval(secs => g) AS ts, coalesce(CASE WHEN g = 2 THEN NULL "
            "ELSE g * 0.5 END, 'NaN'::float8) AS x, g::bigint AS n, (g * 3)::int AS i FROM generate_series(1, 3) g) "
            "TO STDOUT (FORMAT binary)",
            ["2026-10-05T00:00:00.000001Z"],
        )
        kinds = {"ts": "timestamptz", "x": "float8", "n": "int8", "i": "int4"}
        got = parse_binary_fixed(binary, kinds)
        assert got is not None
        assert got.schema == pl.Schema({"ts": pl.Int64, "x": pl.Float64, "n": pl.Int64, "i": pl.Int32})
        assert got.rows() == [(data.us(data.DAYS[0], s=s) + 1, x, s, 3 * s) for s, x in ((1, 0.5), (2, None), (3, 1.5))]
        with_null = pool.copy_out(
            "COPY (SELECT now() AS ts, 1.0::float8 AS x, NULLIF(g, 2)::bigint AS n, g::int AS i "
            "FROM generate_series(1, 3) g) TO STDOUT (FORMAT binary)"
        )
        assert parse_binary_fixed(with_null, kinds) is None  # uneven rows: the caller reads CSV instead
        assert parse_binary_fixed(b"", kinds) is None
        assert pool.fetch("SELECT 2")[0][0] == 2  # the connection survived COPY
    finally:
        pool.close()


def test_hot_export_equals_pg_wire(questdb_clean: QuestDBHandle) -> None:
    data.write(questdb_clean, data.all_events())
    pool = Pool("QuestDB", questdb_clean.pg_dsn, size=1, wait_s=5, deadline_s=30)
    export = QuestDBHttp(questdb_clean.http_url, None, 30)
    fast, slow = HotReader(pool, export), HotReader(pool)
    lo, hi = data.us(data.DAYS[0]), data.us(data.DAYS[2], 12)
    cols = tuple(c.name for c in QUOTES.columns)
    try:
        for match, limit in _PAGE_CASES:
            a = fast.rows(QUOTES, cols, lo, hi, match, {}, limit)
            b = slow.rows(QUOTES, cols, lo, hi, match, {}, limit)
            assert a.schema == b.schema
            assert a.equals(b, null_equal=True), (match, limit)
        name = "ETH-30OCT26-3000-C"
        got = fast.rows(QUOTES, cols, lo, hi, instrument_match(name), {}, 1000)
        sent = sorted((q for q in data.quotes() if q.instrument == name and lo <= q.ts_us < hi), key=lambda q: q.ts_us)
        assert got.get_column("ts").to_list() == [q.ts_us for q in sent]
        assert got.get_column("bid_price").to_list() == [q.bid_price for q in sent]
        assert got.get_column("open_interest").to_list() == [q.open_interest for q in sent]  # None stays null
        assert got.get_column("bid_iv").null_count() == len(sent)  # never sent: null, not NaN
        assert got.get_column("underlying_index").unique().to_list() == ["ETH-30OCT26"]
        direct = export.frame(export_sql(QUOTES, cols, lo, hi, None, 1000), frames.schema(QUOTES, cols))
        assert direct.equals(slow.rows(QUOTES, cols, lo, hi, None, {}, 1000), null_equal=True)  # /exp itself
        chain = InstrumentMatch("instrument", regex=chain_regex("ETH"))
        at = data.us(data.DAYS[1], 13)
        a = fast.latest(QUOTES, cols, lo, at, chain, "instrument").sort("instrument")
        b = slow.latest(QUOTES, cols, lo, at, chain, "instrument").sort("instrument")
        assert a.get_column("instrument").to_list() == sorted(data.ETH)
        assert a.equals(b, null_equal=True)
        direct = export.frame(export_latest_sql(QUOTES, cols, lo, at, chain, "instrument"), frames.schema(QUOTES, cols))
        assert direct.sort("instrument").equals(b, null_equal=True)  # /exp itself
        # trades has VARCHAR columns: always the PG wire (QuestDB 9.3.4 /exp NULLs short VARCHARs)
        t = fast.rows(TRADES, ("ts", "instrument", "trade_id"), lo, hi, None, {}, 1000)
        assert t.get_column("trade_id").null_count() == 0
        assert t.height == 2 * 5 * 12 + t.filter(pl.col("ts") >= data.us(data.DAYS[2])).height
    finally:
        export.close()
        pool.close()


class SpyPool(Pool):
    """A real pool that also records the COPY statements it ran."""

    copies: list[str]

    def copy_out(self, sql: Any, params: Sequence[Any] | None = None) -> bytes:
        self.copies = [*getattr(self, "copies", []), str(sql)]
        return super().copy_out(sql, params)


def test_warm_binary_csv_and_select_paths_agree(postgres_clean: WarmHandle) -> None:
    quotes = data.quotes()
    with WarmStore.open(postgres_clean.writer_dsn) as sink:
        for batch in events_to_arrow(QUOTES, quotes).to_batches():
            sink.insert(QUOTES, batch)
    pool = SpyPool("warm store", postgres_clean.reader_dsn, size=1, wait_s=5, deadline_s=30)
    copy, plain = WarmReader(pool, use_columns=False), WarmReader(pool, use_copy=False, use_columns=False)
    lo, hi = data.us(data.DAYS[0]), data.us(data.DAYS[1], 12)
    name = "ETH-30OCT26-3000-C"
    sent = sorted((q for q in quotes if q.instrument == name and lo <= q.ts_us < hi), key=lambda q: q.ts_us)
    try:
        for cols in (("ts", "bid_price", "open_interest", "mark_iv"), tuple(c.name for c in QUOTES.columns)):
            a = copy.rows(QUOTES, cols, lo, hi, instrument_match(name), {}, 1000)  # binary, then CSV (strings)
            b = plain.rows(QUOTES, cols, lo, hi, instrument_match(name), {}, 1000)
            assert a.schema == b.schema
            assert a.equals(b, null_equal=True), cols
            assert a.get_column("ts").to_list() == [q.ts_us for q in sent]
            assert a.get_column("open_interest").to_list() == [q.open_interest for q in sent]
            assert a.get_column("bid_iv" if "bid_iv" in cols else "mark_iv").null_count() == (
                len(sent) if "bid_iv" in cols else 0
            )
        assert copy.use_copy  # COPY worked: no fallback
        assert [c.split("TO STDOUT")[1].strip() for c in pool.copies] == [
            "(FORMAT binary)",  # numeric columns: one fixed-width binary COPY
            "(FORMAT csv)",  # strings among the columns: CSV
        ]
    finally:
        pool.close()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "halves"])
def test_warm_column_pages_equal_plain_select_on_both_dialects(
    warm_store: WarmHandle, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if split:  # every page read as two halves (on two connections at once where the pool has two)
        monkeypatch.setattr(warm, "SPLIT_MIN_ROWS", 1)
    quotes, trades = data.quotes(), data.trades()
    # COPY FROM STDIN breaks the PGlite TimescaleDB test server's connection: the warm store
    # inserts there (WarmStore.open sees the PGlite server)
    with WarmStore.open(warm_store.writer_dsn) as sink:
        for table, events in ((QUOTES, quotes), (TRADES, trades)):
            for batch in events_to_arrow(table, events).to_batches():
                sink.insert(table, batch)
    # the PGlite test server shares one backend (two queries at once hang): one connection
    # there, so the two halves run one after the other (the busy-pool path)
    pool = Pool("warm store", warm_store.reader_dsn, size=1 if warm_store.pglite else 2, wait_s=5, deadline_s=30)
    fast, plain = WarmReader(pool, use_copy=False), WarmReader(pool, use_copy=False, use_columns=False)
    lo, hi = data.us(data.DAYS[0]), data.us(data.DAYS[2], 12)
    try:
        for table in (QUOTES, TRADES):
            for cols in (
                ("ts", "instrument", "bid_price", "open_interest") if table is QUOTES else table.column_names,
                table.column_names,
            ):
                for match, limit in _PAGE_CASES:
                    a = fast.rows(table, cols, lo, hi, match, {}, limit)
                    b = plain.rows(table, cols, lo, hi, match, {}, limit)
                    assert a.schema == b.schema, (table.name, cols)
                    assert a.equals(b, null_equal=True), (table.name, cols, match, limit)
            assert fast.use_columns  # never fell back
        name = "ETH-30OCT26-3000-C"
        got = fast.rows(QUOTES, QUOTES.column_names, lo, hi, instrument_match(name), {}, 1000)
        sent = sorted((q for q in quotes if q.instrument == name and lo <= q.ts_us < hi), key=lambda q: q.ts_us)
        assert got.get_column("ts").to_list() == [q.ts_us for q in sent]
        assert got.get_column("open_interest").to_list() == [q.open_interest for q in sent]  # None stays null
        assert got.get_column("bid_iv").null_count() == len(sent)
        t = fast.rows(TRADES, TRADES.column_names, lo, hi, None, {}, 1000)
        assert t.get_column("block_trade_id").null_count() > 0  # NULL strings stay null, not ""
        assert (
            t.get_column("tick_direction").to_list()
            == plain.rows(TRADES, TRADES.column_names, lo, hi, None, {}, 1000).get_column("tick_direction").to_list()
        )
    finally:
        pool.close()


def test_warm_column_page_decoding_checks_shape_and_order() -> None:
    import numpy as np

    from tickarchive.api.warm_columns import PG_EPOCH_US, Undecodable, decode

    cols = ("ts", "bid_price", "underlying_index")
    ts = np.array([3, 1, 2], dtype=">i8").tobytes()
    px = np.array([0.5, np.nan, 1.5], dtype=">f8").tobytes()
    lengths = np.array([1, -1, 2], dtype=">i4").tobytes()
    row = (3, ts, px, lengths, b"abc")
    got = decode(QUOTES, cols, ("ts",), row)  # out of order: sorted by the order keys
    assert got.rows() == [(PG_EPOCH_US + 1, None, None), (PG_EPOCH_US + 2, 1.5, "bc"), (PG_EPOCH_US + 3, 0.5, "a")]
    assert got.schema == pl.Schema(frames.schema(QUOTES, cols))
    assert decode(QUOTES, cols, ("ts",), (0, None, None, None, None)).height == 0
    for bad in (
        (3, ts[:-1], px, lengths, b"abc"),
        (3, ts, px, lengths, b"abcd"),
        (3, ts, px),
        (3, ts, px, lengths, b"abc", b""),
    ):
        with pytest.raises(Undecodable):
            decode(QUOTES, cols, ("ts",), bad)


def test_pool_fetch_many_runs_on_free_connections_and_keeps_order(postgres_clean: WarmHandle) -> None:
    statements = [("SELECT %s::int, pg_backend_pid(), pg_sleep(0.2)::text", [i]) for i in range(3)]
    for size, backends in ((3, 3), (1, 1)):
        pool = Pool("warm store", postgres_clean.reader_dsn, size=size, wait_s=5, deadline_s=30)
        try:
            pool.fetch("SELECT 1")
            rows = pool.fetch_many(statements)
            assert [r[0][0] for r in rows] == [0, 1, 2]
            assert len({r[0][1] for r in rows}) == backends  # a busy pool: one after another
            with pytest.raises(StoreUnavailable):
                pool.fetch_many([("SELECT 1", []), ("SELECT no_such_column", [])])
            assert pool.fetch_many([("SELECT 2", [])]) == [[(2,)]]
        finally:
            pool.close()
