"""PNG plots of the report (matplotlib's object API: no pyplot, no global state).

Every figure is sized for a person (at most 1000 × 900 px) whatever the number of
instruments: the coverage heatmap has one row per expiry, the completeness chart lists the
instruments that miss trades (the worst ``MAX_BARS``), the gap timeline groups lanes per
kind when there are many. Hours the collector did not run (or that have not happened yet)
are drawn grey, "not collected", never as missing data.

Each function returns a ``FigureInfo`` with the PNG's size and where its axes lie in it
(pixels from the top left), so the HTML can say how to read a cell (``data-*``) and a test
can check the picture against the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from tickarchive.ops.quality.model import US_PER_DAY, US_PER_HOUR, QualityReport, day_start_us, iso_us

COVERAGE_PNG = "coverage.png"
GAPS_PNG = "gaps.png"
COMPLETENESS_PNG = "completeness.png"
VOLUME_PNG = "volume.png"

DPI = 100
WIDTH_IN = 10.0
MAX_HEIGHT_IN = 9.0
MAX_BARS = 30
"""Instruments listed in the completeness chart (the worst first); the table lists all."""
MAX_LANES = 25
"""Gap lanes drawn one per (kind, instrument); beyond that, one per kind."""

NOT_COLLECTED = "#d9d9d9"
NOT_LISTED = "#ffffff"
NO_QUOTES = "#d62728"
CMAP = "viridis"
GAP_COLORS = {"open": "#d62728", "resolved": "#ff7f0e", "backfilled": "#2ca02c", "unrecoverable": "#7f7f7f"}


@dataclass(frozen=True, slots=True)
class FigureInfo:
    """A written PNG: its size, and its data axes in pixels from the top left."""

    name: str
    width_px: int
    height_px: int
    axes_px: tuple[int, int, int, int] | None
    """(left, top, right, bottom) of the axes the data is drawn in; None: a text-only figure"""
    rows: int = 0
    cols: int = 0


def _height(rows: int, per_row_in: float = 0.3, base_in: float = 1.8) -> float:
    return min(MAX_HEIGHT_IN, max(2.6, base_in + per_row_in * max(rows, 1)))


def _save(fig: Figure, ax: Axes | None, path: Path, rows: int = 0, cols: int = 0) -> FigureInfo:
    fig.savefig(path, dpi=DPI)
    width, height = round(fig.bbox.width), round(fig.bbox.height)
    box = None
    if ax is not None:
        b = ax.get_window_extent()
        box = (round(b.x0), round(height - b.y1), round(b.x1), round(height - b.y0))
    return FigureInfo(path.name, width, height, box, rows, cols)


def _text_only(path: Path, text: str) -> FigureInfo:
    fig = Figure(figsize=(WIDTH_IN, 1.4), dpi=DPI, layout="constrained")
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, wrap=True)
    return _save(fig, None, path)


def coverage_png(report: QualityReport, path: Path) -> FigureInfo:
    cov = report.coverage
    groups = cov.groups()
    if not groups:
        hours = cov.collected_hours
        return _text_only(path, f"no quotes on {report.day} ({hours} of 24 hours collected)")
    cmap = colormaps[CMAP]
    grey, red, white = np.array(to_rgb(NOT_COLLECTED)), np.array(to_rgb(NO_QUOTES)), np.array(to_rgb(NOT_LISTED))
    image = np.zeros((len(groups), 24, 3))
    for i, g in enumerate(groups):
        for h in range(24):
            if not cov.collected[h]:
                image[i, h] = grey
            elif g.live(h) == 0:
                image[i, h] = white
            elif g.quoted[h] == 0:
                image[i, h] = red
            else:
                image[i, h] = cmap(g.pct(h) / 100.0)[:3]
    fig = Figure(figsize=(WIDTH_IN, _height(len(groups))), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.imshow(image, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)], fontsize=8)
    ax.set_xlabel("hour of the day (UTC)")
    font = 8 if len(groups) <= 40 else 6
    ax.set_yticks(range(len(groups)), [f"{g.group} ({g.instruments})" for g in groups], fontsize=font)
    ax.set_ylabel("expiry (instruments)", fontsize=9)
    ax.set_title(f"{report.day}: share of each expiry's listed instruments quoted, per hour")
    fig.colorbar(ScalarMappable(Normalize(0, 100), cmap), ax=ax, label="% quoted")
    fig.legend(
        handles=[Patch(color=NOT_COLLECTED, label="not collected (collector not running, or not yet)"),
                 Patch(facecolor=NOT_LISTED, edgecolor="#7f7f7f", label="not listed (before listing, after expiry)"),
                 Patch(color=NO_QUOTES, label="collected, no quote at all")],
        loc="outside lower center", ncols=3, fontsize=8, frameon=False,
    )
    return _save(fig, ax, path, rows=len(groups), cols=24)


def _uncollected(ax: Axes, report: QualityReport) -> None:
    for h, collected in enumerate(report.coverage.collected):
        if not collected:
            ax.axvspan(h, h + 1, color=NOT_COLLECTED, zorder=0, linewidth=0)


def gaps_png(report: QualityReport, path: Path) -> FigureInfo:
    spans = report.gaps
    if not spans:
        hours = report.coverage.collected_hours
        return _text_only(path, f"no gaps recorded on {report.day} ({hours} of 24 hours collected)")

    def lane_of(kind: str, instrument: str, connection: str) -> str:
        return f"{kind}: whole connection {connection}" if instrument == "*" else f"{kind}: {instrument}"

    exact = sorted({lane_of(s.gap.kind, s.gap.instrument, s.gap.connection) for s in spans})
    grouped = len(exact) > MAX_LANES
    if grouped:
        members: dict[str, set[str]] = {}
        for s in spans:
            members.setdefault(s.gap.kind, set()).add(s.gap.instrument)
        lanes = sorted(members)
        labels = [f"{k} ({len(members[k])} instruments)" for k in lanes]
    else:
        lanes = exact
        labels = exact
    index = {lane: i for i, lane in enumerate(lanes)}
    fig = Figure(figsize=(WIDTH_IN, _height(len(lanes))), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    _uncollected(ax, report)
    start = day_start_us(report.day)
    for s in spans:
        lane = s.gap.kind if grouped else lane_of(s.gap.kind, s.gap.instrument, s.gap.connection)
        x0 = (s.start_us - start) / US_PER_HOUR
        width = max((s.end_us - s.start_us) / US_PER_HOUR, 0.05)  # a 1-s gap stays visible
        ax.broken_barh([(x0, width)], (index[lane] - 0.35, 0.7), color=GAP_COLORS.get(s.gap.status, "#1f77b4"))
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 2), [f"{h:02d}" for h in range(0, 25, 2)], fontsize=8)
    ax.set_xlabel("hour of the day (UTC)")
    ax.set_yticks(range(len(lanes)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.invert_yaxis()
    ax.set_title(f"{report.day}: gaps ({len(spans)}) by kind and instrument")
    fig.legend(
        handles=[*(Patch(color=c, label=k) for k, c in GAP_COLORS.items()),
                 Patch(color=NOT_COLLECTED, label="not collected")],
        loc="outside lower center", ncols=5, fontsize=8, frameon=False,
    )
    return _save(fig, ax, path, rows=len(lanes), cols=24)


def completeness_png(report: QualityReport, path: Path) -> FigureInfo:
    rows = report.completeness
    if not rows:
        return _text_only(path, f"no trades on {report.day}")
    missing = sorted((c for c in rows if c.missing), key=lambda c: (-c.missing, c.instrument))
    if not missing:
        trades = sum(c.trades for c in rows)
        return _text_only(
            path, f"all {len(rows)} instruments that traded are complete: {trades:,} trades, no trade_seq missing"
        )
    shown = missing[:MAX_BARS]
    fig = Figure(figsize=(WIDTH_IN, _height(len(shown), 0.28)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(shown)), [c.missing for c in shown], color=NO_QUOTES)
    ax.set_yticks(range(len(shown)), [f"{c.instrument} ({c.distinct_seq} of {c.expected})" for c in shown],
                  fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trade_seq numbers missing between the day's first and last trade")
    more = f", the worst {len(shown)} shown" if len(missing) > len(shown) else ""
    ax.set_title(f"{report.day}: {len(missing)} of {len(rows)} instruments miss trades{more}")
    return _save(fig, ax, path, rows=len(shown), cols=1)


def volume_png(report: QualityReport, path: Path) -> FigureInfo:
    compared = [v for v in report.volume if v.status in ("ok", "mismatch")]
    if not compared:
        partial = report.volume_count("partial_window")
        start = report.collection_start_us
        if start is None:
            return _text_only(path, "volume: nothing to compare (no quote with a 24 h volume)")
        began = iso_us(start)[:16].replace("T", " ")
        full = iso_us(start + US_PER_DAY)[:16].replace("T", " ")
        return _text_only(
            path,
            f"volume: none of {partial} instruments comparable: each one's 24 h window (before its last quote) "
            f"touches hours not collected;\ncollection found from {began} UTC on; a window is whole at the "
            f"earliest at {full} UTC, if collection does not stop",
        )
    fig = Figure(figsize=(7, 6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    x = [v.exchange_24h or 0.0 for v in compared]
    y = [v.traded for v in compared]
    ax.scatter(x, y, s=14, c=["#2ca02c" if v.status == "ok" else NO_QUOTES for v in compared])
    top = max(max(x), max(y), 1e-9) * 1.05
    ax.plot([0, top], [0, top], color="#7f7f7f", linewidth=0.8)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("exchange volume_24h at the instrument's last quote of the day")
    ax.set_ylabel("trades stored in that same 24 h window (sum of amount)")
    mismatches = report.volume_count("mismatch")
    ax.set_title(f"volume: {len(compared)} instruments compared, {mismatches} off by more than "
                 f"{report.volume_tolerance_pct:g} %", fontsize=10)
    return _save(fig, ax, path)


def render_all(report: QualityReport, out_dir: Path) -> dict[str, FigureInfo]:
    """Write every plot into ``out_dir``; PNG name -> what was written."""
    infos = {}
    for name, fn in (
        (COVERAGE_PNG, coverage_png), (GAPS_PNG, gaps_png), (COMPLETENESS_PNG, completeness_png),
        (VOLUME_PNG, volume_png),
    ):
        infos[name] = fn(report, out_dir / name)
    return infos
