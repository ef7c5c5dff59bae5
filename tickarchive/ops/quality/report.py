"""Assemble and write the daily quality report."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tickarchive.ops.quality import plots
from tickarchive.ops.quality.errors import DayError, QualityError
from tickarchive.ops.quality.html import render_html
from tickarchive.ops.quality.model import US_PER_DAY, GapRow, QualityReport, QuoteRow, TradeRow, day_start_us
from tickarchive.ops.quality.scan import QuoteScanner, TradeScanner, clip_gaps, reconcile_volume

DEFAULT_VOLUME_TOLERANCE_PCT = 5.0


class Source(Protocol):
    @property
    def label(self) -> str: ...

    def quotes(self, day: dt.date) -> Any: ...  # Iterable[QuoteRow]

    def trades(self, day: dt.date) -> Any: ...  # Iterable[TradeRow]

    def gaps(self, day: dt.date) -> list[GapRow]: ...


def parse_day(text: str, today: dt.date | None = None) -> dt.date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (UTC)."""
    today = today or dt.datetime.now(dt.UTC).date()
    if text == "today":
        return today
    if text == "yesterday":
        return today - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DayError(f"--day {text!r}: expected YYYY-MM-DD, today or yesterday") from None


def build_report(
    source: Source, day: dt.date, *, now_us: int | None = None,
    volume_tolerance_pct: float = DEFAULT_VOLUME_TOLERANCE_PCT,
) -> QualityReport:
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    start = day_start_us(day)
    quotes = QuoteScanner(start)
    for q in source.quotes(day):
        quotes.add(q if isinstance(q, QuoteRow) else QuoteRow(*q))
    trades = TradeScanner()
    for t in source.trades(day):
        trades.add(t if isinstance(t, TradeRow) else TradeRow(*t))
    gaps = clip_gaps(source.gaps(day), start, start + US_PER_DAY, now_us)
    return QualityReport(
        day=day,
        source=source.label,
        generated_us=now_us,
        quote_rows=quotes.rows,
        trade_rows=trades.rows,
        coverage=quotes.coverage(),
        gaps=tuple(gaps),
        completeness=tuple(trades.completeness()),
        volume=tuple(reconcile_volume(trades.traded(), quotes.last_volume(), volume_tolerance_pct)),
        checks=tuple(quotes.checks() + trades.checks()),
        volume_tolerance_pct=volume_tolerance_pct,
    )


def report_json(report: QualityReport) -> dict[str, Any]:
    """Every figure of the report, for machines (``report.json``)."""
    r = report
    return {
        "day": r.day.isoformat(),
        "source": r.source,
        "quote_rows": r.quote_rows,
        "trade_rows": r.trade_rows,
        "coverage": {
            "instruments": list(r.coverage.instruments),
            "counts": [list(row) for row in r.coverage.counts],
            "cells_with_data_pct": r.coverage.cells_with_data_pct,
        },
        "trade_completeness_pct": r.trade_completeness_pct,
        "completeness": [
            {"instrument": c.instrument, "trades": c.trades, "first_seq": c.first_seq, "last_seq": c.last_seq,
             "missing": c.missing, "pct": c.pct}
            for c in r.completeness
        ],
        "volume": [
            {"instrument": v.instrument, "traded": v.traded, "exchange_24h": v.exchange_24h, "status": v.status,
             "diff_pct": v.diff_pct}
            for v in r.volume
        ],
        "gaps": [
            {"kind": s.gap.kind, "instrument": s.gap.instrument, "status": s.gap.status, "seconds": s.seconds,
             "open": s.open}
            for s in r.gaps
        ],
        "checks": {c.name: c.count for c in r.checks},
    }


@dataclass(frozen=True, slots=True)
class ReportFiles:
    directory: Path
    html: Path
    json: Path
    pngs: tuple[Path, ...]


def write_report(report: QualityReport, out: Path) -> ReportFiles:
    """Write ``out/<day>/index.html``, its PNGs and ``report.json``; overwrite a previous run."""
    directory = out / report.day.isoformat()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        pngs = plots.render_all(report, directory)
        html = directory / "index.html"
        html.write_text(render_html(report), encoding="utf-8")
        data = directory / "report.json"
        data.write_text(json.dumps(report_json(report), indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise QualityError(f"cannot write the report into {directory}: {exc}") from None
    return ReportFiles(directory, html, data, tuple(pngs))
