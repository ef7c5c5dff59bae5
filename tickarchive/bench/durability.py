"""``tickarchive bench durability``: what durability costs and how long recovery takes.

Three measurements, each on its own throw-away servers (free loopback ports, under a
scratch directory, stopped by their PIDs):

1. **receive → fsync window** — the simulator (``tickarchive sim``) at ``--window-rate``
   frames/s into a real collector (``tickarchive collect``) for ``--window-seconds``; at
   SIGTERM the collector logs the window between a frame's receipt and the fsync that made
   it durable (p50/p99/max over every fsync of the run). A frame received inside that
   window is lost by a power cut (a crash of the process alone loses nothing: every
   record is written with one ``writev`` before it is parsed).
2. **QuestDB commit modes** — for each ``cairo.commit.mode`` of ``--modes`` a fresh
   QuestDB, and for each of ``--rates`` the writer's traffic without the writer: synthetic
   Deribit frames (``bench.deribit_frames``) parsed and ILP-encoded up front into one
   request per table per 50 ms tick (the writer's flush interval), sent on time, the
   tables of a tick at once (one keep-alive connection each, as the writer does). Printed:
   QuestDB's CPU per frame (its process CPU time over the run and the WAL apply after it,
   divided by the frames), the acknowledgement latency of a tick (all its tables: what the
   writer's checkpoint waits for) p50/p99/max, and the rate achieved.
3. **restart and catch-up after a SIGKILL** — a journal holding ``--journal-gb`` GB of
   unacknowledged records (synthetic frames written through ``Journal``; the last record
   torn in half, as a SIGKILL mid-write leaves it), then QuestDB, the simulator at
   ``--window-rate`` and a collector on that journal: the time until its metrics answer,
   until its writer has read the whole backlog and turned live, the catch-up rate, and the
   collector's CPU per caught-up record.
"""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import psutil

from tickarchive.bench.deribit_frames import frames as synth_frames
from tickarchive.ingest.errors import IngestError
from tickarchive.ingest.journal import Journal
from tickarchive.loadtest.harness_procs import CollectorProcess, Metrics, SimProcess, questdb_scalar
from tickarchive.settings import PathsSettings
from tickarchive.store.errors import IlpHttpError
from tickarchive.store.ilp import IlpEncoder
from tickarchive.store.ilp_http import IlpHttpTransport
from tickarchive.store.stack import ephemeral
from tickarchive.store.writer_contract import ilp_conf
from tickarchive.venues.deribit.adapter import rows_of_frame

CommitMode = Literal["nosync", "async", "sync"]
TICK_S: Final = 0.05
"""The writer's default flush interval: one request per table per tick."""
_WINDOW_LINE: Final = re.compile(
    r"receive-to-fsync window p50 ([\d.]+) ms p99 ([\d.]+) ms max ([\d.]+) ms"
)
_LIVE_LINE: Final = "caught up with the journal"


@dataclass(frozen=True, slots=True)
class WindowResult:
    rate: float
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class ModeResult:
    mode: str
    rate: float
    frames: int
    rows: int
    achieved_frames_per_s: float
    questdb_cpu_us_per_frame: float
    ack_p50_ms: float
    """A tick's rows: from their tick (when the writer would have them) to QuestDB's
    acknowledgement of every table (waiting behind earlier requests included)."""
    ack_p99_ms: float
    ack_max_ms: float
    request_p50_ms: float
    """One request per table, sent together, until the last acknowledgement."""
    request_p99_ms: float
    requests: int
    apply_s: float
    """WAL apply still running after the last acknowledgement."""


@dataclass(frozen=True, slots=True)
class CatchUpResult:
    journal_bytes: int
    records: int
    metrics_up_s: float
    """Collector process start to its metrics endpoint answering (journal opened)."""
    live_s: float
    """Collector process start to its writer reading live again (backlog read)."""
    acked_s: float
    """Collector process start to the backlog acknowledged (backlog gauge < 1 MB)."""
    collector_cpu_us_per_record: float
    live_rate: float


def _percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))] if s else 0.0


# ---------------------------------------------------------------------------- 1. window


def measure_window(scratch: Path, rate: float, seconds: float, echo: Callable[[str], None]) -> WindowResult:
    qdb = ephemeral.start_questdb(scratch / "questdb", PathsSettings().cache_dir)
    sim = SimProcess(rate, 400, 5.0, scratch / "sendlog", scratch / "sim.log")
    col: CollectorProcess | None = None
    try:
        sim.start()
        col = CollectorProcess(
            sim.ws_url, scratch / "journal", scratch, 4, 0, qdb.settings.host, qdb.settings.http_port,
            scratch / "collector.log",
        )
        col.start()
        _wait(lambda: (m := col.scrape()) is not None and m.connections_up >= 4 and m.subscribed > 0, 120.0,
              "the collector subscribed")
        echo(f"  collector subscribed; {seconds:g} s at {rate:g} frames/s ...")
        time.sleep(seconds)  # the measurement itself (not synchronisation)
        col.stop()
        m = _WINDOW_LINE.search(col.log.read_text(errors="replace"))
        if m is None:
            raise IngestError(f"the collector logged no receive-to-fsync window; see {col.log}")
        return WindowResult(rate, seconds, float(m.group(1)), float(m.group(2)), float(m.group(3)))
    finally:
        if col is not None:
            col.stop()
        sim.stop()
        qdb.server.down()


# ---------------------------------------------------------------------------- 2. modes


def encode_ticks(rate: float, seconds: float, seed: int = 1) -> tuple[list[dict[str, tuple[bytes, int]]], int]:
    """Synthetic frames for ``seconds`` at ``rate``, parsed and ILP-encoded into one body per
    table per ``TICK_S`` tick; and the frame count."""
    per_tick = max(1, round(rate * TICK_S))
    ticks = max(1, round(seconds / TICK_S))
    enc = IlpEncoder(protocol_version=2)
    out: list[dict[str, tuple[bytes, int]]] = []
    n = 0
    it: Iterator[tuple[int, bytes]] = synth_frames(per_tick * ticks, seed)
    for _ in range(ticks):
        for _ in range(per_tick):
            recv, frame = next(it)
            enc.add_all(rows_of_frame(frame, recv))
            n += 1
        out.append(enc.take_payloads())
    return out, n


def measure_mode(
    scratch: Path, mode: CommitMode, rate: float, ticks: list[dict[str, tuple[bytes, int]]], frames: int,
) -> ModeResult:
    qdb = ephemeral.start_questdb(scratch / f"questdb-{mode}-{int(rate)}", PathsSettings().cache_dir, commit_mode=mode)
    s = qdb.settings
    conf = ilp_conf(s.host, s.http_port, 60.0)
    senders: dict[str, IlpHttpTransport] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-ilp")
    try:
        proc = qdb.server.pid_file.process()
        if proc is None:
            raise IngestError("the benchmark's QuestDB is not running")
        tables = sorted({t for tick in ticks for t in tick})
        for t in tables:  # connections up (and GET /settings done) before the clock starts
            senders[t] = IlpHttpTransport.from_conf(conf)
        cpu0 = proc.cpu_times()
        lat: list[float] = []
        req: list[float] = []
        rows = 0
        k = 0
        t0 = time.monotonic()
        while k < len(ticks):
            wait = t0 + k * TICK_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing to the writer's flush cadence
            # every tick that is due goes in one request per table (the writer, behind,
            # flushes everything it holds at once)
            now = time.monotonic()
            due = max(k + 1, min(len(ticks), int((now - t0) / TICK_S) + 1))
            bodies: dict[str, list[bytes]] = {}
            for tick in ticks[k:due]:
                for t, (body, n) in tick.items():
                    bodies.setdefault(t, []).append(body)
                    rows += n
            futs = [pool.submit(senders[t].send, b"".join(parts)) for t, parts in bodies.items()]
            for f in futs:
                f.result()
            done = time.monotonic()
            req.append(done - now)
            lat.append(done - (t0 + k * TICK_S))  # the oldest row of the request waited since its tick
            k = due
        elapsed = time.monotonic() - t0
        a0 = time.monotonic()
        _wait_wal(qdb.server.http_url)
        apply_s = time.monotonic() - a0
        cpu1 = proc.cpu_times()
        cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        return ModeResult(
            mode, rate, frames, rows, frames / elapsed, cpu / frames * 1e6,
            _percentile(lat, 0.5) * 1e3, _percentile(lat, 0.99) * 1e3, max(lat) * 1e3,
            _percentile(req, 0.5) * 1e3, _percentile(req, 0.99) * 1e3, len(req), apply_s,
        )
    except IlpHttpError as exc:
        raise IngestError(f"QuestDB ({mode}) refused the benchmark's rows: {exc}") from exc
    finally:
        pool.shutdown(wait=True)
        for snd in senders.values():
            snd.close()
        qdb.server.down()


def _wait_wal(http_url: str, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while questdb_scalar(http_url, "SELECT count() FROM wal_tables() WHERE suspended OR writerTxn < sequencerTxn"):
        if time.monotonic() > deadline:
            raise IngestError("QuestDB did not apply its WAL in time")
        time.sleep(0.1)


# ---------------------------------------------------------------------------- 3. catch-up


def fill_journal(directory: Path, target_bytes: int, connections: int = 4, seed: int = 7) -> tuple[int, int]:
    """Write ``target_bytes`` of unacknowledged records (synthetic frames, round robin over
    ``c0..``), then half a record at the end (a torn write); return (records, bytes)."""
    j = Journal.open(directory)
    records = 0
    try:
        chunk = 0
        while j.stats.appended_bytes < target_bytes:
            batch = list(synth_frames(4096, seed + chunk, start_us=1_795_000_000_000_000 + chunk * 1_000_000_000))
            for i in range(0, len(batch), 256):
                part = [(f, ts) for ts, f in batch[i : i + 256]]
                j.append_many(part, f"c{(i // 256) % connections}")
                records += len(part)
            chunk += 1
        j.sync()
        nbytes = j.stats.appended_bytes
        active = max(directory.glob("*.tjl"))
    finally:
        j.close()
    with open(active, "ab") as f:  # a SIGKILL in the middle of a writev
        f.write(b"TJ\x01\x02" + b"\x00" * 10)
    return records, nbytes


def measure_catch_up(
    scratch: Path, journal_gb: float, rate: float, echo: Callable[[str], None], timeout_s: float = 3600.0
) -> CatchUpResult:
    jdir = scratch / "journal-1gb"
    jdir.mkdir(parents=True, exist_ok=True)
    echo(f"  writing {journal_gb:g} GB of unacknowledged journal ...")
    records, nbytes = fill_journal(jdir, int(journal_gb * 1e9))
    qdb = ephemeral.start_questdb(scratch / "questdb-catch-up", PathsSettings().cache_dir)
    sim = SimProcess(rate, 400, 5.0, scratch / "sendlog-catch-up", scratch / "sim-catch-up.log")
    col: CollectorProcess | None = None
    try:
        sim.start()
        col = CollectorProcess(
            sim.ws_url, jdir, scratch, 4, 0, qdb.settings.host, qdb.settings.http_port,
            scratch / "collector-catch-up.log",
        )
        echo(f"  {records:,} records ({nbytes / 1e9:.2f} GB); starting the collector on it ...")
        t0 = time.monotonic()
        col.start()
        ps = psutil.Process(col.pid)
        metrics_up = live = acked = None
        cpu_s = 0.0
        m: Metrics | None = None
        while acked is None:
            if time.monotonic() - t0 > timeout_s:
                raise IngestError(f"the collector did not catch up within {timeout_s:g} s; see {col.log}")
            if not col.alive:
                raise IngestError(f"the collector exited; see {col.log}")
            m = col.scrape()
            now = time.monotonic() - t0
            if m is not None and metrics_up is None:
                metrics_up = now
            if live is None and _LIVE_LINE in col.log.read_text(errors="replace"):
                live = now
            if live is not None and m is not None and m.backlog_bytes < 1e6 and m.buffered_rows < 50_000:
                acked = now
                c = ps.cpu_times()
                cpu_s = c.user + c.system
            time.sleep(0.2)  # polling the collector's own progress
        assert metrics_up is not None
        assert live is not None
        return CatchUpResult(
            nbytes, records, metrics_up, live, acked, cpu_s / records * 1e6, rate,
        )
    finally:
        if col is not None:
            col.stop()
        sim.stop()
        qdb.server.down()


def _wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise IngestError(f"timed out waiting for {what}")
        time.sleep(0.2)


# ---------------------------------------------------------------------------- the command


def run(
    rates: list[float],
    modes: list[CommitMode],
    seconds: float,
    window_rate: float,
    window_seconds: float,
    journal_gb: float,
    echo: Callable[[str], None] = print,
    directory: Path | None = None,
) -> tuple[WindowResult | None, list[ModeResult], CatchUpResult | None]:
    parent = directory or PathsSettings().local_dir
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-durability-", dir=parent))
    try:
        window = None
        if window_seconds > 0:
            echo(f"1. receive -> fsync window (collector at {window_rate:g} frames/s)")
            window = measure_window(scratch / "window", window_rate, window_seconds, echo)
        results: list[ModeResult] = []
        for rate in rates:
            echo(f"2. commit modes at {rate:g} frames/s: encoding {rate * seconds:,.0f} synthetic frames ...")
            ticks, frames = encode_ticks(rate, seconds)
            for mode in modes:
                echo(f"  cairo.commit.mode={mode} ...")
                results.append(measure_mode(scratch, mode, rate, ticks, frames))
        catch = None
        if journal_gb > 0:
            echo(f"3. restart and catch-up with {journal_gb:g} GB of unacknowledged journal")
            catch = measure_catch_up(scratch, journal_gb, window_rate, echo)
        return window, results, catch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
