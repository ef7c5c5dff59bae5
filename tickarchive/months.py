"""Calendar months in UTC (the unit of the warm store's retention and of the archive).

Pure values, shared by the stores and the archive: ``Month(2026, 11)``, ``Month.parse("2026-11")``,
``start_us``/``end_us`` (µs since the epoch, end exclusive).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from tickarchive.errors import InvalidValue

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1970 <= self.year <= 9999:
            raise InvalidValue(f"invalid month {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Month:
        m = _MONTH_RE.match(text.strip())
        if m is None or not 1 <= int(m.group(2)) <= 12:
            raise InvalidValue(f"invalid month {text!r}: expected YYYY-MM, e.g. 2026-11")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def of_us(cls, ts_us: int) -> Month:
        return cls.of((_EPOCH + dt.timedelta(microseconds=ts_us)).date())

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def plus(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def start_us(self) -> int:
        """First microsecond of the month (inclusive), since the epoch."""
        return _us(self.first_day)

    @property
    def end_us(self) -> int:
        """First microsecond of the next month (exclusive)."""
        return self.plus(1).start_us


def _us(day: dt.date) -> int:
    delta = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000


def day_start_us(day: dt.date) -> int:
    """First microsecond of ``day`` (UTC), since the epoch."""
    return _us(day)
