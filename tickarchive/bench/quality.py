"""``tickarchive bench quality``: rows/s of the report's pure scanners on synthetic rows."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tickarchive.ops.quality.model import US_PER_DAY, QuoteRow, TradeRow
from tickarchive.ops.quality.scan import QuoteScanner, TradeScanner

T0 = 1_795_132_800_000_000  # 2026-11-20T00:00:00Z


@dataclass(frozen=True, slots=True)
class ScanFigures:
    quotes: int
    trades: int
    quotes_per_s: float
    trades_per_s: float


def run(quotes: int, trades: int, instruments: int = 800) -> ScanFigures:
    step_q = US_PER_DAY // max(quotes, 1)
    qrows = [
        QuoteRow(T0 + i * step_q, T0 + i * step_q + 5_000, f"ETH-I{i % instruments}", 0.05, 1.0, 0.06, 2.0, 10.0)
        for i in range(quotes)
    ]
    step_t = US_PER_DAY // max(trades, 1)
    trows = [
        TradeRow(T0 + i * step_t, T0 + i * step_t + 5_000, f"ETH-I{i % instruments}", f"ETH-{i}", i // instruments,
                 0.05, 1.0)
        for i in range(trades)
    ]
    qrows.reverse()  # the scanners take descending ts, as the stores are read
    trows.reverse()
    qs = QuoteScanner(T0)
    t0 = time.perf_counter()
    qs.feed(qrows)
    t1 = time.perf_counter()
    ts = TradeScanner()
    ts.feed(trows)
    t2 = time.perf_counter()
    return ScanFigures(quotes, trades, quotes / (t1 - t0), trades / (t2 - t1))
