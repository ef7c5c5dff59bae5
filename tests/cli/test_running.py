"""What is running, and ports taken: ``tickarchive status`` lists the collector, API,
simulator and demo with pid and port while they run (pid files under the local dir, gone
when they stop or die), every server command given a taken port says which flag and setting
to change in one line, and a command that ends says what it leaves running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickarchive.settings import PathsSettings, Settings
from tickarchive.store.stack.running import left_running, registered, run_dir, running

TICKARCHIVE = str(Path(sys.executable).parent / "tickarchive")


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process (this test) listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def _env(local_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKARCHIVE_")}
    env["TICKARCHIVE_PATHS__LOCAL_DIR"] = str(local_dir)
    env.update(extra)
    return env


def _one_line_error(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run([TICKARCHIVE, *args], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_api_on_a_taken_port_names_the_flag_and_setting(held_port: int, tmp_path: Path) -> None:
    line = _one_line_error(["api", "--port", str(held_port)], _env(tmp_path))
    assert line.startswith(f"error: port 127.0.0.1:{held_port} is already in use by pid {os.getpid()} (")
    assert "choose another with --port N or setting api.port (TICKARCHIVE_API__PORT)" in line
    assert "Errno" not in line


def test_sim_on_a_taken_port_names_the_flag_and_setting(held_port: int, tmp_path: Path) -> None:
    line = _one_line_error(["sim", "--port", str(held_port), "--instruments", "10"], _env(tmp_path))
    assert line.startswith(f"error: simulator: port 127.0.0.1:{held_port} is already in use by pid {os.getpid()}")
    assert "--port N (demo: --sim-port N) or setting simulator.port (TICKARCHIVE_SIMULATOR__PORT)" in line


@pytest.mark.parametrize(("flag", "what"), [("--sim-port", "simulator"), ("--api-port", "API"),
                                            ("--metrics-port", "collector metrics")])
def test_a_second_demo_names_the_port_flag_before_starting_anything(
    held_port: int, tmp_path: Path, flag: str, what: str
) -> None:
    line = _one_line_error(["demo", flag, str(held_port)], _env(tmp_path))
    assert line.startswith(f"error: {what}: port 127.0.0.1:{held_port} is already in use by pid {os.getpid()}")
    assert f"choose another with {flag} N" in line
    assert not (tmp_path / "questdb").exists()  # nothing was started


def test_the_collector_metrics_port_names_the_setting_and_flag(held_port: int) -> None:
    from tickarchive.ingest.errors import IngestError
    from tickarchive.ingest.metrics import CollectorMetrics

    with pytest.raises(IngestError) as err:
        CollectorMetrics().serve("127.0.0.1", held_port)
    msg = str(err.value)
    assert msg.startswith(f"metrics exporter: port 127.0.0.1:{held_port} is already in use by pid {os.getpid()}")
    assert "setting metrics.port (TICKARCHIVE_METRICS__PORT) or `collect --metrics-port N`" in msg


def test_registration_lives_as_long_as_the_process(tmp_path: Path) -> None:
    with registered(tmp_path, "simulator", "127.0.0.1", {"ws+http": 18443}, "ws://127.0.0.1:18443/ws/api/v2") as e:
        (entry,) = running(tmp_path)
        assert (entry.name, entry.pid, entry.ports, entry.address) == (
            "simulator", os.getpid(), {"ws+http": 18443}, "127.0.0.1:18443 (ws+http)"
        )
        assert entry == e
    assert running(tmp_path) == []
    assert list(run_dir(tmp_path).iterdir()) == []
    # a process that died without cleaning up (SIGKILL) leaves a stale file: skipped and removed
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import json

        import psutil

        created = psutil.Process(child.pid).create_time()
        stale = run_dir(tmp_path) / f"collector-{child.pid}.json"
        stale.write_text(json.dumps({"name": "collector", "pid": child.pid, "created": created, "host": "h",
                                     "ports": {"metrics": 1}}))
        assert [e.pid for e in running(tmp_path)] == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert running(tmp_path) == []
    assert not stale.exists()


def test_status_shows_a_running_api_and_the_end_says_what_is_left(tmp_path: Path) -> None:
    env = _env(tmp_path, TICKARCHIVE_QUESTDB__HTTP_PORT="1", TICKARCHIVE_QUESTDB__PG_PORT="2",
               TICKARCHIVE_QUESTDB__HEALTH_PORT="3", TICKARCHIVE_POSTGRES__PORT="4")
    api = subprocess.Popen([TICKARCHIVE, "api", "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not running(tmp_path):
            assert api.poll() is None, "the API exited"
            assert time.monotonic() < deadline, "the API did not register within 60 s"
            time.sleep(0.1)  # polling for the file the API writes once it listens
        (entry,) = running(tmp_path)
        assert (entry.name, entry.pid) == ("api", api.pid)
        port = entry.ports["http"]
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass  # it listens where it says
        status = subprocess.run([TICKARCHIVE, "status"], capture_output=True, text=True, timeout=120, env=env)
        assert status.returncode == 0, status.stderr
        row = next(line for line in status.stdout.splitlines() if "│ api" in line)
        assert "up" in row
        assert str(api.pid) in row
        assert f"127.0.0.1:{port} (http)" in row
        assert "questdb" in status.stdout
        assert "postgres" in status.stdout
        settings = Settings(paths=PathsSettings(local_dir=tmp_path))
        assert left_running(settings) == [
            f"still running: api (pid {api.pid}, 127.0.0.1:{port} (http)): Ctrl-C where it runs, or kill {api.pid}"
        ]
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=60)
    assert running(tmp_path) == []
