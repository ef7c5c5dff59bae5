"""Times in and out of the API (pure).

In: ISO-8601 (``2026-10-01``, ``2026-10-01T12:00:00Z``, ``...+02:00``; naive = UTC) or an
integer epoch in seconds, milliseconds or microseconds (told apart by magnitude). Out:
integer microseconds since the epoch, the form every tier query uses.
"""

from __future__ import annotations

import datetime as dt
import re

from tickarchive.api.errors import InvalidRequest

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
MIN_US = int((dt.datetime(2000, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds()) * US_PER_S
MAX_US = int((dt.datetime(2100, 1, 1, tzinfo=dt.UTC) - EPOCH).total_seconds()) * US_PER_S


def to_dt(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def dt_to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def day_of(us: int) -> dt.date:
    return to_dt(us).date()


def day_start_us(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * US_PER_DAY


_EPOCH_NUMBER = re.compile(r"-?[0-9]{1,19}")


def parse_time(name: str, text: str) -> int:
    """``text`` as µs since the epoch, or ``InvalidRequest`` naming parameter ``name``."""
    raw = text.strip()
    if not raw:
        raise InvalidRequest(f"parameter {name!r}: empty time")
    if _EPOCH_NUMBER.fullmatch(raw):  # ASCII digits only: str.isdigit() accepts '²', int() does not
        n = int(raw)
        if abs(n) < 10**11:
            us = n * US_PER_S
        elif abs(n) < 10**14:
            us = n * 1000
        else:
            us = n
    else:
        try:
            value = dt.datetime.fromisoformat(raw.replace("z", "Z"))
        except ValueError:
            raise InvalidRequest(
                f"parameter {name!r}: {text!r} is not a time; use ISO-8601 (2026-10-01T12:00:00Z) "
                "or epoch seconds/milliseconds/microseconds"
            ) from None
        us = dt_to_us(value)
    if not MIN_US <= us < MAX_US:
        raise InvalidRequest(f"parameter {name!r}: {text!r} is outside 2000-01-01 .. 2100-01-01")
    return us


def parse_day(name: str, text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"parameter {name!r}: {text!r} is not a date (YYYY-MM-DD)") from None
    if not dt.date(2000, 1, 1) <= day < dt.date(2100, 1, 1):
        raise InvalidRequest(f"parameter {name!r}: {text!r} is outside 2000-01-01 .. 2100-01-01")
    return day


def iso(us: int) -> str:
    return to_dt(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
