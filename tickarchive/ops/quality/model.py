"""Rows the report reads and the figures it produces (plain frozen values)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR


class QuoteRow(NamedTuple):
    ts_us: int
    recv_us: int
    instrument: str
    bid_price: float | None
    bid_amount: float | None
    ask_price: float | None
    ask_amount: float | None
    volume_24h: float | None


class TradeRow(NamedTuple):
    ts_us: int
    recv_us: int
    instrument: str
    trade_id: str
    trade_seq: int
    price: float
    amount: float


class GapRow(NamedTuple):
    start_us: int
    end_us: int | None
    instrument: str
    kind: str
    cause: str
    connection: str
    status: str


def day_start_us(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * US_PER_DAY


def iso_us(ts_us: int) -> str:
    """``2026-11-20T13:05:01.250000Z``."""
    t = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ts_us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Flag:
    """One row a check flagged (the row stays in the store; the report only points at it)."""

    table: str
    instrument: str
    ts_us: int
    recv_us: int
    detail: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    description: str
    count: int
    """How many rows the check flagged (exact)."""
    examples: tuple[Flag, ...]
    """Flagged rows (the newest ``MAX_EXAMPLES`` by ts), sorted by ts."""


@dataclass(frozen=True, slots=True)
class Coverage:
    """Quotes per instrument and UTC hour of the day (the heatmap)."""

    instruments: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    """``counts[i][h]``: quotes of ``instruments[i]`` with ts in hour ``h`` (24 columns)."""

    @property
    def cells_with_data_pct(self) -> float:
        cells = len(self.instruments) * 24
        if not cells:
            return 0.0
        return 100.0 * sum(1 for row in self.counts for c in row if c > 0) / cells


@dataclass(frozen=True, slots=True)
class Completeness:
    """Trade completeness of one instrument from its trade_seq numbers within the day."""

    instrument: str
    trades: int
    distinct_seq: int
    first_seq: int
    last_seq: int

    @property
    def expected(self) -> int:
        return self.last_seq - self.first_seq + 1

    @property
    def missing(self) -> int:
        return self.expected - self.distinct_seq

    @property
    def pct(self) -> float:
        return 100.0 * self.distinct_seq / self.expected


@dataclass(frozen=True, slots=True)
class VolumeCheck:
    """The day's summed trade amount against the exchange's last 24 h volume of the day."""

    instrument: str
    traded: float
    """sum of amount over distinct trade ids of the day"""
    exchange_24h: float | None
    """volume_24h of the instrument's last quote of the day (None: no quote with stats)"""
    last_quote_us: int | None
    status: str
    """ok, mismatch, no_stats"""

    @property
    def diff(self) -> float | None:
        return None if self.exchange_24h is None else self.traded - self.exchange_24h

    @property
    def diff_pct(self) -> float | None:
        if self.exchange_24h is None or self.exchange_24h == 0:
            return None
        return 100.0 * (self.traded - self.exchange_24h) / self.exchange_24h


@dataclass(frozen=True, slots=True)
class GapSpan:
    """A recorded gap clipped to the day."""

    gap: GapRow
    start_us: int
    end_us: int
    open: bool

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1e6


@dataclass(frozen=True, slots=True)
class QualityReport:
    day: dt.date
    source: str
    """where the rows came from, e.g. ``hot (QuestDB)``"""
    generated_us: int
    quote_rows: int
    trade_rows: int
    coverage: Coverage
    gaps: tuple[GapSpan, ...]
    completeness: tuple[Completeness, ...]
    volume: tuple[VolumeCheck, ...]
    checks: tuple[CheckResult, ...]
    volume_tolerance_pct: float

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def flagged_rows(self) -> int:
        return sum(c.count for c in self.checks)

    @property
    def trade_completeness_pct(self) -> float | None:
        expected = sum(c.expected for c in self.completeness)
        if not expected:
            return None
        return 100.0 * sum(c.distinct_seq for c in self.completeness) / expected
