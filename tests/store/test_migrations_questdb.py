"""QuestDB schema: the migrations create exactly the registry's tables, and DEDUP works."""

from __future__ import annotations

import json
import warnings
from typing import Any

from tests.real import NAUTILUS
from tickarchive import tables as t
from tickarchive.store import migrate
from tickarchive.store.stack.handles import QuestDBHandle

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Sender, TimestampMicros, TimestampNanos

REAL = NAUTILUS
QUESTDB_TYPE = {
    t.ColumnType.TIMESTAMP: "TIMESTAMP",
    t.ColumnType.SYMBOL: "SYMBOL",
    t.ColumnType.VARCHAR: "VARCHAR",
    t.ColumnType.DOUBLE: "DOUBLE",
    t.ColumnType.LONG: "LONG",
    t.ColumnType.INT: "INT",
    t.ColumnType.BOOLEAN: "BOOLEAN",
}


def test_every_registry_table_exists_with_its_columns_types_and_dedup_keys(questdb: QuestDBHandle) -> None:
    meta = {
        r[0]: r[1:]
        for r in questdb.query(
            "SELECT table_name, designatedTimestamp, partitionBy, walEnabled, dedup FROM tables()"
        )
    }
    for table in t.ALL_TABLES:
        assert meta[table.name] == ("ts", "DAY", True, True), table.name
        cols = questdb.query(f"SELECT \"column\", type, upsertKey FROM table_columns('{table.name}')")
        assert [(c, ty) for c, ty, _ in cols] == [(c.name, QUESTDB_TYPE[c.type]) for c in table.columns]
        assert {c for c, _, key in cols if key} == set(table.dedup_keys), table.name


def test_tables_are_wal_tables(questdb: QuestDBHandle) -> None:
    wal = {r[0] for r in questdb.query("SELECT name FROM wal_tables()")}
    assert {tbl.name for tbl in t.ALL_TABLES} <= wal


def test_second_migration_run_applies_nothing(questdb: QuestDBHandle) -> None:
    report = migrate.migrate_questdb(questdb.pg_dsn)
    files = migrate.load_migrations("questdb")
    assert report.applied == ()
    assert report.current == files[-1].version
    ledger = sorted(questdb.query("SELECT version, name FROM schema_migrations"))
    assert ledger == [(m.version, m.name) for m in files]
    assert ledger[:2] == [(1, "tables"), (2, "gaps_key")]


def _real_trades() -> list[dict[str, Any]]:
    payload = json.loads((REAL / "http_get_last_trades.json").read_text())
    trades: list[dict[str, Any]] = payload["result"]["trades"]
    return trades[:3]


def _send(sender: Sender, trade: dict[str, Any]) -> None:
    ts = TimestampMicros(trade["timestamp"] * 1000)
    sender.row(
        "trades",
        symbols={"instrument": trade["instrument_name"], "direction": trade["direction"], "source": "backfill"},
        columns={
            "recv_ts": ts,
            "trade_id": trade["trade_id"],
            "trade_seq": trade["trade_seq"],
            "price": trade["price"],
            "amount": trade["amount"],
            "tick_direction": trade["tick_direction"],
            "mark_price": trade["mark_price"],
            "index_price": trade["index_price"],
            "contracts": trade["contracts"],
        },
        at=TimestampNanos(trade["timestamp"] * 1_000_000),
    )


def test_a_row_resent_over_ilp_is_stored_once(questdb_clean: QuestDBHandle) -> None:
    trades = _real_trades()
    with Sender.from_conf(questdb_clean.ilp_conf) as sender:
        for trade in trades:
            _send(sender, trade)
        sender.flush()
    questdb_clean.wait_for_rows("trades", 3)
    # the collector restarts and replays the overlap: the same three trades again, plus one
    with Sender.from_conf(questdb_clean.ilp_conf) as sender:
        for trade in trades:
            _send(sender, trade)
        sender.flush()
        _send(sender, {**trades[2], "trade_id": "ETH-284830845", "trade_seq": 203024590})
        sender.flush()
    questdb_clean.wait_for_rows("trades", 4)
    rows = questdb_clean.query(
        "SELECT instrument, trade_id, trade_seq, price, amount, direction, mark_price FROM trades ORDER BY trade_seq"
    )
    assert rows == [
        ("ETH-PERPETUAL", "ETH-284830839", 203024587, 2968.3, 1.0, "sell", 2968.01),
        ("ETH-PERPETUAL", "ETH-284830843", 203024588, 2968.3, 1.0, "sell", 2967.91),
        ("ETH-PERPETUAL", "ETH-284830844", 203024589, 2968.3, 1.0, "sell", 2967.91),
        ("ETH-PERPETUAL", "ETH-284830845", 203024590, 2968.3, 1.0, "sell", 2967.91),
    ]


def test_split_statements_drops_comments_and_keeps_multiline_statements() -> None:
    sql = "-- header; not a statement\nCREATE TABLE a (\n  x INT\n);\n\nCREATE TABLE b (y INT);\n"
    assert migrate.split_statements(sql) == ["CREATE TABLE a (\n  x INT\n)", "CREATE TABLE b (y INT)"]


def test_migration_files_are_versioned_in_order() -> None:
    """QuestDB's versions run 1..n. The two warm dialects share one sequence: a version
    number means the same change in both, or a change only one dialect has (TimescaleDB's
    V008 sets compression, which plain PostgreSQL lacks), so a dialect may skip numbers;
    each has V001..V005, and no number is used for two different changes."""
    questdb = [m.version for m in migrate.load_migrations("questdb")]
    assert questdb == list(range(1, len(questdb) + 1))
    warm = {d: {m.version: m.name for m in migrate.load_migrations(d)} for d in ("timescaledb", "postgres")}
    for d, versions in warm.items():
        assert set(range(1, 6)) <= set(versions), d
    for v in set(warm["timescaledb"]) & set(warm["postgres"]):
        assert warm["timescaledb"][v] == warm["postgres"][v], v
    assert 8 in warm["timescaledb"]
    assert 8 not in warm["postgres"]


def test_the_web_console_is_served_on_the_http_port(questdb: QuestDBHandle) -> None:
    import httpx

    page = httpx.get(f"{questdb.http_url}/index.html", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html"
    assert "<!doctype html>" in page.text.lower()
    # "/" answers 301 -> /index.html without a body length: browsers follow it on the
    # headers; scripted clients waiting for the body hang, so they should ask /index.html
    with httpx.stream("GET", f"{questdb.http_url}/", timeout=10) as root:
        assert root.status_code == 301
        assert root.headers["location"] == "/index.html"
