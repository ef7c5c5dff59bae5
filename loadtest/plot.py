"""PNG of a load run: rate and latency per second (``samples.csv`` of the run dir)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from tickarchive.loadtest.harness import Sample


def _rolling(xs: Sequence[float], n: int) -> list[float]:
    out: list[float] = []
    acc = 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= n:
            acc -= xs[i - n]
        out.append(acc / min(i + 1, n))
    return out


def plot_samples(samples: Sequence[Sample], dest: Path, title: str, smooth_s: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    ax1.plot(t, _rolling([s.sim_frames_per_s for s in samples], smooth_s), label="simulator frames/s sent", lw=1)
    ax1.plot(
        t, _rolling([s.stored_rows_per_s for s in samples], smooth_s), label="rows acknowledged by QuestDB/s", lw=1
    )
    ax1.set_ylabel(f"per second ({smooth_s} s mean)")
    ax1.legend(loc="lower right")
    ax1.grid(alpha=0.3)
    for attr, label in (("p50_ms", "p50"), ("p95_ms", "p95")):
        pts = [(s.t_s, getattr(s, attr)) for s in samples if getattr(s, attr) is not None]
        ax2.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, label=f"{label} ack latency of the second's batches")
    ax2.set_yscale("log")
    ax2.set_ylabel("ms, exchange ts -> QuestDB ack")
    ax2.set_xlabel("seconds into the run")
    ax2.legend(loc="upper right")
    ax2.grid(alpha=0.3, which="both")
    fig.suptitle(title)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    plt.close(fig)


def read_samples(path: Path) -> list[Sample]:
    """``samples.csv`` written by ``loadtest.harness.write_samples``."""

    def f(v: str) -> float | None:
        return float(v) if v not in ("", "None") else None

    with open(path, newline="") as fh:
        return [
            Sample(
                float(r["t_s"]), float(r["sim_frames_per_s"]), float(r["stored_rows_per_s"]), f(r["p50_ms"]),
                f(r["p95_ms"]), float(r["cpu_pct"]), float(r["rss_mb"]), float(r["backlog"]),
                float(r.get("sim_cpu_pct") or 0.0), float(r.get("questdb_cpu_pct") or 0.0),
            )
            for r in csv.DictReader(fh)
        ]
