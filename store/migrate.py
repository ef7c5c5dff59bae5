"""Versioned, idempotent schema migrations for the hot store and both warm-store dialects.

Migrations are literal SQL files ``store/sql/<target>/V<NNN>__<name>.sql`` with target
``questdb``, ``timescaledb`` or ``postgres`` (the plain PostgreSQL dialect). Each target
keeps a ledger table ``schema_migrations`` (version, name, checksum, applied_at; PostgreSQL
also the dialect). A run applies, in order, the versions the ledger lacks; a second run
applies nothing. An applied file whose content changed since is an error (write a new
version instead of editing an old one).

- QuestDB: statements run one by one over the PG wire (autocommit; QuestDB DDL is not
  transactional, so the files use ``IF NOT EXISTS``). The ledger is a non-WAL table, so
  its rows are visible at once.
- PostgreSQL / TimescaleDB: each file runs in one transaction together with its ledger
  row, under an advisory lock, so concurrent runs serialise and a failed file leaves
  nothing behind.

The dialect of the warm store: ``postgres.dialect`` when forced, otherwise TimescaleDB if
``pg_available_extensions`` offers it, else plain PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg

from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import DsnUnreachableError, MigrationError

Target = Literal["questdb", "timescaledb", "postgres"]
_FILE = re.compile(r"^V(\d{3})__([a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_262_104_117  # pg_advisory_lock key for warm-store migrations
AFTER_COMMIT: dict[tuple[str, int], tuple[str, ...]] = {
    ("timescaledb", 9): ("CALL refresh_continuous_aggregate('quotes_1m', NULL, NULL)",),
}
"""Statements run right after a migration committed, outside a transaction block (what
TimescaleDB requires of them): V009 rebuilt ``quotes_1m`` empty on the rows it moved."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class MigrationReport:
    target: str
    """questdb, timescaledb or postgres."""
    applied: tuple[int, ...]
    """Versions applied by this run (empty when already up to date)."""
    current: int
    """Highest version now applied."""


def load_migrations(target: Target) -> tuple[Migration, ...]:
    folder = resources.files("tickarchive.store") / "sql" / target
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _FILE.match(entry.name)
        if m is None:
            continue
        found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda x: x.version)
    versions = [x.version for x in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in store/sql/{target}: {versions}")
    return tuple(found)


def split_statements(sql: str) -> list[str]:
    """Split a QuestDB migration file on ``;`` at line ends; ``--`` comment lines dropped."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def _mask(dsn: str) -> str:
    return re.sub(r"(password=)\S+", r"\1***", re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", dsn))


def connect(dsn: str, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """A psycopg connection, or ``DsnUnreachableError`` naming the (masked) DSN."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DsnUnreachableError(f"cannot connect to {_mask(dsn)}: {first}") from None


# ---------------------------------------------------------------- QuestDB


def questdb_dsn(host: str, pg_port: int, user: str, password: str) -> str:
    return f"host={host} port={pg_port} user={user} password={password} dbname=qdb sslmode=disable"


def migrate_questdb(dsn: str) -> MigrationReport:
    migrations = load_migrations("questdb")
    with connect(dsn) as conn:
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INT, name VARCHAR, checksum VARCHAR, applied_at TIMESTAMP)"
            )
            rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        except psycopg.Error as exc:
            raise MigrationError(f"QuestDB: cannot read the migration ledger: {exc}") from None
        applied = {int(str(v)): str(c) for v, c in rows}
        _check_ledger("questdb", migrations, applied)
        done: list[int] = []
        for mig in migrations:
            if mig.version in applied:
                continue
            for stmt in split_statements(mig.sql):
                try:
                    conn.execute(stmt)
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"QuestDB migration V{mig.version:03d}__{mig.name} failed: {str(exc).strip()}"
                    ) from None
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s, now())",
                (mig.version, mig.name, mig.checksum),
            )
            done.append(mig.version)
        if done:
            _wait_for_wal(conn)
    return MigrationReport("questdb", tuple(done), max([m.version for m in migrations], default=0))


QUESTDB_DDL_TIMEOUT_S = 120.0


def _count(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(str(row[0])) if row is not None else 0


def _wait_for_wal(conn: psycopg.Connection[tuple[object, ...]], timeout_s: float = QUESTDB_DDL_TIMEOUT_S) -> None:
    """Wait until QuestDB applied every WAL transaction, DDL included: an ``ALTER TABLE``
    on a WAL table takes effect asynchronously, and a writer that sent rows before it did
    would have QuestDB create the new columns itself, with its own types."""
    deadline = time.monotonic() + timeout_s
    while True:
        suspended = _count(conn, "SELECT count() FROM wal_tables() WHERE suspended")
        behind = _count(conn, "SELECT count() FROM wal_tables() WHERE writerTxn < sequencerTxn")
        if suspended:
            raise MigrationError("QuestDB: a table's WAL is suspended after the migration (see its log)")
        if not behind:
            return
        if time.monotonic() > deadline:
            raise MigrationError(f"QuestDB: the migration's DDL was not applied within {timeout_s:g} s")
        time.sleep(0.05)


def _check_ledger(target: str, migrations: tuple[Migration, ...], applied: dict[int, str]) -> None:
    known = {m.version: m for m in migrations}
    for version, checksum in applied.items():
        mig = known.get(version)
        if mig is None:
            raise MigrationError(
                f"{target}: the database has migration V{version:03d} which this tickarchive does not know "
                "(a newer version migrated it?)"
            )
        if mig.checksum != checksum:
            raise MigrationError(
                f"{target}: migration V{version:03d}__{mig.name} was changed after it was applied "
                f"(checksum {checksum} in the ledger, {mig.checksum} now); add a new version instead"
            )


# ---------------------------------------------------------------- warm store


def detect_dialect(conn: psycopg.Connection[tuple[object, ...]], forced: str = "auto") -> Dialect:
    """``forced`` is ``postgres.dialect``: auto, timescaledb or postgres."""
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone() is not None
    if forced == "postgres":
        return Dialect.POSTGRES
    if forced == "timescaledb":
        if not available:
            raise MigrationError(
                "postgres.dialect=timescaledb but the server has no timescaledb extension; "
                "install TimescaleDB or set TICKARCHIVE_POSTGRES__DIALECT=auto"
            )
        return Dialect.TIMESCALEDB
    return Dialect.TIMESCALEDB if available else Dialect.POSTGRES


def migrated_dialect(conn: psycopg.Connection[tuple[object, ...]]) -> Dialect | None:
    """The dialect recorded in the ledger, or None for a database not migrated yet."""
    exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT dialect FROM schema_migrations ORDER BY version LIMIT 1").fetchone()
    return Dialect(str(row[0])) if row else None


def migrate_warm(dsn: str, forced_dialect: str = "auto", upto: int | None = None) -> MigrationReport:
    """Migrate the warm store at ``dsn`` (connect as the schema owner); ``upto``: stop after
    that version (upgrade tests start from an older schema)."""
    with connect(dsn) as conn:
        try:
            dialect = detect_dialect(conn, forced_dialect)
            recorded = migrated_dialect(conn)
            if recorded is not None and recorded is not dialect:
                raise MigrationError(
                    f"the warm store was migrated with the {recorded} dialect but {dialect} was chosen; "
                    f"set TICKARCHIVE_POSTGRES__DIALECT={recorded}"
                )
            migrations = tuple(m for m in load_migrations(dialect.value) if upto is None or m.version <= upto)
            conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL, dialect text NOT NULL,"
                    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
                applied = {int(str(v)): str(c) for v, c in rows}
                _check_ledger(dialect.value, migrations, applied)
                done: list[int] = []
                for mig in migrations:
                    if mig.version in applied:
                        continue
                    try:
                        with conn.transaction():
                            conn.execute(mig.sql)
                            conn.execute(
                                "INSERT INTO schema_migrations (version, name, dialect, checksum) "
                                "VALUES (%s, %s, %s, %s)",
                                (mig.version, mig.name, dialect.value, mig.checksum),
                            )
                    except psycopg.Error as exc:
                        raise MigrationError(
                            f"{dialect} migration V{mig.version:03d}__{mig.name} failed: "
                            f"{str(exc).strip().splitlines()[0]}"
                        ) from None
                    for stmt in AFTER_COMMIT.get((dialect.value, mig.version), ()):
                        try:
                            conn.execute(stmt)
                        except psycopg.Error as exc:
                            raise MigrationError(
                                f"{dialect} migration V{mig.version:03d}__{mig.name} committed, but its follow-up "
                                f"{stmt!r} failed (run it by hand): {str(exc).strip().splitlines()[0]}"
                            ) from None
                    done.append(mig.version)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        except psycopg.Error as exc:
            raise MigrationError(f"warm store migration failed: {str(exc).strip()}") from None
    return MigrationReport(dialect.value, tuple(done), max([m.version for m in migrations], default=0))


def refresh_rollups_sql(dialect: Dialect) -> tuple[str, ...]:
    """Statements that recompute the rollups of a window; parameters ``(start, end)``.

    TimescaleDB: ``CALL refresh_continuous_aggregate`` (run them in autocommit mode, not in
    a transaction block). Plain PostgreSQL: the ``tickarchive_refresh_rollups`` function.
    """
    if dialect is Dialect.TIMESCALEDB:
        return (
            "CALL refresh_continuous_aggregate('trades_1m', %s::timestamptz, %s::timestamptz)",
            "CALL refresh_continuous_aggregate('quotes_1m', %s::timestamptz, %s::timestamptz)",
        )
    return ("SELECT tickarchive_refresh_rollups(%s::timestamptz, %s::timestamptz)",)
