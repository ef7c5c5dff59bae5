"""Warm-store schemas in both dialects, on real servers.

TimescaleDB dialect on the PGlite TimescaleDB server; plain dialect on PostgreSQL 18.
Tests parametrized by ``warm_store`` must hold in both.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from tickarchive import tables as t
from tickarchive.store import migrate
from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import MigrationError
from tickarchive.store.stack.handles import WarmHandle
from tickarchive.store.stack.status import Action, State
from tickarchive.store.warm_stored import storage_name, stored_form

PG_TYPE = {
    t.ColumnType.TIMESTAMP: "timestamp with time zone",
    t.ColumnType.SYMBOL: "text",
    t.ColumnType.VARCHAR: "text",
    t.ColumnType.DOUBLE: "double precision",
    t.ColumnType.LONG: "bigint",
    t.ColumnType.INT: "integer",
    t.ColumnType.BOOLEAN: "boolean",
}
UTC = dt.UTC
DAY = dt.date(2025, 12, 21)


def _at(hh: int, mm: int, ss: float) -> dt.datetime:
    sec = int(ss)
    return dt.datetime(2025, 12, 21, hh, mm, sec, round((ss - sec) * 1e6), tzinfo=UTC)


# ------------------------------------------------------------------ both dialects


def test_tables_have_the_registry_columns_types_and_nullability(warm_store: WarmHandle) -> None:
    for table in t.ALL_TABLES:
        cols = warm_store.query(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table.name,),
        )
        expected = [(c.name, PG_TYPE[c.type], "YES" if c.nullable else "NO") for c in table.columns]
        if stored_form(table, warm_store.dialect) is not None:
            # a view (quotes on TimescaleDB): names and types; NOT NULL is its hypertable's
            assert [c[:2] for c in cols] == [c[:2] for c in expected], table.name
            not_null = warm_store.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s AND is_nullable = 'NO' ORDER BY ordinal_position",
                (storage_name(table, warm_store.dialect),),
            )
            assert [r[0] for r in not_null] == [c.name for c in table.columns if not c.nullable], table.name
            continue
        assert cols == expected, table.name


def test_each_table_has_a_unique_index_on_its_dedup_key(warm_store: WarmHandle) -> None:
    for table in t.ALL_TABLES:
        rows = warm_store.query(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = %s::regclass AND i.indisunique GROUP BY i.indexrelid",
            (storage_name(table, warm_store.dialect),),
        )
        assert sorted(table.dedup_keys) in [r[0] for r in rows], table.name


def test_a_version_one_dialect_lacks_is_skipped_by_the_other(warm_store: WarmHandle) -> None:
    """V008 exists for TimescaleDB only (compression settings; plain PostgreSQL has no
    counterpart): each dialect's ledger holds exactly its own files, and its current
    version is its own highest."""
    d = warm_store.dialect.value
    own = {m.version for m in migrate.load_migrations(d)}  # type: ignore[arg-type]
    ledger = {int(str(v)) for (v,) in warm_store.query("SELECT version FROM schema_migrations")}
    assert ledger == own
    assert (8 in ledger) is (warm_store.dialect is Dialect.TIMESCALEDB)
    report = migrate.migrate_warm(warm_store.owner_dsn, d)
    assert report.applied == ()
    assert report.current == max(own)


def test_second_migration_run_applies_nothing(warm_store: WarmHandle) -> None:
    report = migrate.migrate_warm(warm_store.owner_dsn, warm_store.dialect.value)
    files = migrate.load_migrations(warm_store.dialect.value)
    assert report.applied == ()
    assert report.current == files[-1].version
    ledger = warm_store.query("SELECT version, name, dialect FROM schema_migrations ORDER BY version")
    d = warm_store.dialect.value
    assert ledger == [(m.version, m.name, d) for m in files]
    assert ledger[:5] == [(1, "tables", d), (2, "rollups", d), (3, "bookkeeping", d), (4, "grants", d),
                          (5, "gaps_key", d)]


TRADES = [
    # instrument, at, trade_id, trade_seq, price, amount, direction
    ("ETH-26DEC25-3000-C", _at(10, 0, 1.5), "ETH-1", 11, 0.0450, 2.0, "buy"),
    ("ETH-26DEC25-3000-C", _at(10, 0, 20.0), "ETH-2", 12, 0.0475, 1.0, "sell"),
    ("ETH-26DEC25-3000-C", _at(10, 0, 59.9), "ETH-3", 13, 0.0440, 5.0, "sell"),
    ("ETH-26DEC25-3000-C", _at(10, 1, 0.0), "ETH-4", 14, 0.0460, 3.0, "buy"),
    ("ETH-26DEC25-2500-P", _at(10, 0, 30.0), "ETH-5", 7, 0.0100, 10.0, "buy"),
]
QUOTES = [
    # instrument, at, bid, ask, mark, mark_iv, underlying
    ("ETH-26DEC25-3000-C", _at(10, 0, 0.1), 0.0440, 0.0460, 0.0450, 61.2, 2975.5),
    ("ETH-26DEC25-3000-C", _at(10, 0, 30.0), 0.0445, 0.0470, 0.0457, 61.9, 2980.0),
    ("ETH-26DEC25-3000-C", _at(10, 0, 45.0), None, 0.0480, 0.0459, 62.0, 2981.25),
]


def _load(handle: WarmHandle) -> None:
    with handle.connect(handle.writer_dsn) as conn:
        conn.execute("SELECT tickarchive_ensure_partition('trades', %s)", (DAY,))
        conn.execute("SELECT tickarchive_ensure_partition('quotes', %s)", (DAY,))
        for _ in range(2):  # the second load changes nothing: idempotent
            with conn.transaction():
                for inst, at, tid, seq, price, amount, side in TRADES:
                    conn.execute(
                        "INSERT INTO trades (ts, recv_ts, instrument, trade_id, trade_seq, price, amount, direction,"
                        " source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'ws') ON CONFLICT DO NOTHING",
                        (at, at, inst, tid, seq, price, amount, side),
                    )
                for inst, at, bid, ask, mark, iv, und in QUOTES:
                    conn.execute(
                        "INSERT INTO quotes (ts, recv_ts, instrument, bid_price, ask_price, mark_price, mark_iv,"
                        " underlying_price) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (at, at, inst, bid, ask, mark, iv, und),
                    )


def _refresh(handle: WarmHandle) -> None:
    start = dt.datetime(2025, 12, 21, tzinfo=UTC)
    with handle.connect() as conn:
        for stmt in migrate.refresh_rollups_sql(handle.dialect):
            conn.execute(stmt, (start, start + dt.timedelta(days=1)))


def test_rollups_give_ohlc_volume_and_vwap_of_the_loaded_trades(warm_store: WarmHandle) -> None:
    _load(warm_store)
    assert warm_store.query("SELECT count(*) FROM trades") == [(5,)]
    assert warm_store.query("SELECT count(*) FROM quotes") == [(3,)]
    _refresh(warm_store)
    rows = warm_store.query(
        "SELECT bucket, instrument, open, high, low, close, volume, buy_volume, sell_volume, trade_count, vwap "
        "FROM trades_1m ORDER BY instrument DESC, bucket"
    )
    m0, m1 = _at(10, 0, 0), _at(10, 1, 0)
    c = "ETH-26DEC25-3000-C"
    vwap0 = (0.0450 * 2 + 0.0475 * 1 + 0.0440 * 5) / 8
    assert [r[:10] for r in rows] == [
        (m0, c, 0.0450, 0.0475, 0.0440, 0.0440, 8.0, 2.0, 6.0, 3),
        (m1, c, 0.0460, 0.0460, 0.0460, 0.0460, 3.0, 3.0, 0.0, 1),
        (m0, "ETH-26DEC25-2500-P", 0.0100, 0.0100, 0.0100, 0.0100, 10.0, 10.0, 0.0, 1),
    ]
    assert [r[10] for r in rows] == pytest.approx([vwap0, 0.0460, 0.0100], rel=1e-12)
    quotes = warm_store.query(
        "SELECT bucket, instrument, bid_price, ask_price, mark_price, mark_iv, underlying_price, mean_spread, updates"
        " FROM quotes_1m"
    )
    assert [q[:7] + q[8:] for q in quotes] == [(m0, c, None, 0.0480, 0.0459, 62.0, 2981.25, 3)]
    assert quotes[0][7] == pytest.approx(((0.0460 - 0.0440) + (0.0470 - 0.0445)) / 2, rel=1e-12)

    warm_store.truncate_all()  # what the *_clean fixtures do: rollups are emptied too
    assert warm_store.query("SELECT count(*) FROM trades_1m") == [(0,)]
    assert warm_store.query("SELECT count(*) FROM quotes_1m") == [(0,)]


def test_a_dialect_the_server_lacks_is_refused(postgres: WarmHandle) -> None:
    with pytest.raises(MigrationError, match="no timescaledb extension"):
        migrate.migrate_warm(postgres.owner_dsn, "timescaledb")


# ------------------------------------------------------------------ TimescaleDB dialect


def _stored(table: t.Table) -> str:
    return storage_name(table, Dialect.TIMESCALEDB)


def test_hypertables_have_one_day_chunks(timescaledb: WarmHandle) -> None:
    dims = timescaledb.query(
        "SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_schema = 'public'"
    )
    assert sorted(dims) == sorted((_stored(tbl), "ts", dt.timedelta(days=1)) for tbl in t.ALL_TABLES)


def test_compression_is_segmented_by_instrument_and_ordered_by_ts(timescaledb: WarmHandle) -> None:
    rows = timescaledb.query(
        "SELECT hypertable::text, segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
        " WHERE hypertable::text NOT LIKE '\\_timescaledb\\_internal.%'"
    )
    # ordered by ts, then the rest of the dedup key: every unique-index column is a
    # segmentby or orderby column, as TimescaleDB recommends for compressed unique inserts;
    # the small tables compressed whole are ordered by their segment_by column first (V008)
    def expect(tbl: t.Table) -> tuple[str, str]:
        rest = [k for k in tbl.dedup_keys if k not in ("ts", tbl.segment_by)]
        if tbl.warm_segmented:
            return tbl.segment_by, ",".join(["ts", *rest])
        return "", ",".join([tbl.segment_by, "ts", *rest])

    expected = {_stored(tbl): expect(tbl) for tbl in t.ALL_TABLES}
    assert {name: (seg, order) for name, seg, order in rows} == expected
    assert expected["quotes_data"] == ("instrument", "ts")
    assert expected["trades"] == ("", "instrument,ts,trade_id")
    assert expected["book_changes"] == ("instrument", "ts,change_id,side,price")


def test_continuous_aggregates_exist_materialized_only(timescaledb: WarmHandle) -> None:
    rows = timescaledb.query(
        "SELECT view_name, hypertable_name, materialized_only FROM timescaledb_information.continuous_aggregates"
    )
    assert sorted(rows) == [("quotes_1m", "quotes_data", True), ("trades_1m", "trades", True)]


def test_a_loaded_day_compresses_and_still_reads_the_same(timescaledb_clean: WarmHandle) -> None:
    db = timescaledb_clean
    _load(db)
    before = db.query("SELECT instrument, trade_id, price FROM trades ORDER BY trade_id")
    chunks = db.query("SELECT show_chunks('trades')")
    assert len(chunks) == 1
    db.query("SELECT compress_chunk(%s::regclass)", (str(chunks[0][0]),))
    assert db.query(
        "SELECT is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = 'trades'"
    ) == [(True,)]
    assert db.query("SELECT instrument, trade_id, price FROM trades ORDER BY trade_id") == before
    _load(db)  # a re-run of the day's load into the compressed chunk changes nothing
    assert db.query("SELECT instrument, trade_id, price FROM trades ORDER BY trade_id") == before


# ------------------------------------------------------------------ plain PostgreSQL dialect


def test_ensure_partition_creates_the_day_once(postgres: WarmHandle) -> None:
    day = dt.date(2024, 2, 29)
    first = postgres.query("SELECT tickarchive_ensure_partition('quotes', %s)::text", (day,))
    again = postgres.query("SELECT tickarchive_ensure_partition('quotes', %s)::text", (day,))
    assert first == again == [("quotes_20240229",)]
    bounds = postgres.query(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = 'quotes_20240229'"
    )
    assert bounds == [("FOR VALUES FROM ('2024-02-29 00:00:00+00') TO ('2024-03-01 00:00:00+00')",)]


def test_a_row_for_a_day_without_partition_is_refused(postgres: WarmHandle) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="no partition"):
        postgres.query(
            "INSERT INTO index_ticks (ts, recv_ts, index_name, price) VALUES (%s, %s, 'eth_usd', 2968.3)",
            (dt.datetime(1999, 1, 1, tzinfo=UTC), dt.datetime(1999, 1, 1, tzinfo=UTC)),
        )


def test_rollup_tables_have_the_continuous_aggregate_columns(postgres: WarmHandle) -> None:
    for name, cols in {
        "trades_1m": [
            "bucket", "instrument", "open", "high", "low", "close", "volume", "buy_volume", "sell_volume",
            "trade_count", "vwap",
        ],
        "quotes_1m": [
            "bucket", "instrument", "bid_price", "ask_price", "mark_price", "mark_iv", "underlying_price",
            "mean_spread", "updates",
        ],
    }.items():
        got = postgres.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            (name,),
        )
        assert [g[0] for g in got] == cols
        assert postgres.query(
            "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = %s::regclass", (name,)
        ) == [(1,)]


def test_reader_can_select_but_not_write(postgres_clean: WarmHandle) -> None:
    _load(postgres_clean)
    assert postgres_clean.query("SELECT count(*) FROM trades", dsn=postgres_clean.reader_dsn) == [(5,)]
    assert postgres_clean.query("SELECT count(*) FROM trades_20251221", dsn=postgres_clean.reader_dsn) == [(5,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        postgres_clean.query(
            "INSERT INTO index_ticks (ts, recv_ts, index_name, price) VALUES (now(), now(), 'eth_usd', 1)",
            dsn=postgres_clean.reader_dsn,
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        postgres_clean.query(
            "SELECT tickarchive_ensure_partition('quotes', '2025-12-22')", dsn=postgres_clean.reader_dsn
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        postgres_clean.query("DELETE FROM trades", dsn=postgres_clean.reader_dsn)


def test_writer_cannot_change_the_schema(postgres: WarmHandle) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        postgres.query("DROP TABLE coverage_daily", dsn=postgres.writer_dsn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        postgres.query("DELETE FROM schema_migrations", dsn=postgres.writer_dsn)


def test_an_edited_applied_migration_is_detected(postgres: WarmHandle) -> None:
    postgres.query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2")
    try:
        with pytest.raises(MigrationError, match=r"V002__rollups was changed after it was applied"):
            migrate.migrate_warm(postgres.owner_dsn, "postgres")
    finally:
        real = migrate.load_migrations("postgres")[1].checksum
        postgres.query("UPDATE schema_migrations SET checksum = %s WHERE version = 2", (real,))


def test_status_reports_the_plain_dialect(postgres: WarmHandle) -> None:
    from tickarchive.store.stack.postgres import ExternalPostgres

    external = ExternalPostgres(postgres.settings())
    assert external.up().action is Action.EXTERNAL
    status = external.status()
    assert status.state is State.EXTERNAL
    assert status.dialect is Dialect.POSTGRES
    assert status.version is not None
    assert status.version.startswith("PostgreSQL 18")
    assert (status.data_bytes or 0) > 1_000_000
    forced = ExternalPostgres(postgres.settings().model_copy(update={"dialect": "timescaledb"})).status()
    assert forced.state is State.EXTERNAL
    assert forced.dialect is None
    assert forced.detail == (
        "migrated with the postgres dialect but postgres.dialect=timescaledb; "
        "set TICKARCHIVE_POSTGRES__DIALECT=postgres"
    )


@pytest.mark.parametrize("dialect", ["postgres", "timescaledb"])
def test_the_gaps_key_upgrade_keeps_every_row_and_then_tells_connections_apart(
    dialect: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """V005 on a warm store that already holds gaps (TimescaleDB: in a compressed chunk):
    nothing is lost, and afterwards two gaps that differ only by connection are two rows
    (issue #14, finding 10)."""
    import tempfile
    from pathlib import Path

    from tickarchive.store.stack import ephemeral

    root = Path(tempfile.mkdtemp(prefix="tickarchive-test-upgrade-")) if dialect == "postgres" else (
        tmp_path_factory.mktemp("upgrade"))
    start = ephemeral.start_postgres if dialect == "postgres" else ephemeral.start_timescaledb
    w = start(root, run_migrations=False)
    try:
        dsn = w.handle.owner_dsn
        migrate.migrate_warm(dsn, dialect, upto=4)
        insert = ("INSERT INTO gaps (ts, end_ts, instrument, kind, cause, connection, status) "
                  "VALUES (%s, %s, '*', 'disconnect', 'connection lost', %s, 'open') ON CONFLICT DO NOTHING")
        with w.handle.connect() as conn:
            if dialect == "postgres":
                conn.execute("SELECT tickarchive_ensure_partition('gaps'::regclass, %s)", (DAY,))
            conn.execute(insert, (_at(9, 0, 0), _at(9, 0, 1), "c0"))
            conn.execute(insert, (_at(9, 0, 0), _at(9, 0, 1), "c1"))  # the old key: refused silently
            if dialect == "timescaledb":
                conn.execute("SELECT compress_chunk(c) FROM show_chunks('gaps') c")
        assert w.handle.query("SELECT connection FROM gaps") == [("c0",)]
        assert migrate.migrate_warm(dsn, dialect, upto=5).applied == (5,)
        with w.handle.connect() as conn:
            conn.execute(insert, (_at(9, 0, 0), _at(9, 0, 1), "c1"))
            conn.execute(insert, (_at(9, 0, 0), _at(9, 0, 1), "c1"))  # the same gap again: one row
        assert sorted(w.handle.query("SELECT connection FROM gaps")) == [("c0",), ("c1",)]
    finally:
        w.server.down()


def test_v008_compresses_trades_whole_and_keeps_compressed_chunks_compressed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """V008 (TimescaleDB only) on a warm store holding a compressed day of trades: the rows
    stay, the chunk is compressed again with the new settings, and a re-load changes nothing."""
    from tickarchive.store.stack import ephemeral

    earlier = max(m.version for m in migrate.load_migrations("timescaledb") if m.version < 8)
    w = ephemeral.start_timescaledb(tmp_path_factory.mktemp("v008"), run_migrations=False)
    try:
        dsn = w.handle.owner_dsn
        migrate.migrate_warm(dsn, "timescaledb", upto=earlier)
        db = w.handle
        _load(db)
        db.query("SELECT compress_chunk(c) FROM show_chunks('trades') c")
        before = db.query("SELECT instrument, trade_id, price FROM trades ORDER BY trade_id")
        assert migrate.migrate_warm(dsn, "timescaledb", upto=8).applied == (8,)
        assert db.query(
            "SELECT is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = 'trades'"
        ) == [(True,)]
        assert db.query(
            "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
            " WHERE hypertable::text = 'trades'"
        ) == [("", "instrument,ts,trade_id")]
        assert db.query("SELECT instrument, trade_id, price FROM trades ORDER BY trade_id") == before
        _load(db)
        assert db.query("SELECT instrument, trade_id, price FROM trades ORDER BY trade_id") == before
    finally:
        w.server.down()


# ------------------------------------------------------------------ the two dialects' files

SQL = Path(migrate.__file__).resolve().parent / "sql"
DIALECT_NEUTRAL = ("V003__bookkeeping.sql", "V007__api_keys_usage.sql")
"""Migrations with no TimescaleDB-specific statement: one text, written in both folders."""


def test_dialects_share_their_versions_and_neutral_migrations_verbatim() -> None:
    plain = sorted(p.name for p in (SQL / "postgres").glob("V*.sql"))
    timescale = sorted(p.name for p in (SQL / "timescaledb").glob("V*.sql"))
    # the same versions under the same names; TimescaleDB may add later ones of its own
    assert timescale[: len(plain)] == plain
    for name in DIALECT_NEUTRAL:
        assert (SQL / "postgres" / name).read_bytes() == (SQL / "timescaledb" / name).read_bytes(), name
    # a migration that differs between the dialects has a reason to: it names TimescaleDB
    for name in set(plain) - set(DIALECT_NEUTRAL):
        text = (SQL / "timescaledb" / name).read_text()
        assert "timescaledb" in text.lower() or "hypertable" in text.lower() or "compress" in text.lower(), name
