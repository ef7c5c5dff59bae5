"""PNG of a load run: rate and latency per second."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from loadtest.harness import Sample


def plot_samples(samples: Sequence[Sample], dest: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    ax1.plot(t, [s.sim_frames_per_s for s in samples], label="simulator frames/s", lw=0.8)
    ax1.plot(t, [s.stored_rows_per_s for s in samples], label="rows acknowledged by QuestDB/s", lw=0.8)
    ax1.set_ylabel("per second")
    ax1.legend(loc="lower right")
    ax1.grid(alpha=0.3)
    ax2.plot(t, [s.p50_ms for s in samples], label="p50 ack latency (ms)", lw=0.8)
    ax2.plot(t, [s.p95_ms for s in samples], label="p95 ack latency (ms)", lw=0.8)
    ax2.set_ylabel("ms (exchange ts -> QuestDB ack)")
    ax2.set_xlabel("seconds into the run")
    ax2.legend(loc="upper right")
    ax2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    plt.close(fig)
