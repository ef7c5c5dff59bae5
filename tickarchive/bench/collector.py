"""``tickarchive bench collector``: the collector's CPU and RSS at a given frame rate.

Three processes, so that only the collector is measured: a QuestDB (the configured one
if it answers, else a throw-away one on free ports), the simulator (``tickarchive sim``)
and ``tickarchive collect --simulator URL``. After a warm-up the collector's CPU time
and RSS are sampled with psutil, its received frames are read from its own metrics
endpoint, and at the end (SIGTERM) its log gives the journal fsync figures.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tickarchive.ingest.errors import IngestError

TA = str(Path(sys.executable).parent / "tickarchive")


def _frames_total(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=5.0).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("tickarchive_frames_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_bench(rate: float, seconds: float, instruments: int, connections: int, warmup_s: float = 5.0) -> None:
    from tickarchive.settings import PathsSettings, load_settings
    from tickarchive.store.stack import ephemeral
    from tickarchive.store.stack.procs import free_port
    from tickarchive.store.stack.questdb import QuestDBServer

    settings = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="tickarchive-bench-collector-"))
    qs = settings.questdb
    own: QuestDBServer | None = None
    if not QuestDBServer(qs, tmp / "unused", PathsSettings().cache_dir).healthy():
        print("starting a throw-away QuestDB ...", flush=True)
        own = ephemeral.start_questdb(tmp / "questdb", PathsSettings().cache_dir, ephemeral=False).server
        qs = own.settings
        print(f"throw-away QuestDB on {qs.host}:{qs.http_port}", flush=True)
    sim = subprocess.Popen(
        [TA, "sim", "--port", "0", "--rate", str(rate), "--instruments", str(instruments)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    collector: subprocess.Popen[str] | None = None
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        if not line.startswith("ready "):
            raise IngestError(f"the simulator did not start: {line!r}")
        ws_url = line.split(" ", 1)[1].strip()
        mport = free_port()
        env = dict(os.environ)
        env.update(
            TICKARCHIVE_QUESTDB__HOST=qs.host,
            TICKARCHIVE_QUESTDB__HTTP_PORT=str(qs.http_port),
            TICKARCHIVE_QUESTDB__PG_PORT=str(qs.pg_port),
        )
        collector = subprocess.Popen(
            [TA, "collect", "--simulator", ws_url, "--journal-dir", str(tmp / "journal"),
             "--connections", str(connections), "--metrics-port", str(mport)],
            env=env, stderr=subprocess.PIPE, text=True,
        )
        metrics = f"http://127.0.0.1:{mport}/metrics"
        proc = psutil.Process(collector.pid)
        print(f"warming up {warmup_s:g} s (simulator rate {rate:g}/s, {instruments} instruments) ...", flush=True)
        time.sleep(warmup_s)
        f0 = _frames_total(metrics)
        c0 = proc.cpu_times()
        t0 = time.monotonic()
        rss_max = 0
        rss: list[int] = []
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            r = proc.memory_info().rss
            rss.append(r)
            rss_max = max(rss_max, r)
        c1 = proc.cpu_times()
        wall = time.monotonic() - t0
        f1 = _frames_total(metrics)
        cpu = (c1.user - c0.user + c1.system - c0.system) / wall
        collector.send_signal(signal.SIGTERM)
        _out, err = collector.communicate(timeout=60)
        m = re.search(
            r"fsync max ([0-9.]+) ms, receive-to-fsync window p50 ([0-9.]+) ms p99 ([0-9.]+) ms max ([0-9.]+) ms",
            err or "",
        )
        print(f"frames received       {(f1 - f0) / wall:,.0f} /s over {wall:.1f} s ({connections} connections)")
        print(f"machine load average  {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        fps = (f1 - f0) / wall
        print(f"collector CPU         {cpu * 100:.1f} % of one core "
              f"({cpu / fps * 1e6:.0f} µs of CPU per frame; at 5,000 frames/s: {cpu / fps * 5000 * 100:.0f} %)")
        print(f"collector RSS         {sum(rss) / len(rss) / 2**20:.0f} MiB mean, {rss_max / 2**20:.0f} MiB max")
        if m:
            print(f"journal fsync         max {m.group(1)} ms; receive-to-fsync window p50 {m.group(2)} ms, "
                  f"p99 {m.group(3)} ms, max {m.group(4)} ms (fsync timer {settings.journal.fsync_interval_ms} ms)")
        print(f"collector exit status {collector.returncode}")
    finally:
        if collector is not None and collector.poll() is None:
            collector.kill()
            collector.wait()
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
        if own is not None:
            own.down()
