"""``tickarchive bench cost``: bytes per row (or frame) in every tier, through the real
pipeline, and what five years of it cost (docs/cost-model.md).

One run, every process on its own private servers and free loopback ports under a scratch
directory (all stopped by the PIDs started):

1. the simulator (``tickarchive sim``) streams ``hours`` of simulated market at ``speed``
   times real time (``--time-scale``: each instrument ticks ``ASSUMPTIONS``' mid rate per
   *simulated* second) to the collector (``tickarchive collect``), which journals every
   frame and writes QuestDB; then the collector drains and stops;
2. QuestDB: on-disk bytes per row of each table (``table_partitions().diskSize``);
3. the rollover moves the day(s) into the warm store (the embedded PostgreSQL, plain
   dialect) and verifies them;
4. the archive exports the month from the warm store (Parquet, bytes per row per table),
   and restores it into a second private PostgreSQL (export and restore rows/s);
5. TimescaleDB: the rows of ``warm_instruments`` instruments (every row of theirs) are
   loaded by the rollover's loader into the PGlite TimescaleDB test server and compressed
   per day as the rollover does; ``hypertable_compression_stats`` gives the ratio per
   table. (PGlite runs PostgreSQL in WASM memory: it does not hold a whole hour of the
   chain. Compression is per instrument segment, so a sample of instruments compresses as
   the whole chain does.)
6. the journal's segments are archived (``.tjz``: bytes per frame, beside zstd-9 of the
   same segments, the format before), then ``tickarchive replay`` re-derives every table
   from the archive files: frames per second per core (its CPU time, start-up included);
7. ``cost_model`` turns the measured bytes and its assumptions into dollars per month.

Wire timestamps follow the wall clock (the simulator's contract), so at ``speed`` 10 an
instrument's ticks are ~100 ms apart on the wire while the market moved ~1 s between them:
the timestamp columns see shorter deltas than in production, everything else the same.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard

from tickarchive.archive import catalog
from tickarchive.archive.export import ExportOptions, export_month
from tickarchive.archive.journal import archive_journal_day
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.restore import restore_month
from tickarchive.bench import cost_model
from tickarchive.bench.cost_model import ASSUMPTIONS, Assumptions, Measured
from tickarchive.bench.replay import replay_child, startup_runs
from tickarchive.ingest.journal import JournalReader
from tickarchive.loadtest.errors import HarnessError
from tickarchive.loadtest.harness_procs import CollectorProcess, SimProcess, questdb_scalar
from tickarchive.months import Month
from tickarchive.settings import PathsSettings, Settings
from tickarchive.store.dialect import Dialect
from tickarchive.store.hot import HotStore
from tickarchive.store.rollover import RolloverOptions
from tickarchive.store.rollover import run as rollover
from tickarchive.store.seal import day_start_us
from tickarchive.store.stack import ephemeral
from tickarchive.store.stack.procs import free_port
from tickarchive.store.warm import WarmStore
from tickarchive.tables import BOOK_CHANGES, INDEX_TICKS, INSTRUMENTS, QUOTES, TRADES, Table

Echo = Callable[[str], None]
TABLES: tuple[Table, ...] = (QUOTES, BOOK_CHANGES, TRADES, INDEX_TICKS, INSTRUMENTS)
"""The tables whose bytes per row are measured (the market tables)."""
QUIESCE_RATE = 50.0


@dataclass(frozen=True, slots=True)
class CostSpec:
    instruments: int = ASSUMPTIONS.instruments
    hours: float = 1.0
    """Simulated hours of market."""
    speed: float = 10.0
    """Simulated seconds per wall second."""
    seed: int = 1
    connections: int = 4
    work_dir: Path | None = None
    keep: bool = False
    restore: bool = True
    warm_instruments: int = 100
    """Instruments whose rows the TimescaleDB measurement loads (every row of each)."""

    @property
    def wall_s(self) -> float:
        return self.hours * 3600.0 / self.speed

    def sim_rate(self, a: Assumptions) -> float:
        """Ticker + book frames per wall second: the mid scenario's ticker rate per
        instrument (the simulator sends as many book messages as tickers)."""
        return 2.0 * self.instruments * a.scenario("mid").ticker_frames_per_instrument_s * self.speed

    def trades_per_s(self, a: Assumptions) -> float:
        return a.trades_per_day / 86_400 * self.speed


@dataclass(slots=True)
class TierRows:
    rows: int = 0
    bytes: int = 0

    @property
    def per_row(self) -> float:
        return self.bytes / self.rows if self.rows else 0.0


@dataclass(slots=True)
class CostResult:
    spec: CostSpec
    data: str
    frames: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    questdb: dict[str, TierRows] = field(default_factory=dict)
    timescaledb_before: dict[str, TierRows] = field(default_factory=dict)
    timescaledb_after: dict[str, TierRows] = field(default_factory=dict)
    parquet: dict[str, TierRows] = field(default_factory=dict)
    journal_local_bytes: int = 0
    journal_archive_bytes: int = 0
    journal_zstd9_bytes: int = 0
    replay_frames: int = 0
    replay_cpu_s: float = 0.0
    replay_wall_s: float = 0.0
    replay_rss_mb: float = 0.0
    replay_startup_cpu_s: float = 0.0
    export_rows_per_s: dict[str, float] = field(default_factory=dict)
    restore_rows_per_s: dict[str, float] = field(default_factory=dict)
    journal_archive_s: float = 0.0
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    timings_s: dict[str, float] = field(default_factory=dict)

    def measured(self) -> Measured:
        return Measured(
            parquet_bytes_per_row={k: v.per_row for k, v in self.parquet.items()},
            journal_archive_bytes_per_frame=self.journal_archive_bytes / max(1, self.frames),
            journal_local_bytes_per_frame=self.journal_local_bytes / max(1, self.frames),
            timescaledb_bytes_per_row={k: v.per_row for k, v in self.timescaledb_after.items()},
            questdb_bytes_per_row={k: v.per_row for k, v in self.questdb.items()},
        )

    def compression_ratio(self) -> dict[str, float]:
        return {
            k: round(b.bytes / a.bytes, 2)
            for k, b in self.timescaledb_before.items()
            if (a := self.timescaledb_after.get(k)) is not None and a.bytes
        }

    @property
    def replay_frames_per_s(self) -> float:
        return self.replay_frames / self.replay_cpu_s if self.replay_cpu_s else 0.0

    @property
    def replay_frames_per_s_beyond_startup(self) -> float:
        """The rate of a long re-derivation: start-up (a one-frame replay) left out."""
        work = self.replay_cpu_s - self.replay_startup_cpu_s
        return self.replay_frames / work if work > 0 else 0.0

    def as_json(self, a: Assumptions = ASSUMPTIONS) -> dict[str, Any]:
        m = self.measured()
        return {
            "parquet_bytes_per_row": {k: round(v, 2) for k, v in m.parquet_bytes_per_row.items()},
            "journal_archive_bytes_per_frame": round(m.journal_archive_bytes_per_frame, 2),
            "timescaledb_compression_ratio": self.compression_ratio(),
            "questdb_bytes_per_row": {k: round(v, 1) for k, v in m.questdb_bytes_per_row.items()},
            "replay_frames_per_s": round(self.replay_frames_per_s),
            "replay_frames_per_s_beyond_startup": round(self.replay_frames_per_s_beyond_startup),
            "five_year_usd_per_month": cost_model.five_year_usd_per_month(a, m),
            "details": {
                "data": self.data,
                "spec": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.spec).items()},
                "frames": self.frames,
                "rows": self.rows,
                "journal_local_bytes_per_frame": round(m.journal_local_bytes_per_frame, 1),
                "journal_zstd9_bytes_per_frame": round(self.journal_zstd9_bytes / max(1, self.frames), 2),
                "timescaledb_bytes_per_row": {k: round(v, 1) for k, v in m.timescaledb_bytes_per_row.items()},
                "timescaledb_bytes_per_row_before": {
                    k: round(v.per_row, 1) for k, v in self.timescaledb_before.items()
                },
                "replay_cpu_s": round(self.replay_cpu_s, 2),
                "replay_wall_s": round(self.replay_wall_s, 2),
                "replay_rss_mb": round(self.replay_rss_mb),
                "replay_startup_cpu_s": round(self.replay_startup_cpu_s, 2),
                "export_rows_per_s": {k: round(v) for k, v in self.export_rows_per_s.items()},
                "restore_rows_per_s": {k: round(v) for k, v in self.restore_rows_per_s.items()},
                "journal_archive_s": round(self.journal_archive_s, 1),
                "load_avg": self.load_avg,
                "timings_s": {k: round(v, 1) for k, v in self.timings_s.items()},
                "assumptions": cost_model.assumptions_json(a),
            },
        }


# ---------------------------------------------------------------------------- the run


class _Timer:
    def __init__(self, result: CostResult, echo: Echo) -> None:
        self.result = result
        self.echo = echo

    def __call__(self, name: str) -> _Step:
        return _Step(self, name)


class _Step:
    def __init__(self, timer: _Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()
        self.timer.echo(f"cost: {self.name}...")

    def __exit__(self, *exc: object) -> None:
        self.timer.result.timings_s[self.name] = time.perf_counter() - self.t0


def run(spec: CostSpec, echo: Echo = print, a: Assumptions = ASSUMPTIONS) -> CostResult:
    import psutil

    root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-cost-", dir=spec.work_dir))
    result = CostResult(spec, data=_data_description(spec, a))
    step = _Timer(result, echo)
    servers: list[Any] = []
    cleanup = [root]
    sim: SimProcess | None = None
    collector: CollectorProcess | None = None
    try:
        eq = ephemeral.start_questdb(root / "questdb", PathsSettings().cache_dir, ephemeral=False)
        servers.append(eq.server)
        qh = eq.handle
        echo(f"cost: QuestDB on {qh.http_url}; {result.data}")
        sim = SimProcess(
            spec.sim_rate(a), spec.instruments, spec.trades_per_s(a), root / "sendlog", root / "sim.log", spec.seed,
            extra_args=("--time-scale", f"{spec.speed:g}"),
        )
        sim.start()
        collector = CollectorProcess(
            sim.ws_url, root / "journal", root, spec.connections, free_port(), qh.host, qh.http_port,
            root / "collector.log", {"TICKARCHIVE_JOURNAL__MIN_FREE_BYTES": str(64 << 20)},
        )
        collector.start()
        with step("collect"):
            _collect(spec, sim, collector, echo)
        sim.stop()
        qh.wait_for_wal(timeout_s=600)
        with step("questdb rows"):
            _questdb_rows(qh.http_url, result)
        days = _days(qh.http_url)
        journal = root / "journal"
        with step("journal archive"):
            _journal(journal, root / "jlake", days[0], result)
        with step("replay"):
            _replay(root / "jlake", root / "replay", result)
        pg_root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-cost-pg-"))
        pg_root.chmod(0o711)  # PostgreSQL runs as its own user when started by root
        cleanup.append(pg_root)
        ew = ephemeral.start_postgres(pg_root / "warm", ephemeral=False)
        servers.append(ew.server)
        month = Month(days[0].year, days[0].month)
        with HotStore(qh.pg_dsn, qh.http_url) as hot, WarmStore(ew.server.dsns.owner, Dialect.POSTGRES) as warm:
            with step("rollover"):
                _rollover(hot, warm, qh, days)
            with step("archive export"):
                _export(warm, root / "lake", month, result)
        # QuestDB trims each column file to its data when it closes the table: measured
        # once it has stopped (while running, the partition being written holds a 16 MiB
        # append page per column, which a day's partition does not carry per row)
        servers.remove(eq.server)
        eq.server.down()
        _questdb_bytes(root / "questdb" / "db", result)
        if spec.restore:
            er = ephemeral.start_postgres(pg_root / "restore", ephemeral=False)
            servers.append(er.server)
            with WarmStore(er.server.dsns.owner, Dialect.POSTGRES) as sink, step("archive restore"):
                _restore(sink, root / "lake", month, result)
        et = ephemeral.start_timescaledb(root / "pglite", ephemeral=False)
        servers.append(et.server)
        with WarmStore(et.server.dsn, Dialect.TIMESCALEDB, pglite=True) as tsdb, step("TimescaleDB compression"):
            _timescaledb(tsdb, root / "lake", month, spec.warm_instruments, result)
        result.load_avg = psutil.getloadavg()
        return result
    finally:
        if collector is not None:
            collector.stop()
        if sim is not None:
            sim.stop()
        for s in reversed(servers):
            s.down()
        if not spec.keep:
            for d in cleanup:
                shutil.rmtree(d, ignore_errors=True)
        else:
            echo(f"cost: kept {root}")


def _data_description(spec: CostSpec, a: Assumptions) -> str:
    return (
        f"the simulator (tickarchive sim, seed {spec.seed}): {spec.instruments} instruments, "
        f"{spec.hours:g} simulated hour(s) at {spec.speed:g}x ({spec.sim_rate(a):,.0f} ticker+book frames per wall "
        f"second, {a.scenario('mid').ticker_frames_per_instrument_s:g} ticker/s per instrument of simulated time)"
    )


def _collect(spec: CostSpec, sim: SimProcess, collector: CollectorProcess, echo: Echo) -> None:
    deadline = time.monotonic() + 180
    last = -1.0
    stable = 0
    while True:
        if not collector.alive:
            raise HarnessError(f"the collector exited at start-up; see {collector.log}")
        m = collector.scrape()
        if m is not None and m.connections_up >= spec.connections and m.subscribed > 0:
            stable = stable + 1 if m.subscribed == last else 0
            last = m.subscribed
            if stable >= 2:
                break
        if time.monotonic() > deadline:
            raise HarnessError("the collector did not subscribe within 180 s")
        time.sleep(0.5)
    t0 = time.monotonic()
    next_echo = t0 + 30
    while (now := time.monotonic()) - t0 < spec.wall_s:
        if not collector.alive:
            raise HarnessError(f"the collector died; see {collector.log}")
        if now >= next_echo:
            m = collector.scrape()
            st = sim.control("status")
            echo(f"  {now - t0:5.0f} s of {spec.wall_s:.0f}: {st.get('frames_published', 0):,} frames published, "
                 f"{(m.stored_rows if m else 0):,.0f} rows stored")
            next_echo += 30
        time.sleep(min(1.0, max(0.0, spec.wall_s - (now - t0))))
    sim.control("rate", per_s=QUIESCE_RATE)
    deadline = time.monotonic() + 300
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        time.sleep(1.0)
        m = collector.scrape()
        quiet = quiet + 1 if m is not None and m.buffered_rows < 1000 and m.backlog_bytes < 1_000_000 else 0
    collector.stop()


def _questdb_rows(http: str, result: CostResult) -> None:
    for t in TABLES:
        result.rows[t.name] = int(questdb_scalar(http, f"SELECT count() FROM {t.name}") or 0)


def _questdb_bytes(db: Path, result: CostResult) -> None:
    for t in TABLES:
        result.questdb[t.name] = TierRows(result.rows.get(t.name, 0), questdb_partition_bytes(db, t.name))


def questdb_partition_bytes(db: Path, table: str) -> int:
    """Bytes of the table's partitions on disk, read with QuestDB stopped.

    While the table is being written QuestDB maps (and allocates) a 16 MiB append page per
    column of the open partition, and ``table_partitions().diskSize`` counts them, so a
    short run would cost hundreds of bytes per row more than a day does; on close every
    column file is trimmed to its data (4 KiB pages). WAL segments (purged once applied)
    and the table's metadata are left out."""
    total = 0
    for table_dir in (d for d in db.glob(f"{table}~*") if d.is_dir()):
        for part in table_dir.iterdir():
            if part.is_dir() and part.name[:1].isdigit():
                total += sum(f.stat().st_size for f in part.iterdir() if f.is_file())
    return total


def _days(http: str) -> list[dt.date]:
    lo = questdb_scalar(http, "SELECT cast(min(ts) AS long) FROM quotes")
    hi = questdb_scalar(http, "SELECT cast(max(ts) AS long) FROM quotes")
    if lo is None or hi is None:
        raise HarnessError("QuestDB holds no quotes: nothing was collected")
    first = dt.datetime.fromtimestamp(int(lo) / 1e6, dt.UTC).date()
    last = dt.datetime.fromtimestamp(int(hi) / 1e6, dt.UTC).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _journal(journal: Path, lake: Path, day: dt.date, result: CostResult) -> None:
    segs = JournalReader(journal).segments()
    paths = [s.path for s in segs if s.records]
    result.frames = sum(s.records for s in segs)
    result.journal_local_bytes = sum(s.bytes for s in segs)
    z = zstandard.ZstdCompressor(level=9)
    result.journal_zstd9_bytes = sum(len(z.compress(p.read_bytes())) for p in paths)
    level = Settings().archive.journal_zstd_level
    t0 = time.perf_counter()
    r = archive_journal_day(LocalTarget(lake), day, paths, zstd_level=level)
    result.journal_archive_s = time.perf_counter() - t0
    result.journal_archive_bytes = r.manifest.total_bytes


def _replay(lake: Path, out: Path, result: CostResult) -> None:
    """``tickarchive replay`` of the day's .tjz files in a child process; its own CPU time
    and peak RSS (``wait4``: RUSAGE_CHILDREN's peak is the largest child ever waited for,
    the collector or the simulator as well)."""
    files = sorted(lake.glob("_journal/day=*/*.tjz"))
    run, text = replay_child(files, out, ("--accept-damage",))
    result.replay_wall_s = run.wall_s
    result.replay_cpu_s = run.cpu_s
    result.replay_rss_mb = run.rss_mb
    result.replay_frames = int(text.split()[1])
    startup = sorted(r.cpu_s for r in startup_runs(out.parent, 3))
    result.replay_startup_cpu_s = startup[1]  # the median of three


def _rollover(hot: HotStore, warm: WarmStore, qh: Any, days: list[dt.date]) -> None:
    after = days[-1] + dt.timedelta(days=1)
    qh.query(
        "INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, frames_total, "
        f"journal_backlog_bytes) VALUES ('{after.isoformat()}T00:05:00.000000Z', 'bench', true, 1, 1, 0)"
    )
    qh.wait_for_wal(timeout_s=120)
    for day in days:
        now = day_start_us(day) + 2 * 86_400_000_000
        report = rollover(hot, warm, now, RolloverOptions(drop=False), day=day)
        if not report.ok:
            raise HarnessError(f"rollover of {day} found mismatches: {report.problems}")


def _timescaledb(tsdb: WarmStore, lake: Path, month: Month, instruments: int, result: CostResult) -> None:
    """Every row of the first ``instruments`` instruments (by name) of each table, loaded
    and compressed day by day as the rollover does; bytes before and after."""
    target = LocalTarget(lake)
    for t in TABLES:
        m = catalog.read_month_manifest(target, t.name, month)
        if m is None:
            continue
        data = pq.read_table([str(lake / f.path) for f in m.files])
        names = pc.unique(data.column(t.segment_by)).to_pylist()
        keep = pa.array(sorted(names)[:instruments], data.schema.field(t.segment_by).type)
        data = data.filter(pc.is_in(data.column(t.segment_by), value_set=keep))
        day_of = pc.floor_temporal(data.column("ts"), unit="day").cast(pa.int64())
        days = sorted(set(day_of.to_pylist()))
        for d_us in days:
            day = dt.datetime.fromtimestamp(d_us / 1e6, dt.UTC).date()
            part = data.filter(pc.equal(day_of, d_us))
            for batch in part.to_batches(max_chunksize=50_000):
                tsdb.load(t, batch, day, fresh=True)
            tsdb.compress_day(t, day)
        rows = tsdb._exec(
            "SELECT coalesce(sum(before_compression_total_bytes), 0), coalesce(sum(after_compression_total_bytes), 0) "
            "FROM hypertable_compression_stats(%s::regclass)",
            (tsdb.storage(t),),
            "compression stats",
        )
        before, after = (int(x) for x in rows[0])
        result.timescaledb_before[t.name] = TierRows(data.num_rows, before)
        result.timescaledb_after[t.name] = TierRows(data.num_rows, after)


def _export(warm: WarmStore, lake: Path, month: Month, result: CostResult) -> None:
    target = LocalTarget(lake)
    options = ExportOptions.from_settings(Settings().archive)
    for t in TABLES:
        t0 = time.perf_counter()
        r = export_month(warm, target, t, month, options)
        secs = time.perf_counter() - t0
        m = r.manifest
        result.parquet[t.name] = TierRows(m.total_rows, m.total_bytes)
        result.export_rows_per_s[t.name] = m.total_rows / secs if secs else 0.0


def _restore(sink: WarmStore, lake: Path, month: Month, result: CostResult) -> None:
    target = LocalTarget(lake)
    for t in TABLES:
        t0 = time.perf_counter()
        r = restore_month(target, sink, t, month)
        secs = time.perf_counter() - t0
        result.restore_rows_per_s[t.name] = r.rows_read / secs if secs else 0.0


def write_json(result: CostResult, path: Path) -> None:
    path.write_text(json.dumps(result.as_json(), indent=2) + "\n")
