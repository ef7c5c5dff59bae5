"""The data of a load run (``loadtest.harness``): what was asked (``LoadSpec``), the
per-second samples, the result and its JSON, and the helpers that read the run's files."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tickarchive.loadtest.reconcile import Reconciliation


@dataclass(frozen=True, slots=True)
class LoadSpec:
    rate: float
    duration_s: float
    instruments: int = 800
    connections: int = 4
    chaos: tuple[str, ...] = ()
    run_dir: Path = Path(".local/loadtest/run")
    trades_per_s: float = 5.0
    seed: int = 1
    ready_timeout_s: float = 120.0
    drain_timeout_s: float = 180.0
    flush_interval_ms: int | None = None
    """The collector's ``writer.flush_interval_ms`` (None: its setting, 50 ms by default)."""
    currencies: tuple[str, ...] = ("ETH",)
    """Currencies the simulator lists and the collector collects."""
    kinds: tuple[str, ...] = ("option",)
    """Kinds the simulator lists and the collector collects (option, future, option_combo)."""


@dataclass(slots=True)
class Sample:
    t_s: float
    sim_frames_per_s: float
    stored_rows_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    collector_cpu_pct: float
    collector_rss_mb: float
    backlog_bytes: float
    sim_cpu_pct: float = 0.0
    questdb_cpu_pct: float = 0.0


@dataclass(slots=True)
class Result:
    spec: LoadSpec
    recon: Reconciliation
    write_errors: int
    rate_achieved: float
    latency_ms: dict[str, float | None]
    collector_cpu_pct: float
    collector_rss_mb: float
    duration_s: float
    sim_cpu_pct: float
    """Mean CPU of the simulator process over the load (100 = one core)."""
    questdb_cpu_pct: float
    """Mean CPU of the QuestDB JVM over the load (100 = one core)."""
    bytes_per_row: float | None
    """Bytes of the tables' partitions (``table_partitions().diskSize``) per stored row."""
    questdb_bytes: int | None
    """Everything under QuestDB's db directory (WAL segments, preallocated files included)."""
    rows_per_s: float
    reconnects: int
    malformed_frames: int
    backfilled: int
    collector_starts: int
    load_avg: tuple[float, float, float]
    gap_rows: int
    chaos_log: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    quarantined: dict[str, int] = field(default_factory=dict)
    """Items in the collector's quarantine (its index), by reason."""
    quarantined_counted: dict[str, int] = field(default_factory=dict)
    """``tickarchive_quarantined_total`` by reason, summed over the collector's runs (as
    last scraped: an item set aside just before a SIGKILL may be missing here)."""
    quarantine_unresolved: list[str] = field(default_factory=list)
    """Quarantine items whose rows the harness could not tell (bytes not kept)."""

    def as_json(self) -> dict[str, Any]:
        """Exactly the keys of the issue."""
        t = self.recon.by_table()
        return {
            "sent": {k: v.sent for k, v in t.items()},
            "stored": {k: v.stored for k, v in t.items()},
            "lost": self.recon.lost,
            "duplicates": self.recon.duplicates,
            "write_errors": self.write_errors,
            "rate_target": self.spec.rate,
            "rate_achieved": round(self.rate_achieved, 1),
            "latency_ms": self.latency_ms,
            "collector_cpu_pct": round(self.collector_cpu_pct, 1),
            "collector_rss_mb": round(self.collector_rss_mb, 1),
            "duration_s": round(self.duration_s, 1),
            "chaos": list(self.spec.chaos),
            "quarantined": dict(sorted(self.quarantined.items())),
            "quarantined_rows": {k: v.quarantined for k, v in t.items()},
        }


class RunningCounter:
    """A cumulative counter across collector restarts (a drop = a reset)."""

    def __init__(self) -> None:
        self.base = 0.0
        self.last = 0.0

    def update(self, v: float) -> float:
        if v < self.last:
            self.base += self.last
        self.last = v
        return self.base + v


def cpu_pct(p: psutil.Process | None) -> float | None:
    """CPU % of ``p`` since the previous call (100 = one core); None if it is gone."""
    if p is None:
        return None
    try:
        return float(p.cpu_percent(None))
    except psutil.Error:
        return None


def mean_after_first(xs: list[float]) -> float:
    """The mean of a per-second series without its first sample (counter warm-up)."""
    return sum(xs[1:]) / max(1, len(xs) - 1)


def to_ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1e3, 2)


def closes_before(path: Path, cutoff_us: int) -> list[int]:
    data = json.loads(path.read_text())
    recs = list(data.values()) if isinstance(data, dict) else list(data)
    return [int(c["closed_us"]) for c in recs if c.get("closed_us") and int(c["closed_us"]) < cutoff_us]


def gap_windows(path: Path) -> list[tuple[int, int | None]]:
    with open(path, newline="") as f:
        return [
            (int(row["ts_us"]), int(row["end_us"]) if row.get("end_us") else None)
            for row in csv.DictReader(f)
            if row.get("ts_us")
        ]


def frames_sent(exp: Path, t0_us: int, t1_us: int) -> int:
    import duckdb

    con = duckdb.connect()
    try:
        n = 0
        for t in ("quotes", "book_changes"):
            p = str(exp / f"{t}.parquet").replace("'", "''")
            row = con.execute(
                f"SELECT count(*) FROM read_parquet('{p}') "
                f"WHERE status = 'sent' AND wall_us BETWEEN {t0_us} AND {t1_us}"
            ).fetchone()
            n += int(row[0]) if row else 0
        return n
    finally:
        con.close()


def write_samples(path: Path, samples: list[Sample]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "t_s", "sim_frames_per_s", "stored_rows_per_s", "p50_ms", "p95_ms", "cpu_pct", "rss_mb", "backlog",
                "sim_cpu_pct", "questdb_cpu_pct",
            ]
        )
        for s in samples:
            w.writerow(
                [
                    s.t_s,
                    round(s.sim_frames_per_s, 1),
                    round(s.stored_rows_per_s, 1),
                    s.p50_ms,
                    s.p95_ms,
                    s.collector_cpu_pct,
                    round(s.collector_rss_mb, 1),
                    s.backlog_bytes,
                    s.sim_cpu_pct,
                    s.questdb_cpu_pct,
                ]
            )
