"""The tier router: which store holds each UTC day of a table (pure planning + lookup).

Rules, per day D of a table:

* D is **hot** (QuestDB) unless the rollover ledger (warm ``rollover_ledger``) records D
  for the table with status ``verified`` or ``dropped``;
* a rolled-over D is **warm** while the warm store still holds rows of D's month;
* a rolled-over D whose month the warm store no longer holds but whose month has an
  archive manifest is **cold** (Parquet via the local cache).

Each day is read from exactly one tier, so a result never mixes two copies of a row;
consecutive days of one tier form one segment, queried with one statement. A day being
rolled over is read from QuestDB until the ledger says verified, then from the warm
store: both hold identical rows at that moment, so the switch is invisible.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass

from tickarchive.api.timefmt import US_PER_DAY, day_of, day_start_us
from tickarchive.months import Month


class Tier(enum.StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


@dataclass(frozen=True, slots=True)
class Segment:
    tier: Tier
    lo_us: int
    hi_us: int


def days(lo_us: int, hi_us: int) -> list[dt.date]:
    """UTC days overlapping [lo, hi) (hi exclusive; at least lo's day)."""
    first, last = day_of(lo_us), day_of(max(lo_us, hi_us - 1))
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def plan(
    lo_us: int,
    hi_us: int,
    rolled: set[dt.date],
    warm_has_month: Callable[[Month], bool],
    cold_has_month: Callable[[Month], bool],
) -> list[Segment]:
    """Segments covering [lo, hi) in time order, each with the tier to read it from."""
    out: list[Segment] = []
    month_tier: dict[Month, Tier] = {}
    for day in days(lo_us, hi_us):
        if day not in rolled:
            tier = Tier.HOT
        else:
            month = Month.of(day)
            if month not in month_tier:
                if warm_has_month(month) or not cold_has_month(month):
                    month_tier[month] = Tier.WARM
                else:
                    month_tier[month] = Tier.COLD
            tier = month_tier[month]
        lo = max(lo_us, day_start_us(day))
        hi = min(hi_us, day_start_us(day) + US_PER_DAY)
        if out and out[-1].tier is tier and out[-1].hi_us == lo:
            out[-1] = Segment(tier, out[-1].lo_us, hi)
        else:
            out.append(Segment(tier, lo, hi))
    return out
