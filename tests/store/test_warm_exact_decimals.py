"""Quotes stored as exact decimals on TimescaleDB (store/sql/timescaledb/V009,
store/warm_stored.py, docs/architecture.md#warm-tier-compression), on the PGlite
TimescaleDB test server: every row reads back bit for bit, before and after compression,
whichever way it was written; the real captures' values are stored as integers; an
upgrade from V008 keeps every row, the compression and the rollups."""

from __future__ import annotations

import datetime as dt
import math
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.real import WS_CAPTURES, capture_lines
from tickarchive import rows
from tickarchive.domain import QuoteTick
from tickarchive.months import Month
from tickarchive.store import migrate
from tickarchive.store.dialect import Dialect
from tickarchive.store.stack.handles import WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.store.warm_load import load_unnest
from tickarchive.tables import QUOTES, ColumnType
from tickarchive.venues.deribit import normalize as n

S = 1_000_000
DOUBLES = [c.name for c in QUOTES.columns if c.type is ColumnType.DOUBLE]
EDGES: list[float | None] = [
    -0.0, 0.0, math.nan, math.inf, -math.inf, 5e-324, 2.2250738585072014e-308, 1e300, -1e300,
    0.1 + 0.2, 2.0**53, 2.0**53 + 2, -(2.0**60), 123456789.12345679, 1e-9, -0.36967, 0.0815, 92.46,
    0.216527, 3002.61, 0.00012345, 12.3, 500.0, -1.0, 0.33333333333333331, None,
]
"""Values every double column must give back: signed zeros, NaN, infinities, subnormals,
magnitudes no scaled integer holds, more digits than the column's scale, and decimals."""


def _real_quotes() -> pa.Table:
    events: list[QuoteTick] = []
    for path in WS_CAPTURES:
        for ts, frame in capture_lines(path):
            if b'"channel":"ticker.' not in frame[:90]:
                continue
            o = n.parse_frame(frame, int(ts * S))
            assert isinstance(o, n.Notification)
            events += [e for e in o.events if isinstance(e, QuoteTick)]
    assert len(events) >= 180
    return rows.events_to_arrow(QUOTES, events)


def _edge_quotes(day: dt.date) -> pa.Table:
    """Row i, double column j: EDGES[(i + j) % len(EDGES)], so every column sees every value."""
    t0 = int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp() * S)
    count = len(EDGES)
    data: dict[str, list[Any]] = {
        "ts": [t0 + i * 1000 for i in range(count)],
        "recv_ts": [t0 + i * 1000 + 17 for i in range(count)],
        "instrument": ["ETH-EDGE-1-C"] * count,
        "underlying_index": ["SYN.ETH-EDGE"] * count,
        "state": ["open"] * count,
        "combo_state": [None] * count,
        "channel_interval": ["100ms"] * count,
    }
    for j, name in enumerate(DOUBLES):
        data[name] = [EDGES[(i + j) % count] for i in range(count)]
    schema = rows.arrow_schema(QUOTES)
    cols = {f.name: pa.array(data[f.name], f.type) for f in schema}
    cols["ts"] = pa.array(data["ts"], pa.int64()).cast(schema.field("ts").type)
    cols["recv_ts"] = pa.array(data["recv_ts"], pa.int64()).cast(schema.field("recv_ts").type)
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def _bits(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows sorted by (instrument, ts) with every double as its IEEE bit pattern."""
    table = table.select(list(QUOTES.column_names)).sort_by([("instrument", "ascending"), ("ts", "ascending")])
    out = []
    for r in table.to_pylist():
        out.append(tuple(
            struct.pack("<d", v) if isinstance(v, float) else v for v in (r[c] for c in QUOTES.column_names)
        ))
    return out


def _read_all(ws: WarmStore, days: list[dt.date]) -> pa.Table:
    batches = [b for day in days for b in ws.day_batches(QUOTES, day)]
    return pa.Table.from_batches(batches, schema=rows.arrow_schema(QUOTES))


def _days(table: pa.Table) -> list[dt.date]:
    return sorted(set(pc.cast(table.column("ts"), pa.date32()).to_pylist()))


def test_quotes_read_back_bit_for_bit_before_and_after_compression(timescaledb_clean: WarmHandle) -> None:
    real = _real_quotes()
    original = pa.concat_tables([real, _edge_quotes(_days(real)[0])])
    days = _days(original)
    with WarmStore(timescaledb_clean.owner_dsn, Dialect.TIMESCALEDB, pglite=True) as ws:
        assert ws.storage(QUOTES) == "quotes_data"
        assert ws.insert(QUOTES, original.combine_chunks().to_batches()[0]) == original.num_rows
        assert _bits(_read_all(ws, days)) == _bits(original)
        for day in days:
            assert ws.compress_day(QUOTES, day) == 1
            assert all(compressed for _, compressed, _ in ws.compression(QUOTES, day))
        assert _bits(_read_all(ws, days)) == _bits(original)
        # a second load of the same rows changes nothing (the dedup key, through the encoder)
        assert ws.insert(QUOTES, original.combine_chunks().to_batches()[0]) == 0
        assert _bits(_read_all(ws, days)) == _bits(original)
        # the archive's export reads the same rows
        months = sorted({Month.of(d) for d in days})
        exported = pa.Table.from_batches(
            [b for m in months for b in ws.batches(QUOTES, m)],
            schema=rows.arrow_schema(QUOTES),
        )
        assert _bits(exported) == _bits(original)


def test_the_real_captures_values_are_stored_as_scaled_integers(timescaledb_clean: WarmHandle) -> None:
    """What makes the compression: every price, size, IV and mark of the real 2021 captures
    fits its column's scale (the float fallback stays empty for them)."""
    real = _real_quotes()
    with WarmStore(timescaledb_clean.owner_dsn, Dialect.TIMESCALEDB, pglite=True) as ws:
        ws.insert(QUOTES, real.combine_chunks().to_batches()[0])
    counts = timescaledb_clean.query(
        "SELECT " + ", ".join(f"count({c}_m), count({c}_f)" for c in DOUBLES) + " FROM quotes_data"
    )[0]
    stored = {c: (counts[2 * i], counts[2 * i + 1]) for i, c in enumerate(DOUBLES)}
    for c in DOUBLES:
        assert stored[c][0] + stored[c][1] == real.num_rows - real.column(c).null_count, c
    as_floats = {c: f for c, (_, f) in stored.items() if f}
    assert as_floats == {}
    for c in ("bid_price", "ask_price", "bid_amount", "mark_price", "mark_iv", "index_price", "underlying_price"):
        assert stored[c][0] > 100, c


def test_insert_into_the_view_stores_what_the_loader_stores(timescaledb_clean: WarmHandle) -> None:
    """Ad-hoc writes go through the view's INSTEAD OF trigger: the same stored row as the
    bulk loader's, and ON CONFLICT DO NOTHING counts only new rows."""
    day = dt.date(2025, 12, 21)
    edges = _edge_quotes(day)
    with WarmStore(timescaledb_clean.owner_dsn, Dialect.TIMESCALEDB, pglite=True) as ws:
        ws.insert(QUOTES, edges.to_batches()[0])
    by_loader = timescaledb_clean.query("SELECT * FROM quotes_data ORDER BY ts")
    timescaledb_clean.truncate_all()
    cols = ", ".join(QUOTES.column_names)
    marks = ", ".join(["%s"] * len(QUOTES.column_names))
    with timescaledb_clean.connect(timescaledb_clean.writer_dsn) as conn:
        for _ in range(2):
            counted = 0
            for r in edges.to_pylist():
                cur = conn.execute(
                    f"INSERT INTO quotes ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                    [r[c] for c in QUOTES.column_names],
                )
                counted += cur.rowcount
            assert counted == (edges.num_rows if _ == 0 else 0)
    by_trigger = timescaledb_clean.query("SELECT * FROM quotes_data ORDER BY ts")

    def same(a: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in r) for r in a]

    assert same(by_trigger) == same(by_loader)
    assert len(by_loader) == len(EDGES)


def test_upgrading_from_v008_keeps_rows_compression_and_rollups(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tickarchive.store.stack import ephemeral

    real = _real_quotes()
    days = _days(real)
    w = ephemeral.start_timescaledb(tmp_path_factory.mktemp("v009"), run_migrations=False)
    try:
        dsn = w.handle.owner_dsn
        migrate.migrate_warm(dsn, "timescaledb", upto=8)
        with w.handle.connect() as conn:  # the V008 table quotes, as V008's loaders wrote it
            assert load_unnest(conn, QUOTES, real.combine_chunks().to_batches()[0]) == real.num_rows
        # every day but the last compressed (the rollover compresses a day once verified)
        last_day = dt.datetime(days[-1].year, days[-1].month, days[-1].day, tzinfo=dt.UTC)
        w.handle.query("SELECT compress_chunk(c) FROM show_chunks('quotes', older_than => %s::timestamptz) c",
                       (last_day,))
        assert migrate.migrate_warm(dsn, "timescaledb").applied == (9,)
        status = w.handle.query(
            "SELECT (range_start AT TIME ZONE 'UTC')::date, is_compressed FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'quotes_data' ORDER BY 1"
        )
        assert status == [(d, d != days[-1]) for d in days]
        assert w.handle.query("SELECT to_regclass('quotes_v008')") == [(None,)]
        with WarmStore(dsn, Dialect.TIMESCALEDB, pglite=True) as ws:
            assert _bits(_read_all(ws, days)) == _bits(real)
        # quotes_1m was rebuilt on the stored form and refreshed by `migrate`
        got = w.handle.query(
            "SELECT sum(updates)::bigint, count(DISTINCT instrument) FROM quotes_1m"
        )
        assert got == [(real.num_rows, len(set(real.column("instrument").to_pylist())))]
        last = w.handle.query(
            "SELECT bid_price FROM quotes_1m WHERE instrument = %s ORDER BY bucket DESC LIMIT 1",
            (real.column("instrument")[0].as_py(),),
        )
        inst = real.filter(pc.equal(real.column("instrument"), real.column("instrument")[0]))
        assert last == [(inst.sort_by("ts").column("bid_price")[-1].as_py(),)]
    finally:
        w.server.down()


def test_the_encoding_is_documented_with_the_migration_scales() -> None:
    """docs/architecture.md lists each column's scale as V009 stores it."""
    sql_text = (Path(migrate.__file__).resolve().parent / "sql" / "timescaledb" / "V009__quotes_exact_decimals.sql")
    text = sql_text.read_text()
    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    for c in DOUBLES:
        marker = f"tickarchive_dec(q.{c}, 1e"
        assert marker in text, c
        k = text.split(marker, 1)[1].split(")", 1)[0]
        assert f"coalesce({c}_m / 1e{k}::float8, {c}_f) AS {c}" in text, c
        (row,) = [line for line in doc.splitlines() if line.startswith(f"| 1e{k} |")]
        assert f"`{c}`" in row, c


def test_the_warm_compression_bench_measures_both_forms_of_the_same_rows() -> None:
    from tickarchive.bench import warm_compression as wc

    real = _real_quotes()
    result = wc.run(real, echo=lambda _: None)
    assert set(result) == {"decimals", "doubles"}
    for form in result.values():
        assert form.rows == real.num_rows
        assert form.after_bytes > 0
        assert form.before_bytes > 0
        assert form.batches >= len(set(real.column("instrument").to_pylist()))
        assert form.load_s > 0
    assert "bid_price_m" in result["decimals"].columns
    assert "bid_price" in result["doubles"].columns
    assert "bid_price" not in result["decimals"].columns
    text = wc.summary(result)
    assert text.count(" B/row, ") == 2
