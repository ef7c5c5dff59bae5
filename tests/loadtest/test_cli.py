"""``tickarchive sim`` as a subprocess: the ready line, HTTP on the same port, export on exit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow.parquet as pq

CLI = [sys.executable, "-c", "from tickarchive.cli import main; main()"]


def test_sim_subprocess_ready_line_and_export_on_sigterm(tmp_path: Path) -> None:
    export = tmp_path / "export"
    proc = subprocess.Popen(
        [
            *CLI,
            "sim",
            "--port",
            "0",
            "--rate",
            "200",
            "--instruments",
            "40",
            "--seed",
            "3",
            "--export-dir",
            str(export),
            "--sendlog-dir",
            str(tmp_path / "spool"),
            "--fault",
            "maintenance:seconds=1@3600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("ready ws://127.0.0.1:")
        assert line.endswith("/ws/api/v2")
        base = line[len("ready ws://") :].split("/", 1)[0]
        r = httpx.get(f"http://{base}/api/v2/public/get_instruments", params={"currency": "ETH"}, timeout=60)
        assert 36 <= len(r.json()["result"]) <= 44
        status = httpx.get(f"http://{base}/control/status", timeout=60).json()
        assert status["mode"] == "market"
        assert status["sendlog_dir"] == str(tmp_path / "spool")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)  # (the timeouts only bound a failure)
    assert proc.returncode == 0, err
    assert "send log exported" in err
    assert pq.read_table(export / "quotes.parquet").num_rows == 0  # nobody subscribed
    assert (export / "summary.json").is_file()


def test_bad_flags_give_one_clear_error(monkeypatch, capsys) -> None:
    import pytest

    from tickarchive.cli import main

    for argv, message in (
        (["sim", "--port", "0", "--fault", "explode@3"], "error: unknown fault kind 'explode'"),
        (["sim", "--port", "0", "--rate", "-5"], "rate_per_s must be >= 0"),
        (["sim", "--port", "0", "--replay", "/nonexistent/capture.ws"], "cannot read capture /nonexistent/capture.ws"),
    ):
        monkeypatch.setattr(sys, "argv", ["tickarchive", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 1
        assert message in capsys.readouterr().err
