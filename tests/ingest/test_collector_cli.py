"""``tickarchive collect`` as an operator runs it (``make run``), offline."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tickarchive.store.stack.running import running

TA = str(Path(sys.executable).parent / "tickarchive")


def _read_lines(proc: subprocess.Popen[bytes], until: re.Pattern[str], count: int, timeout_s: float) -> list[str]:
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while sum(bool(until.search(x)) for x in lines) < count:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            raise AssertionError(f"no {count} lines matching {until.pattern!r}; got:\n" + "".join(lines))
        line = proc.stderr.readline().decode(errors="replace")
        if not line:
            raise AssertionError("collector exited early:\n" + "".join(lines))
        lines.append(line)
    return lines


def test_collect_offline_keeps_retrying_says_why_and_stops_cleanly(tmp_path: Path, dead_port: int) -> None:
    dead = dead_port  # nothing listens here: "Deribit" (and QuestDB) are unreachable
    env = dict(os.environ)
    env.update(
        TICKARCHIVE_DERIBIT__WS_URL=f"ws://127.0.0.1:{dead}/ws/api/v2",
        TICKARCHIVE_DERIBIT__REST_URL=f"http://127.0.0.1:{dead}/api/v2",
        TICKARCHIVE_PATHS__LOCAL_DIR=str(tmp_path / "local"),
        TICKARCHIVE_DERIBIT__RECONNECT_MIN_S="0.2",
        TICKARCHIVE_DERIBIT__RECONNECT_MAX_S="0.8",
        TICKARCHIVE_QUESTDB__HTTP_PORT=str(dead),
        TICKARCHIVE_JOURNAL__MIN_FREE_BYTES="0",
    )
    proc = subprocess.Popen(
        [TA, "collect", "--journal-dir", str(tmp_path / "journal"), "--metrics-port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        unreachable = re.compile(r"Deribit is unreachable")
        lines = _read_lines(proc, unreachable, 3, 120)  # (the deadlines only bound a failure)
        msgs = [x for x in lines if unreachable.search(x)]
        delays = [float(m.group(1)) for x in msgs if (m := re.search(r"retrying in ([0-9.]+) s", x))]
        assert len(delays) == 3
        assert all(d >= 0.1 for d in delays)  # a backoff step per message, never a tight loop
        assert delays[2] >= 0.2  # capped exponential: the ceiling doubled twice (0.2 -> 0.8)
        for x in msgs:
            assert "make demo" in x
            assert "simulator" in x
        # --metrics-port 0: the exporter took a port of the kernel's choosing, and the run
        # file (what `tickarchive status` and the load harness read) names it
        (me,) = [c for c in running(tmp_path / "local") if c.name == "collector" and c.pid == proc.pid]
        port = me.ports["metrics"]
        assert port > 0
        assert any(f"metrics on http://127.0.0.1:{port}/metrics" in x for x in lines)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=60)
        assert scraped.status_code == 200
        assert "tickarchive_frames_total" in scraped.text
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
        rest = err.decode(errors="replace")
        assert proc.returncode == 0, rest
        assert "collector: stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
