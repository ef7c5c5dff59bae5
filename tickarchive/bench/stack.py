"""``tickarchive bench stack``: start-up and stop times of each server, on a temp dir and free ports."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tickarchive.settings import PathsSettings, PostgresSettings, QuestDBSettings
from tickarchive.store import migrate
from tickarchive.store.stack.pglite import PGliteServer
from tickarchive.store.stack.postgres import PostgresServer
from tickarchive.store.stack.procs import free_port
from tickarchive.store.stack.questdb import QuestDBServer
from tickarchive.store.stack.status import ActionResult


@dataclass(frozen=True, slots=True)
class Timing:
    server: str
    step: str
    seconds: float


def _timed(server: str, step: str, fn: Callable[[], object]) -> Timing:
    t0 = time.monotonic()
    fn()
    return Timing(server, step, time.monotonic() - t0)


def bench_stack(include_pglite: bool = True) -> list[Timing]:
    """Cold start (fresh data dir), migrate, stop, warm start, stop, for each server."""
    out: list[Timing] = []
    root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-stack-"))
    root.chmod(0o755)
    try:
        qs = QuestDBSettings(http_port=free_port(), pg_port=free_port(), health_port=free_port())
        q = QuestDBServer(qs, root / "questdb", PathsSettings().cache_dir)
        try:
            out.append(_timed("questdb", "cold start", q.up))
            dsn = migrate.questdb_dsn(qs.host, qs.pg_port, qs.user, qs.password)
            out.append(_timed("questdb", "migrate", lambda: migrate.migrate_questdb(dsn)))
            out.append(_timed("questdb", "stop", q.down))
            out.append(_timed("questdb", "warm start", q.up))
            out.append(_timed("questdb", "stop", q.down))
        finally:
            q.down()
        p = PostgresServer(PostgresSettings(port=free_port()), root / "postgres")
        try:
            out.append(_timed("postgres", "cold start (initdb)", p.up))
            out.append(_timed("postgres", "migrate", lambda: migrate.migrate_warm(p.dsns.owner, "postgres")))
            out.append(_timed("postgres", "stop", p.down))
            out.append(_timed("postgres", "warm start", p.up))
            out.append(_timed("postgres", "stop", p.down))
        finally:
            p.down()
        if include_pglite:
            g = PGliteServer("127.0.0.1", free_port(), root / "pglite")
            try:
                result: list[ActionResult] = []
                out.append(_timed("timescaledb-test", "start (in memory)", lambda: result.append(g.up())))
                out.append(_timed("timescaledb-test", "migrate", lambda: migrate.migrate_warm(g.dsn, "timescaledb")))
                out.append(_timed("timescaledb-test", "stop", g.down))
            finally:
                g.down()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out
