"""PNG plots of the report (matplotlib's object API: no pyplot, no global state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from tickarchive.ops.quality.model import US_PER_HOUR, QualityReport, day_start_us

COVERAGE_PNG = "coverage.png"
GAPS_PNG = "gaps.png"
COMPLETENESS_PNG = "completeness.png"
VOLUME_PNG = "volume.png"

_MAX_LABELLED = 80
"""Above this many rows a plot's instrument names are not printed (they would overlap)."""


def _height(rows: int) -> float:
    return min(40.0, 1.8 + 0.18 * max(rows, 1))


def _empty(fig: Figure, text: str) -> None:
    ax = fig.subplots()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def coverage_png(report: QualityReport, path: Path) -> None:
    cov = report.coverage
    fig = Figure(figsize=(11, _height(len(cov.instruments))), dpi=90, layout="constrained")
    if not cov.instruments:
        _empty(fig, "no quotes this day")
    else:
        matrix = np.asarray(cov.counts, dtype=float)
        masked = np.ma.masked_less_equal(matrix, 0)
        ax = fig.subplots()
        image = ax.imshow(
            masked, aspect="auto", interpolation="nearest", cmap="viridis",
            norm=LogNorm(vmin=1, vmax=max(1.0, float(matrix.max()))),
        )
        ax.set_facecolor("#d62728")  # an hour without a single quote shows red
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)], fontsize=7)
        ax.set_xlabel("hour (UTC)")
        if len(cov.instruments) <= _MAX_LABELLED:
            ax.set_yticks(range(len(cov.instruments)), cov.instruments, fontsize=6)
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(cov.instruments)} instruments (sorted by name)")
        ax.set_title(f"quotes per instrument and hour, {report.day} (red: none)")
        fig.colorbar(image, ax=ax, label="quotes")
    fig.savefig(path)


def gaps_png(report: QualityReport, path: Path) -> None:
    spans = report.gaps
    lanes = sorted({(s.gap.kind, s.gap.instrument) for s in spans})
    fig = Figure(figsize=(11, _height(len(lanes))), dpi=90, layout="constrained")
    if not spans:
        _empty(fig, "no gaps recorded this day")
    else:
        ax = fig.subplots()
        index = {lane: i for i, lane in enumerate(lanes)}
        start = day_start_us(report.day)
        colors = {"open": "#d62728", "resolved": "#ff7f0e", "backfilled": "#2ca02c", "unrecoverable": "#7f7f7f"}
        for s in spans:
            x0 = (s.start_us - start) / US_PER_HOUR
            width = max((s.end_us - s.start_us) / US_PER_HOUR, 0.05)  # a 1-s gap stays visible
            ax.broken_barh([(x0, width)], (index[(s.gap.kind, s.gap.instrument)] - 0.4, 0.8),
                           color=colors.get(s.gap.status, "#1f77b4"))
        ax.set_xlim(0, 24)
        ax.set_xticks(range(0, 25, 2))
        ax.set_xlabel("hour (UTC)")
        if len(lanes) <= _MAX_LABELLED:
            ax.set_yticks(range(len(lanes)), [f"{k}: {i}" for k, i in lanes], fontsize=6)
        ax.set_ylim(-0.6, len(lanes) - 0.4)
        ax.invert_yaxis()
        ax.set_title("gaps (red open, orange resolved, green backfilled, grey unrecoverable)")
    fig.savefig(path)


def completeness_png(report: QualityReport, path: Path) -> None:
    rows = report.completeness
    fig = Figure(figsize=(11, _height(len(rows))), dpi=90, layout="constrained")
    if not rows:
        _empty(fig, "no trades this day")
    else:
        ax = fig.subplots()
        pct = [c.pct for c in rows]
        ax.barh(range(len(rows)), pct, color=["#2ca02c" if p >= 100.0 else "#d62728" for p in pct])
        ax.set_xlim(min(90.0, min(pct) - 1.0), 100.5)
        if len(rows) <= _MAX_LABELLED:
            ax.set_yticks(range(len(rows)), [c.instrument for c in rows], fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("trade_seq completeness, % (distinct seq / (last - first + 1))")
        ax.set_title("trade completeness per instrument")
    fig.savefig(path)


def volume_png(report: QualityReport, path: Path) -> None:
    rows = [v for v in report.volume if v.exchange_24h is not None]
    fig = Figure(figsize=(7, 6), dpi=90, layout="constrained")
    if not rows:
        _empty(fig, "no instrument with both trades and 24 h statistics")
    else:
        ax = fig.subplots()
        x = [v.exchange_24h or 0.0 for v in rows]
        y = [v.traded for v in rows]
        ax.scatter(x, y, s=12, c=["#2ca02c" if v.status == "ok" else "#d62728" for v in rows])
        top = max(max(x), max(y), 1e-9) * 1.05
        ax.plot([0, top], [0, top], color="#7f7f7f", linewidth=0.8)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("exchange volume_24h at the last quote of the day")
        ax.set_ylabel("sum of trade amounts of the day")
        ax.set_title(f"volume reconciliation (red: off by more than {report.volume_tolerance_pct:g} %)")
    fig.savefig(path)


def render_all(report: QualityReport, out_dir: Path) -> list[Path]:
    """Write every plot into ``out_dir``; the paths written."""
    paths = []
    for name, fn in (
        (COVERAGE_PNG, coverage_png), (GAPS_PNG, gaps_png), (COMPLETENESS_PNG, completeness_png),
        (VOLUME_PNG, volume_png),
    ):
        path = out_dir / name
        fn(report, path)
        paths.append(path)
    return paths
