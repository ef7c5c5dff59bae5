"""Rows the report reads and the figures it produces (plain frozen values)."""

from __future__ import annotations

import datetime as dt
import re
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
    source: str = "ws"
    """``ws`` (received live) or ``backfill`` (fetched from the history API after a gap)."""


class WindowTrade(NamedTuple):
    """A trade of the exchange's 24 h statistics window that precedes the day."""

    ts_us: int
    instrument: str
    trade_id: str
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


_OPTION = re.compile(r"^(.+)-[0-9][0-9d.]*-[CP]$")


def group_of(instrument: str) -> str:
    """The heatmap row of an instrument: an option's expiry (``ETH-27DEC26-4000-C`` ->
    ``ETH-27DEC26``), anything else itself."""
    m = _OPTION.match(instrument)
    return m.group(1) if m else instrument


@dataclass(frozen=True, slots=True)
class GroupCoverage:
    """One heatmap row: the instruments of one expiry, per UTC hour."""

    group: str
    instruments: int
    quoted: tuple[int, ...]
    """``quoted[h]``: how many of the group's instruments had a quote in hour ``h``."""
    listed: tuple[int, ...] = ()
    """``listed[h]``: how many of them were listed (not yet expired) during hour ``h``;
    empty = all of them, every hour"""

    def live(self, hour: int) -> int:
        return self.listed[hour] if self.listed else self.instruments

    def pct(self, hour: int) -> float:
        live = self.live(hour)
        return 100.0 * self.quoted[hour] / live if live else 0.0


Lifetime = tuple[int | None, int | None]
"""(listed at, expires at) in µs; None = before / after the day"""


def listed_hours(day_start_us: int, lifetime: Lifetime | None) -> tuple[bool, ...]:
    """Per UTC hour of the day: was the instrument listed (and not yet expired) the whole
    hour. In the hour of its listing or expiry it is due a quote only if it has one."""
    if lifetime is None:
        return (True,) * 24
    created, expires = lifetime
    return tuple(
        (created is None or created <= day_start_us + h * US_PER_HOUR)
        and (expires is None or expires >= day_start_us + (h + 1) * US_PER_HOUR)
        for h in range(24)
    )


@dataclass(frozen=True, slots=True)
class Coverage:
    """Quotes per instrument and UTC hour of the day (the heatmap), and which hours were
    collected at all."""

    instruments: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    """``counts[i][h]``: quotes of ``instruments[i]`` with ts in hour ``h`` (24 columns)."""
    collected: tuple[bool, ...] = (True,) * 24
    """``collected[h]``: the collector ran during hour ``h`` (a heartbeat or any row in it)
    and the hour has begun. An hour not collected says nothing about the market."""
    listed: tuple[tuple[bool, ...], ...] = ()
    """``listed[i][h]``: ``instruments[i]`` was listed and not yet expired all through hour
    ``h`` (from the day's ``instruments`` rows: a daily option expires at 08:00, its successor
    is listed then); empty = every instrument all day. A quote cannot be missing outside it
    (in the hour of a listing or an expiry, only one that came counts)."""

    @property
    def collected_hours(self) -> int:
        return sum(self.collected)

    def _listed(self, i: int, h: int) -> bool:
        """Listed all hour ``h``, or quoted in it (the hour it was listed or expired)."""
        return not self.listed or self.listed[i][h] or self.counts[i][h] > 0

    def _due(self, i: int, h: int) -> bool:
        """Should ``instruments[i]`` have been quoted in hour ``h``: collected and listed."""
        return self.collected[h] and self._listed(i, h)

    @property
    def cells_with_data_pct(self) -> float:
        """Instrument-hours with a quote, of the instrument-hours collected while listed."""
        due = hit = 0
        for i, row in enumerate(self.counts):
            for h, c in enumerate(row):
                if self._due(i, h):
                    due += 1
                    hit += c > 0
        return 100.0 * hit / due if due else 0.0

    def groups(self) -> tuple[GroupCoverage, ...]:
        """Rows of the heatmap: per expiry (sorted by name), instruments quoted (and listed) per hour."""
        members: dict[str, list[int]] = {}
        for i, name in enumerate(self.instruments):
            members.setdefault(group_of(name), []).append(i)
        out = []
        for g, idx in sorted(members.items()):
            quoted = tuple(sum(1 for i in idx if self.counts[i][h] > 0) for h in range(24))
            listed = tuple(sum(1 for i in idx if self._listed(i, h)) for h in range(24)) if self.listed else ()
            out.append(GroupCoverage(g, len(idx), quoted, listed))
        return tuple(out)

    def silent(self) -> list[tuple[str, int]]:
        """(instrument, hours collected while it was listed without a single quote), worst first."""
        out = []
        for i, (name, row) in enumerate(zip(self.instruments, self.counts, strict=True)):
            missing = sum(1 for h, c in enumerate(row) if c == 0 and self._due(i, h))
            if missing:
                out.append((name, missing))
        out.sort(key=lambda x: (-x[1], x[0]))
        return out


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


VOLUME_STATUSES = ("ok", "mismatch", "partial_window", "no_stats")
"""``partial_window``: the exchange's 24 h window touches hours that were not collected
(before collection began, or while it was stopped), so the trades stored cannot add up to
its figure (not compared); ``no_stats``: no quote of the day carried a 24 h volume."""


@dataclass(frozen=True, slots=True)
class VolumeCheck:
    """Like with like: the exchange's 24 h volume at the instrument's last quote of the day
    (a rolling window ``(t - 24 h, t]``) against the trades stored in that same window."""

    instrument: str
    traded: float
    """sum of amount over distinct trade ids with ts in the window (the previous day's part
    included); without stats: the day's trades"""
    exchange_24h: float | None
    """volume_24h of the instrument's last quote of the day (None: no quote with stats)"""
    last_quote_us: int | None
    status: str
    """one of ``VOLUME_STATUSES``"""

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
    collection_start_us: int | None = None
    """earliest sign of collection (heartbeat or row) from 24 h before the day on; None: none"""
    backfilled_trades: int = 0
    """trades of the day fetched from the history API (counted, never flagged as late)"""

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def volume_count(self, status: str) -> int:
        return sum(1 for v in self.volume if v.status == status)

    @property
    def flagged_rows(self) -> int:
        return sum(c.count for c in self.checks)

    @property
    def trade_completeness_pct(self) -> float | None:
        expected = sum(c.expected for c in self.completeness)
        if not expected:
            return None
        return 100.0 * sum(c.distinct_seq for c in self.completeness) / expected
