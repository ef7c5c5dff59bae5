"""``tickarchive bench normalize``: decode + normalize + ILP encoding on one core.

Reads a replay-format file into memory first (not timed), then, per run, pushes every
frame through the collector's per-frame function,
``tickarchive.venues.deribit.native.fast_notification(frame, ts) or parse_frame(frame, ts)``: ticker and book
frames come out of the native extension already as ILP bytes (``EncodedRows``, appended to
a per-table list and joined at each hand-over), every other event goes through
``store.ilp.IlpEncoder`` (protocol v2 buffers, handed over with ``take()`` every
``clear_every_rows`` rows and at the end, as a writer does at each flush: the encoder
encodes the high-volume tables in batches at ``take()``, so that is where part of the
encoding cost is paid). With ``TICKARCHIVE_NATIVE=0`` (or without the extension) every
frame takes the pure-Python path (``BenchResult.native`` says which ran).
``frames`` counts every frame read (heartbeats and responses included), ``ticks`` every
row produced. Figures are medians over the runs, computed from the CPU time of
the benchmarking thread (``time.thread_time``): "per core" throughput, not distorted by
other processes competing for the CPU. The wall-clock figure is reported next to it.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from tickarchive.domain import EncodedRows
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.store.ilp import IlpEncoder
from tickarchive.venues.deribit import native
from tickarchive.venues.deribit.normalize import Notification, parse_frame


@dataclass(frozen=True, slots=True)
class BenchResult:
    frames: int
    ticks: int
    frames_per_s: float
    ticks_per_s: float
    runs_s: tuple[float, ...]
    """CPU seconds of each run."""
    wall_frames_per_s: float
    input_bytes: int
    native: bool = False
    """The native fast path ran (``tickarchive.venues.deribit.native.ENABLED``)."""

    def as_json(self) -> dict[str, float | int]:
        return {
            "frames": self.frames,
            "ticks": self.ticks,
            "frames_per_s": self.frames_per_s,
            "ticks_per_s": self.ticks_per_s,
        }


def load_frames(path: Path) -> list[tuple[int, bytes]]:
    _, records = read_capture(path)
    return [(r.recv_ts_us, r.frame) for r in records]


def run_once(frames: list[tuple[int, bytes]], protocol_version: int = 2, clear_every_rows: int = 50_000) -> int:
    """One pass; returns the rows produced."""
    enc = IlpEncoder(protocol_version)
    add_all = enc.add_all
    fast = native.fast_notification
    raw: dict[str, list[bytes]] = {}
    ticks = 0
    pending = 0

    def take() -> None:
        enc.take()
        for parts in raw.values():
            b"".join(parts)  # the request body a writer would send after the buffer's rows
            parts.clear()

    for ts, frame in frames:
        o = fast(frame, ts) or parse_frame(frame, ts)
        if type(o) is Notification:
            evs = o.events
            if evs:
                e: object = evs[0]
                if type(e) is EncodedRows:  # the native path: one EncodedRows per frame
                    parts = raw.get(e.table)
                    if parts is None:
                        parts = raw[e.table] = []
                    parts.append(e.payload)
                    n = e.rows
                else:
                    n = add_all(evs)
                ticks += n
                pending += n
                if pending >= clear_every_rows:
                    take()
                    pending = 0
    take()
    return ticks


def bench_normalize(frames: list[tuple[int, bytes]], runs: int = 3, protocol_version: int = 2) -> BenchResult:
    """Time ``run_once`` ``runs`` times.

    The whole input is held in memory (one tuple per frame); the collector never holds
    more than a frame at a time. So that the cyclic garbage collector does not walk that
    input on every full collection (~5 % of the run for 200,000 frames), it is moved to
    the permanent generation (``gc.freeze``) for the duration of the timing; the
    collector itself still runs on everything the hot path allocates.
    """
    times = []
    walls = []
    ticks = 0
    gc.collect()
    gc.freeze()
    try:
        for _ in range(runs):
            w0 = time.perf_counter()
            t0 = time.thread_time()
            ticks = run_once(frames, protocol_version)
            times.append(time.thread_time() - t0)
            walls.append(time.perf_counter() - w0)
    finally:
        gc.unfreeze()
    med = statistics.median(times)
    wall = statistics.median(walls)
    n = len(frames)
    return BenchResult(
        frames=n,
        ticks=ticks,
        frames_per_s=n / med if med > 0 else 0.0,
        ticks_per_s=ticks / med if med > 0 else 0.0,
        runs_s=tuple(times),
        wall_frames_per_s=n / wall if wall > 0 else 0.0,
        input_bytes=sum(len(f) for _, f in frames),
        native=native.ENABLED,
    )


@dataclass(frozen=True, slots=True)
class JournalBenchResult:
    records: int
    bytes: int
    append_per_s: float
    append_us: float
    fsync_ms_median: float
    fsync_ms_max: float
    window_ms_max: float
    """Longest measured append → durable (fsync done) delay with the given sync interval."""


def bench_journal(
    directory: Path, frames: list[bytes], rate_per_s: float = 5000.0, fsync_interval_ms: int = 200
) -> JournalBenchResult:
    """Append throughput (as fast as possible), then fsync cost and the fsync window
    for ``frames`` paced at ``rate_per_s`` with ``sync()`` every ``fsync_interval_ms``.
    The paced part is simulated without sleeping: batches of ``rate * interval`` records,
    each followed by one ``sync()``; the window reported adds the interval."""
    from tickarchive.ingest.journal import Journal

    j = Journal.open(directory)
    try:
        t0 = time.perf_counter()
        for i, f in enumerate(frames):
            j.append(f, i, "c0")
        took = time.perf_counter() - t0
        j.sync()
        batch = max(int(rate_per_s * fsync_interval_ms / 1000), 1)
        costs = []
        for k in range(0, len(frames), batch):
            for f in frames[k : k + batch]:
                j.append(f, k, "c0")
            costs.append(j.sync())
        nbytes = sum(len(f) for f in frames)
    finally:
        j.close()
    return JournalBenchResult(
        records=len(frames),
        bytes=nbytes,
        append_per_s=len(frames) / took if took > 0 else 0.0,
        append_us=took / len(frames) * 1e6,
        fsync_ms_median=statistics.median(costs) * 1e3,
        fsync_ms_max=max(costs) * 1e3,
        window_ms_max=fsync_interval_ms + max(costs) * 1e3,
    )
