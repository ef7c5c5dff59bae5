"""The local stack as one unit: ``up`` (start + migrate), ``status``, ``down``, ``migrate``.

Everything lives under ``paths.local_dir`` (default ``.local``, git-ignored):
``questdb/`` (QuestDB root: conf, db, pid, log), ``postgres/`` (data dir and log, unless
``postgres.dsn`` names an external server) and ``pglite/`` (only with ``up --timescaledb-test``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from tickarchive.errors import TickarchiveError
from tickarchive.settings import Settings
from tickarchive.store import migrate
from tickarchive.store.errors import StackError
from tickarchive.store.stack.pglite import PGliteServer
from tickarchive.store.stack.postgres import ExternalPostgres, PostgresServer
from tickarchive.store.stack.questdb import QuestDBServer
from tickarchive.store.stack.status import Action, ActionResult, ComponentStatus

TIMESCALEDB_TEST_PORT_OFFSET = 1
"""``up --timescaledb-test`` serves the PGlite TimescaleDB on postgres.port + 1."""


@dataclass(frozen=True, slots=True)
class UpReport:
    actions: tuple[ActionResult, ...]
    migrations: tuple[migrate.MigrationReport, ...]


@dataclass(frozen=True, slots=True)
class Stack:
    settings: Settings

    @property
    def questdb(self) -> QuestDBServer:
        p = self.settings.paths
        return QuestDBServer(self.settings.questdb, p.local_dir / "questdb", p.cache_dir)

    @property
    def warm(self) -> PostgresServer | ExternalPostgres:
        s = self.settings.postgres
        if s.dsn is not None:
            return ExternalPostgres(s)
        return PostgresServer(s, self.settings.paths.local_dir / "postgres")

    @property
    def timescaledb_test(self) -> PGliteServer:
        s = self.settings.postgres
        return PGliteServer(
            s.host, s.port + TIMESCALEDB_TEST_PORT_OFFSET, self.settings.paths.local_dir / "pglite",
            data_dir=self.settings.paths.local_dir / "pglite" / "data",
        )

    def up(self, run_migrations: bool = True, timescaledb_test: bool = False) -> UpReport:
        """Start what is not running, then migrate. On any error, stop what this call started."""
        started: list[QuestDBServer | PostgresServer | PGliteServer] = []
        actions: list[ActionResult] = []
        try:
            components: list[QuestDBServer | PostgresServer | ExternalPostgres | PGliteServer] = [
                self.questdb, self.warm,
            ]
            if timescaledb_test:
                components.append(self.timescaledb_test)
            for comp in components:
                result = comp.up()
                actions.append(result)
                if result.action is Action.STARTED and not isinstance(comp, ExternalPostgres):
                    started.append(comp)
            reports = self.migrate(timescaledb_test=timescaledb_test) if run_migrations else ()
        except BaseException:  # an error, or Ctrl-C: stop what this call started, then re-raise
            for comp in reversed(started):
                with contextlib.suppress(TickarchiveError):
                    comp.down()
            raise
        return UpReport(tuple(actions), reports)

    def migrate(self, timescaledb_test: bool = False) -> tuple[migrate.MigrationReport, ...]:
        q = self.questdb
        if not q.healthy():
            raise StackError(
                f"QuestDB is not answering at {q.settings.host}:{q.settings.health_port}: run `tickarchive up` first"
            )
        s = self.settings
        qs = s.questdb
        reports = [
            migrate.migrate_questdb(migrate.questdb_dsn(qs.host, qs.pg_port, qs.user, qs.password)),
            migrate.migrate_warm(self.warm.dsns.owner, s.postgres.dialect),
        ]
        if timescaledb_test and self.timescaledb_test.ready():
            reports.append(migrate.migrate_warm(self.timescaledb_test.dsn, "timescaledb"))
        return tuple(reports)

    def down(self) -> tuple[ActionResult, ...]:
        """Stop everything running (the PGlite test server too, if it runs)."""
        results = []
        for comp in (self.timescaledb_test, self.warm, self.questdb):
            results.append(comp.down())
        return tuple(
            r for r in results
            if not (r.name == "timescaledb-test" and r.action is Action.NOT_RUNNING and not r.detail)
        )

    def status(self) -> tuple[ComponentStatus, ...]:
        out = [self.questdb.status(), self.warm.status()]
        pg = self.timescaledb_test
        if pg.pid_file.path.exists():
            out.append(pg.status())
        return tuple(out)
