"""Private servers on free loopback ports: one way to start them, for the test suite, the
recovery drill, the benchmarks and the load harness.

Each context manager starts a server under a directory of the caller's, migrates it, hands
out a handle (``tickarchive.store.stack.handles``) and stops it again by the PID it
started (never another process). Servers started with ``ephemeral=True`` also get SIGTERM
when the thread that started them dies (no orphaned JVMs or postmasters).

Free ports: a port is found by binding port 0 and releasing it, so on a busy machine another
process can take it before the server binds it. A start is therefore checked, not trusted:
the server must be up **and** the process we started must be the one listening on every
port we gave it (a foreign server answering on a stolen health port is not ours). Otherwise
it is stopped and started again on new ports, up to ``ATTEMPTS`` times; the last failure is
raised as it came.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, Literal, Protocol, TypeVar

import psutil
import psycopg

from tickarchive.settings import PostgresSettings, QuestDBSettings
from tickarchive.store import migrate
from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import PortInUseError, ServerStartError, StackError
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.stack.pglite import PGliteServer
from tickarchive.store.stack.postgres import PostgresServer
from tickarchive.store.stack.procs import free_port
from tickarchive.store.stack.questdb import QuestDBServer
from tickarchive.store.stack.status import ActionResult

log = logging.getLogger(__name__)

ATTEMPTS: Final = 4
HOST: Final = "127.0.0.1"


class _Server(Protocol):
    name: str

    def up(self) -> ActionResult: ...
    def down(self) -> ActionResult: ...


S = TypeVar("S", bound=_Server)


def listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` listens on (empty when it is gone)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return set()
    return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}


def _start(make: Callable[[], S], ports: Callable[[S], set[int]], pid: Callable[[S], int | None]) -> S:
    """Start ``make()``; on a taken port (at start or found afterwards) stop it and try again
    with a fresh ``make()`` (new ports)."""
    for attempt in range(1, ATTEMPTS + 1):
        server = make()
        try:
            server.up()
        except (PortInUseError, ServerStartError) as exc:
            taken = isinstance(exc, PortInUseError) or "in use" in str(exc).lower() or "bind" in str(exc).lower()
            if not taken or attempt == ATTEMPTS:
                raise
            log.warning("%s: a port was taken before it bound (%s); new ports, attempt %d", server.name, exc, attempt)
            continue
        p = pid(server)
        missing = ports(server) - (listening_ports(p) if p is not None else set())
        if not missing:
            return server
        with contextlib.suppress(StackError):
            server.down()
        if attempt == ATTEMPTS:
            raise ServerStartError(f"{server.name} did not bind port(s) {sorted(missing)}: another process holds them")
        log.warning("%s: port(s) %s held by another process; new ports, attempt %d", server.name, missing, attempt)
    raise AssertionError("unreachable")


def wait_sql(dsn: str, what: str, timeout_s: float) -> None:
    """Wait until ``dsn`` answers ``SELECT 1``: QuestDB reports healthy on its health port
    a moment before its PG-wire port serves queries (seen on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.Error as exc:
            if time.monotonic() > deadline:
                raise ServerStartError(f"{what}: PG wire not answering after {timeout_s:g} s: {exc}") from exc
            time.sleep(0.2)


# ---------------------------------------------------------------------------- QuestDB


@dataclass(slots=True)
class EphemeralQuestDB:
    server: QuestDBServer
    handle: QuestDBHandle

    @property
    def settings(self) -> QuestDBSettings:
        return self.server.settings

    def restart(self) -> None:
        """Stop and start again on the same ports (the collector keeps pointing at them)."""
        self.server.down()
        self.server.up()


def start_questdb(
    root: Path,
    cache_dir: Path,
    *,
    heap_mb: int | None = None,
    ephemeral: bool = True,
    run_migrations: bool = True,
    commit_mode: Literal["nosync", "async", "sync"] | None = None,
) -> EphemeralQuestDB:
    """A QuestDB on free ports under ``root`` (migrated unless told otherwise); the caller
    stops it (``server.down()``) or uses ``questdb()``. ``commit_mode``: QuestDB's
    ``cairo.commit.mode`` (default: the ``questdb.commit_mode`` setting's default)."""

    def make() -> QuestDBServer:
        s = QuestDBSettings(host=HOST, http_port=free_port(HOST), pg_port=free_port(HOST), health_port=free_port(HOST))
        if heap_mb is not None:
            s = s.model_copy(update={"heap_mb": heap_mb})
        if commit_mode is not None:
            s = s.model_copy(update={"commit_mode": commit_mode})
        return QuestDBServer(s, root, cache_dir, ephemeral=ephemeral)

    def ports(q: QuestDBServer) -> set[int]:
        return {q.settings.http_port, q.settings.pg_port, q.settings.health_port}

    def pid(q: QuestDBServer) -> int | None:
        p = q.pid_file.process()
        return p.pid if p is not None else None

    server = _start(make, ports, pid)
    s = server.settings
    handle = QuestDBHandle(
        host=s.host, http_port=s.http_port, pg_port=s.pg_port, health_port=s.health_port, root=root,
        user=s.user, password=s.password,
    )
    try:
        wait_sql(handle.pg_dsn, "QuestDB", s.start_timeout_s)
        if run_migrations:
            migrate.migrate_questdb(handle.pg_dsn)
    except BaseException:
        server.down()
        raise
    return EphemeralQuestDB(server, handle)


@contextlib.contextmanager
def questdb(
    root: Path, cache_dir: Path, *, heap_mb: int | None = None, ephemeral: bool = True, run_migrations: bool = True
) -> Iterator[EphemeralQuestDB]:
    """``start_questdb`` for a ``with`` block: stopped on exit."""
    q = start_questdb(root, cache_dir, heap_mb=heap_mb, ephemeral=ephemeral, run_migrations=run_migrations)
    try:
        yield q
    finally:
        q.server.down()


# ---------------------------------------------------------------------------- warm stores


W = TypeVar("W", PostgresServer, PGliteServer)


@dataclass(slots=True)
class EphemeralWarm(Generic[W]):
    server: W
    handle: WarmHandle


def start_postgres(
    root: Path, *, ephemeral: bool = True, run_migrations: bool = True
) -> EphemeralWarm[PostgresServer]:
    """The embedded PostgreSQL (plain dialect) on a free port under ``root``, migrated.

    ``root`` must be reachable by the server's own user when we are root (not under a 0700
    directory such as pytest's basetemp): ``tempfile.mkdtemp`` in /tmp is."""

    def make() -> PostgresServer:
        return PostgresServer(PostgresSettings(host=HOST, port=free_port(HOST)), root, ephemeral=ephemeral)

    def pid(p: PostgresServer) -> int | None:
        proc = p.postmaster()
        return proc.pid if proc is not None else None

    server = _start(make, lambda p: {p.settings.port}, pid)
    s = server.settings
    dsns = server.dsns
    if run_migrations:
        try:
            migrate.migrate_warm(dsns.owner, "postgres")
        except BaseException:
            server.down()
            raise
    handle = WarmHandle(
        dialect=Dialect.POSTGRES, host=s.host, port=s.port, database=s.database,
        owner_dsn=dsns.owner, writer_dsn=dsns.writer, reader_dsn=dsns.reader, root=root,
    )
    return EphemeralWarm(server, handle)


def start_timescaledb(
    root: Path, *, ephemeral: bool = True, run_migrations: bool = True
) -> EphemeralWarm[PGliteServer]:
    """The PGlite TimescaleDB test server on a free port under ``root``, migrated."""

    def make() -> PGliteServer:
        return PGliteServer(HOST, free_port(HOST), root, ephemeral=ephemeral)

    def pid(p: PGliteServer) -> int | None:
        proc = p.pid_file.process()
        return proc.pid if proc is not None else None

    server = _start(make, lambda p: {p.port}, pid)
    if run_migrations:
        try:
            migrate.migrate_warm(server.dsn, "timescaledb")
        except BaseException:
            server.down()
            raise
    handle = WarmHandle(
        dialect=Dialect.TIMESCALEDB, host=server.host, port=server.port, database="postgres",
        owner_dsn=server.dsn, writer_dsn=server.dsn, reader_dsn=server.dsn, root=root, pglite=True,
    )
    return EphemeralWarm(server, handle)


@contextlib.contextmanager
def postgres(
    root: Path, *, ephemeral: bool = True, run_migrations: bool = True
) -> Iterator[EphemeralWarm[PostgresServer]]:
    w = start_postgres(root, ephemeral=ephemeral, run_migrations=run_migrations)
    try:
        yield w
    finally:
        w.server.down()


@contextlib.contextmanager
def timescaledb(
    root: Path, *, ephemeral: bool = True, run_migrations: bool = True
) -> Iterator[EphemeralWarm[PGliteServer]]:
    w = start_timescaledb(root, ephemeral=ephemeral, run_migrations=run_migrations)
    try:
        yield w
    finally:
        w.server.down()


__all__ = [
    "ATTEMPTS",
    "EphemeralQuestDB",
    "EphemeralWarm",
    "listening_ports",
    "postgres",
    "questdb",
    "start_postgres",
    "start_questdb",
    "start_timescaledb",
    "timescaledb",
    "wait_sql",
]
