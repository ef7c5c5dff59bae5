"""Assemble and write the daily quality report."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tickarchive.ops.quality import plots
from tickarchive.ops.quality.errors import DayError, QualityError
from tickarchive.ops.quality.html import render_html
from tickarchive.ops.quality.model import (
    US_PER_DAY,
    US_PER_HOUR,
    Coverage,
    GapRow,
    Lifetime,
    QualityReport,
    QuoteRow,
    TradeRow,
    WindowTrade,
    day_start_us,
    iso_us,
    listed_hours,
)
from tickarchive.ops.quality.scan import QuoteScanner, TradeScanner, clip_gaps, reconcile_volume, window_traded

DEFAULT_VOLUME_TOLERANCE_PCT = 5.0


class Source(Protocol):
    @property
    def label(self) -> str: ...

    def quotes(self, day: dt.date) -> Any: ...  # Iterable[QuoteRow]

    def trades(self, day: dt.date) -> Any: ...  # Iterable[TradeRow]

    def gaps(self, day: dt.date) -> list[GapRow]: ...

    def window_trades(self, day: dt.date) -> Iterable[WindowTrade]: ...

    def heartbeat_hours(self, day: dt.date) -> set[int]: ...

    def first_collected_us(self, since_us: int) -> int | None: ...

    def lifetimes(self, day: dt.date) -> dict[str, Lifetime]: ...


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
    day_trades = trades.distinct()
    coverage = quotes.coverage()
    # an hour was collected when the collector ran in it (a heartbeat) or any row of it was
    # stored, and it has begun; other hours say nothing about the market
    seen = set(source.heartbeat_hours(day))
    seen |= {h for row in coverage.counts for h, c in enumerate(row) if c}
    seen |= {min(23, (t.ts_us - start) // US_PER_HOUR) for t in day_trades}
    collected = tuple(h in seen and start + h * US_PER_HOUR < now_us for h in range(24))
    lifetimes = source.lifetimes(day)
    listed = tuple(listed_hours(start, lifetimes.get(name)) for name in coverage.instruments) if lifetimes else ()
    coverage = Coverage(coverage.instruments, coverage.counts, collected, listed)
    collection_start = source.first_collected_us(start - US_PER_DAY)
    last_volume = quotes.last_volume()
    earlier = list(source.window_trades(day))
    in_window = window_traded(day_trades, earlier, last_volume)
    # hours (since the epoch) known collected: the day's, and the day before's (heartbeats, trades)
    first_hour = start // US_PER_HOUR
    hours = {first_hour + h for h in range(24) if collected[h]}
    hours |= {first_hour - 24 + h for h in source.heartbeat_hours(day - dt.timedelta(days=1))}
    hours |= {t.ts_us // US_PER_HOUR for t in earlier}
    volume = reconcile_volume(in_window, trades.traded(), last_volume, volume_tolerance_pct, hours)
    return QualityReport(
        day=day,
        source=source.label,
        generated_us=now_us,
        quote_rows=quotes.rows,
        trade_rows=trades.rows,
        coverage=coverage,
        gaps=tuple(gaps),
        completeness=tuple(trades.completeness()),
        volume=tuple(volume),
        checks=tuple(quotes.checks() + trades.checks()),
        volume_tolerance_pct=volume_tolerance_pct,
        collection_start_us=collection_start,
        backfilled_trades=trades.backfilled,
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
            "collected": list(r.coverage.collected),
            "cells_with_data_pct": r.coverage.cells_with_data_pct,
            "groups": [{"group": g.group, "instruments": g.instruments, "quoted": list(g.quoted)}
                       for g in r.coverage.groups()],
        },
        "collection_start": None if r.collection_start_us is None else iso_us(r.collection_start_us),
        "backfilled_trades": r.backfilled_trades,
        "trade_completeness_pct": r.trade_completeness_pct,
        "completeness": [
            {"instrument": c.instrument, "trades": c.trades, "first_seq": c.first_seq, "last_seq": c.last_seq,
             "missing": c.missing, "pct": c.pct}
            for c in r.completeness
        ],
        "volume": [
            {"instrument": v.instrument, "traded_in_window": v.traded, "exchange_24h": v.exchange_24h,
             "status": v.status, "diff_pct": v.diff_pct}
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
        figures = plots.render_all(report, directory)
        pngs = [directory / name for name in figures]
        html = directory / "index.html"
        html.write_text(render_html(report, figures), encoding="utf-8")
        data = directory / "report.json"
        data.write_text(json.dumps(report_json(report), indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise QualityError(f"cannot write the report into {directory}: {exc}") from None
    return ReportFiles(directory, html, data, tuple(pngs))
