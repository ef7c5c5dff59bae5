"""Small frozen handles on running servers, with the query helpers tests and benches need.

The pytest session fixtures (tests/conftest.py) hand these out; ``tickarchive bench``
commands may build them from the settings too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from tickarchive.settings import PostgresSettings, QuestDBSettings
from tickarchive.store.dialect import Dialect
from tickarchive.store.warm_stored import storage_name
from tickarchive.tables import ALL_TABLES

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class QuestDBHandle:
    """A running QuestDB. ``query`` uses the PG wire (user/password below, database qdb)."""

    host: str
    http_port: int
    pg_port: int
    health_port: int
    root: Path
    user: str = "admin"
    password: str = "quest"

    @property
    def ilp_conf(self) -> str:
        """Configuration string for ``questdb.ingress.Sender.from_conf`` (ILP over HTTP)."""
        return f"http::addr={self.host}:{self.http_port};"

    @property
    def http_url(self) -> str:
        """REST (/exec, /exp, /imp), ILP /write and the web console."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def pg_dsn(self) -> str:
        return make_conninfo(
            host=self.host, port=self.pg_port, user=self.user, password=self.password, dbname="qdb",
            sslmode="disable",
        )

    def settings(self) -> QuestDBSettings:
        """The ``[questdb]`` settings section that points at this server."""
        return QuestDBSettings(
            host=self.host, http_port=self.http_port, pg_port=self.pg_port, health_port=self.health_port,
            user=self.user, password=self.password,
        )

    def query(self, sql: str, params: tuple[Any, ...] | None = None) -> list[Row]:
        """Run one statement; its rows (``[]`` for DDL)."""
        with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []

    def count(self, table: str) -> int:
        return int(self.query(f'SELECT count() FROM "{table}"')[0][0])

    def wait_for_wal(self, timeout_s: float = 30.0) -> None:
        """Wait until every WAL table has applied all committed transactions.

        WAL apply is asynchronous: rows acknowledged by ILP are visible only after this.
        A suspended table fails at once with QuestDB's error message.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.query("SELECT name, suspended, writerTxn, sequencerTxn, errorMessage FROM wal_tables()")
            for name, suspended, _w, _s, message in rows:
                if suspended:
                    raise AssertionError(f"QuestDB WAL table {name} is suspended: {message}")
            pending = [(r[0], r[2], r[3]) for r in rows if r[2] < r[3]]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"QuestDB WAL not applied after {timeout_s} s: {pending}")
            time.sleep(0.05)

    def wait_for_rows(self, table: str, expected: int, timeout_s: float = 30.0) -> int:
        """Wait until ``table`` has ``expected`` rows and its WAL is applied; returns the count.

        Fails (AssertionError) with the last count if that never happens.
        """
        deadline = time.monotonic() + timeout_s
        n = -1
        while time.monotonic() < deadline:
            n = self.count(table)
            if n == expected:
                self.wait_for_wal(max(0.1, deadline - time.monotonic()))
                n = self.count(table)
                if n == expected:
                    return n
            time.sleep(0.05)
        raise AssertionError(f"QuestDB table {table}: expected {expected} rows, have {n} after {timeout_s} s")

    def truncate_all(self) -> None:
        """Empty every table of ``tickarchive.tables`` (schemas stay), and wait for it."""
        for t in ALL_TABLES:
            self.query(f"TRUNCATE TABLE {t.name}")
        self.wait_for_wal()


WARM_EXTRA_TABLES = ("coverage_daily", "rollover_ledger", "api_keys", "api_usage", "job_runs")


@dataclass(frozen=True, slots=True)
class WarmHandle:
    """A migrated warm store: the embedded PostgreSQL (plain dialect) or the PGlite TimescaleDB.

    ``owner_dsn`` runs DDL and refreshes continuous aggregates, ``writer_dsn`` loads,
    ``reader_dsn`` may only SELECT. On the PGlite server all three are the same superuser
    (it does not authenticate), so permission tests belong on the plain PostgreSQL.
    """

    dialect: Dialect
    host: str
    port: int
    database: str
    owner_dsn: str
    writer_dsn: str
    reader_dsn: str
    root: Path
    pglite: bool = False
    """True for the PGlite test server (one shared backend, no COPY FROM STDIN, no auth)."""

    def settings(self) -> PostgresSettings:
        """A ``[postgres]`` section naming this server as an external DSN."""
        return PostgresSettings(
            dsn=self.owner_dsn, reader_dsn=self.reader_dsn, dialect=self.dialect.value,
        )

    def connect(self, dsn: str | None = None, autocommit: bool = True) -> psycopg.Connection[Row]:
        """A connection (owner by default) configured for this server.

        On the PGlite server automatic server-side prepared statements are off
        (``prepare_threshold=None``): every connection shares one backend, so psycopg's
        statement names (``_pg3_0``...) would collide between connections. Connect the
        same way in your own code when it may run against PGlite.
        """
        threshold = None if self.pglite else 5
        return psycopg.connect(dsn or self.owner_dsn, autocommit=autocommit, prepare_threshold=threshold)

    def query(self, sql: str, params: tuple[Any, ...] | None = None, dsn: str | None = None) -> list[Row]:
        """Run one statement in autocommit mode (owner by default); its rows (``[]`` if none)."""
        with self.connect(dsn) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []

    def truncate_all(self) -> None:
        """Empty the data tables, the rollups and the bookkeeping tables (schemas stay)."""
        names = [storage_name(t, self.dialect) for t in ALL_TABLES] + list(WARM_EXTRA_TABLES)
        if self.dialect is Dialect.POSTGRES:
            names += ["trades_1m", "quotes_1m"]
        self.query("TRUNCATE " + ", ".join(names))
        if self.dialect is Dialect.POSTGRES:
            # TRUNCATE leaves the (now empty) daily partitions; a clean store has none,
            # like a TimescaleDB hypertable whose TRUNCATE drops its chunks.
            children = self.query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
                ([t.name for t in ALL_TABLES],),
            )
            for (child,) in children:
                self.query(f'DROP TABLE IF EXISTS "{child}"')
        if self.dialect is Dialect.TIMESCALEDB:
            for cagg in ("trades_1m", "quotes_1m"):
                self.query(f"CALL refresh_continuous_aggregate('{cagg}', NULL, NULL)")
