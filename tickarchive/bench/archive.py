"""``tickarchive bench archive``: export/verify/restore throughput and bytes per row on
synthetic data (``archive.synthetic``), against a local directory target."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tickarchive.archive import synthetic
from tickarchive.archive.export import ExportOptions, export_month
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.memory import ArrowTableSource, CountingSink
from tickarchive.archive.restore import restore_month
from tickarchive.archive.verify import verify_month
from tickarchive.months import Month
from tickarchive.tables import table as table_named

BENCH_MONTH = Month(2026, 11)


@dataclass(frozen=True, slots=True)
class BenchRow:
    table: str
    rows: int
    files: int
    bytes: int
    export_s: float
    verify_s: float
    restore_s: float

    @property
    def bytes_per_row(self) -> float:
        return self.bytes / self.rows if self.rows else 0.0

    def per_s(self, seconds: float) -> float:
        return self.rows / seconds if seconds > 0 else 0.0


def run(
    tables: Sequence[str], rows: int, options: ExportOptions, work_dir: Path | None = None, seed: int = 7
) -> list[BenchRow]:
    out = []
    with tempfile.TemporaryDirectory(prefix="tickarchive-bench-", dir=work_dir) as tmp:
        target = LocalTarget(Path(tmp) / "lake")
        for name in tables:
            table = table_named(name)
            data = synthetic.GENERATORS[name](rows, BENCH_MONTH, seed=seed, span_days=3.0)
            source = ArrowTableSource({name: data})
            source.count_rows(table, BENCH_MONTH)  # sort outside the timed section
            t0 = time.perf_counter()
            result = export_month(source, target, table, BENCH_MONTH, options)
            t1 = time.perf_counter()
            verify_month(target, name, BENCH_MONTH)
            t2 = time.perf_counter()
            restore_month(target, CountingSink(), table, BENCH_MONTH)
            t3 = time.perf_counter()
            m = result.manifest
            out.append(BenchRow(name, m.total_rows, len(m.files), m.total_bytes, t1 - t0, t2 - t1, t3 - t2))
    return out


@dataclass(frozen=True, slots=True)
class WarmBenchRow:
    table: str
    rows: int
    bytes: int
    load_s: float
    export_s: float
    restore_s: float

    def per_s(self, seconds: float) -> float:
        return self.rows / seconds if seconds > 0 else 0.0


def run_warm(
    dsn: str, tables: Sequence[str], rows: int, options: ExportOptions, work_dir: Path | None = None, seed: int = 7
) -> list[WarmBenchRow]:
    """Against a real warm store (use a scratch database): load synthetic rows of a far-future
    month into the warm store (timed), export them (timed), delete them, restore from the
    archive (timed), delete them again (``tickarchive.store.warm.WarmStore``: source and sink)."""
    from tickarchive.store.warm import WarmStore

    month = Month(2099, 1)
    out = []
    with tempfile.TemporaryDirectory(prefix="tickarchive-bench-", dir=work_dir) as tmp, WarmStore.open(dsn) as sink:
        target = LocalTarget(Path(tmp) / "lake")
        source = sink
        for name in tables:
            table = table_named(name)
            data = synthetic.GENERATORS[name](rows, month, seed=seed, span_days=3.0)
            sink.delete_month(table, month)
            t0 = time.perf_counter()
            for batch in data.to_batches(max_chunksize=50_000):
                sink.insert(table, batch)
            t1 = time.perf_counter()
            result = export_month(source, target, table, month, options)
            t2 = time.perf_counter()
            sink.delete_month(table, month)
            t3 = time.perf_counter()
            restore_month(target, sink, table, month)
            t4 = time.perf_counter()
            sink.delete_month(table, month)
            m = result.manifest
            out.append(WarmBenchRow(name, m.total_rows, m.total_bytes, t1 - t0, t2 - t1, t4 - t3))
    return out
