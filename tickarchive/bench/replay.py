"""``tickarchive bench replay``: ``tickarchive replay`` of journal archive files (``.tjz``)
into Parquet, end to end, in frames per second per core (docs/archive.md, "Replay speed").

The input is made once per (frames, instruments, seed) and kept in the work directory:
the simulator (``loadtest/sim``, in process, no sockets) steps its market at the cost
bench's mid scenario (``instruments`` options, one ticker and one book notification per
instrument per simulated second, ``time_scale`` simulated seconds per wall second, trades
and the index), its notifications fanned out to ``connections`` connections sharded as
the collector shards its channels; every frame is journaled (``encode_records``: the
journal's record format, receive time = the step's wall clock plus a few µs) into 64 MiB
segments, and each segment archived with the journal archive codec at the configured
level (``archive.journal_zstd_level``), as ``tickarchive archive journal`` stores it.

Each run is ``tickarchive replay FILES --to DIR`` in a child process (the command a
re-derivation runs, interpreter start-up included); its CPU time (user + system) and
peak RSS come from ``wait4`` of that child alone. frames/s per core = frames / CPU-s.

The start-up (interpreter, imports, settings, the venue, seven empty output files) is
measured apart: the same command on a one-frame ``.tjz``. The figure beyond start-up,
frames / (CPU-s - start-up CPU-s), is the rate a long re-derivation runs at (a day of
the mid scenario is ~131 million frames: start-up is a millionth of it), the end-to-end
figure that of this short input.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tickarchive.archive import journal_codec
from tickarchive.bench.cost_model import ASSUMPTIONS
from tickarchive.ingest.journal.format import encode_records
from tickarchive.loadtest.errors import HarnessError
from tickarchive.loadtest.harness_procs import CLI
from tickarchive.settings import Settings

SEGMENT_BYTES = 64 * 1024 * 1024
"""The journal's default segment size (``journal.segment_bytes``)."""


@dataclass(frozen=True, slots=True)
class ReplaySpec:
    frames: int = 1_000_000
    instruments: int = ASSUMPTIONS.instruments
    seed: int = 1
    connections: int = 4
    time_scale: float = 10.0
    runs: int = 3


@dataclass(frozen=True, slots=True)
class ReplayRun:
    cpu_s: float
    wall_s: float
    rss_mb: float


@dataclass(frozen=True, slots=True)
class ReplayBench:
    frames: int
    files: int
    archive_bytes: int
    runs: tuple[ReplayRun, ...]
    rows: dict[str, int]
    startup: tuple[ReplayRun, ...] = ()
    """Runs of the same command on a one-frame input."""

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def startup_cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.startup) if self.startup else 0.0

    @property
    def frames_per_s_beyond_startup(self) -> float:
        work = self.cpu_s - self.startup_cpu_s
        return self.frames / work if work > 0 else 0.0

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def rss_mb(self) -> float:
        return max(r.rss_mb for r in self.runs)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.cpu_s if self.cpu_s else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "files": self.files,
            "archive_bytes": self.archive_bytes,
            "replay_frames_per_s": round(self.frames_per_s),
            "replay_frames_per_s_beyond_startup": round(self.frames_per_s_beyond_startup),
            "startup_cpu_s": round(self.startup_cpu_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "wall_s": round(self.wall_s, 3),
            "rss_mb": round(self.rss_mb),
            "runs_cpu_s": [round(r.cpu_s, 3) for r in self.runs],
            "rows": self.rows,
        }


# ---------------------------------------------------------------------------- input


class _NoSocket:
    """What ``Connection`` reads of a websockets connection (its frames are taken from its
    queue here, never written)."""

    remote_address = ("127.0.0.1", 0)


def simulated_frames(spec: ReplaySpec) -> Iterator[tuple[bytes, bytes, int]]:
    """``spec.frames`` ``(connection, frame, recv_ts_us)`` of the simulator's market, in
    the order a collector would journal them."""
    from tickarchive.loadtest.sim.config import SimConfig
    from tickarchive.loadtest.sim.connection import Connection, ws_payload
    from tickarchive.loadtest.sim.server import Simulator

    mid = ASSUMPTIONS.scenario("mid").ticker_frames_per_instrument_s
    rate = 2.0 * spec.instruments * mid * spec.time_scale  # ticker + book per wall second
    start_ms = 1_767_225_600_000  # 2026-01-01: reproducible names and frames
    with tempfile.TemporaryDirectory(prefix="tickarchive-bench-replay-sendlog-") as tmp:
        cfg = SimConfig(
            seed=spec.seed, rate_per_s=rate, instruments=spec.instruments, time_scale=spec.time_scale,
            trades_per_s=ASSUMPTIONS.trades_per_day / 86_400 * spec.time_scale, start_ms=start_ms,
            sendlog_dir=Path(tmp),
        )
        sim = Simulator(cfg)
        assert sim.model is not None
        names = [st.inst.name for st in sim.model.active]
        channels = [f"{k}.{n}.100ms" for n in names for k in ("ticker", "book")]
        channels += ["trades.option.ETH.100ms", "deribit_price_index.eth_usd"]
        conns = []
        for i in range(spec.connections):
            conn = Connection(f"c{i + 1}", _NoSocket(), None, sim.send_log, 10**9)  # type: ignore[arg-type]
            sim.connections[conn.id] = conn
            for ch in channels[i :: spec.connections]:
                sim.subs.setdefault(ch, []).append(conn)
            conns.append(conn)
        ids = [c.id.encode() for c in conns]
        left = spec.frames
        now_ms = start_ms
        while left > 0:
            now_ms += cfg.tick_ms
            sim.step_and_publish(now_ms)
            recv = now_ms * 1000 + 700
            for cid, conn in zip(ids, conns, strict=True):
                while conn.queue:
                    wires, _recs = conn.queue.popleft()
                    for w in wires[:left]:
                        recv += 3
                        yield cid, ws_payload(w), recv
                    left -= min(left, len(wires))
                conn.pending = 0
        sim.send_log.flush()


def build_input(spec: ReplaySpec, directory: Path) -> list[Path]:
    """The ``.tjz`` files of ``spec`` in ``directory`` (made unless already there)."""
    done = directory / "DONE"
    if done.exists():
        return sorted(directory.glob("*.tjz"))
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    frames = simulated_frames(spec)
    level = Settings().archive.journal_zstd_level
    paths: list[Path] = []
    seq = 1
    parts: list[bytes] = []
    size = 0

    def seal() -> None:
        nonlocal parts, size
        segment = b"".join(parts)
        path = directory / f"{first:020d}.tjz"
        path.write_bytes(journal_codec.encode(segment, level))
        paths.append(path)
        parts, size = [], 0

    first = seq
    for cid, frame, recv in frames:
        rec = encode_records([(frame, recv)], seq, cid)
        parts.append(rec)
        size += len(rec)
        seq += 1
        if size >= SEGMENT_BYTES:
            seal()
            first = seq
    if parts:
        seal()
    done.write_text(f"{seq - 1}\n")
    return paths


# ---------------------------------------------------------------------------- runs


def _run_child(argv: list[str]) -> tuple[int, bytes, bytes, float, float, float]:
    """(status, stdout, stderr, cpu_s, wall_s, max_rss_mb) of one child (``wait4``)."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, fo.fileno(), 1), (os.POSIX_SPAWN_DUP2, fe.fileno(), 2),
        ])
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        fo.seek(0)
        fe.seek(0)
        return (
            os.waitstatus_to_exitcode(status), fo.read(), fe.read(), ru.ru_utime + ru.ru_stime, wall,
            ru.ru_maxrss / 1024,
        )


def replay_child(files: list[Path], out: Path, extra: tuple[str, ...] = ()) -> tuple[ReplayRun, str]:
    """One ``tickarchive replay FILES --to OUT`` child: its CPU time, wall time and peak
    RSS (``wait4`` of that child alone) and what it printed."""
    shutil.rmtree(out, ignore_errors=True)
    code, stdout, stderr, cpu, wall, rss = _run_child([*CLI, "replay", *map(str, files), "--to", str(out), *extra])
    if code != 0:
        raise HarnessError(f"tickarchive replay failed ({code}): {stderr.decode(errors='replace')[-2000:]}")
    return ReplayRun(cpu, wall, rss), stdout.decode(errors="replace")


def one_frame_input(directory: Path, seed: int = 1) -> list[Path]:
    """A ``.tjz`` holding the simulator's first frame (made unless already there): the
    input of the start-up measurement."""
    path = directory / f"{1:020d}.tjz"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        cid, frame, recv = next(simulated_frames(ReplaySpec(frames=1, seed=seed)))
        segment = encode_records([(frame, recv)], 1, cid)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(journal_codec.encode(segment, Settings().archive.journal_zstd_level))
        tmp.replace(path)
    return [path]


def startup_runs(work: Path, runs: int) -> tuple[ReplayRun, ...]:
    """``runs`` replays of a one-frame input: the command's start-up cost."""
    files = one_frame_input(work / "one-frame")
    out = work / "one-frame-out"
    try:
        return tuple(replay_child(files, out)[0] for _ in range(runs))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _rows(text: str) -> dict[str, int]:
    rows = {}
    for line in text.splitlines()[1:]:
        name, sep, rest = line.strip().partition(": ")
        if sep and rest.split()[1:2] == ["rows"]:
            rows[name] = int(rest.split()[0])
    return rows


def run(spec: ReplaySpec, work_dir: Path | None = None, echo: Callable[[str], None] = print) -> ReplayBench:
    """Build (or reuse) the input under ``work_dir`` and replay it ``spec.runs`` times."""
    root = Path(work_dir or tempfile.gettempdir()) / "tickarchive-bench-replay"
    inputs = root / f"input-{spec.frames}-{spec.instruments}-{spec.seed}-{spec.connections}-{spec.time_scale:g}"
    if not (inputs / "DONE").exists():
        echo(f"replay bench: making {spec.frames:,} simulator frames into .tjz files in {inputs} (once)")
    files = build_input(spec, inputs)
    runs = []
    text = ""
    out = root / "out"
    try:
        for i in range(spec.runs):
            r, text = replay_child(files, out)
            echo(f"replay bench: run {i + 1}: {r.cpu_s:.2f} CPU-s, {r.wall_s:.2f} s wall, max RSS {r.rss_mb:.0f} MB")
            runs.append(r)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    startup = startup_runs(root, spec.runs)
    echo(f"replay bench: start-up (one-frame input): {statistics.median(r.cpu_s for r in startup):.2f} CPU-s")
    frames = int(text.split()[1])
    return ReplayBench(frames, len(files), sum(p.stat().st_size for p in files), tuple(runs), _rows(text), startup)


def summary(b: ReplayBench) -> str:
    return (
        f"replay (tickarchive replay FILES --to DIR, one process, start-up included): "
        f"{b.frames_per_s:,.0f} frames/s per core ({b.frames:,} frames from {b.files} .tjz file(s), "
        f"{b.archive_bytes / b.frames:.1f} B/frame; median of {len(b.runs)} run(s): {b.cpu_s:.2f} CPU-s, "
        f"{b.wall_s:.2f} s wall, max RSS {b.rss_mb:.0f} MB); beyond start-up ({b.startup_cpu_s:.2f} CPU-s, "
        f"a one-frame input): {b.frames_per_s_beyond_startup:,.0f} frames/s per core"
    )
