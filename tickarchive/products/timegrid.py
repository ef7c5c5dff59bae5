"""Intervals and the instants a product is computed at (pure).

An interval is ``<n><unit>`` with unit ``ms``, ``s``, ``m``, ``h`` or ``d`` (``100ms``,
``1s``, ``1m``, ``1h``, ``1d``). Instants are the multiples of the interval since the
Unix epoch inside ``[start, end)`` (so ``1m`` falls on whole minutes and ``1d`` on UTC
midnight). "End of day" is ``1d``: the instant ``2026-10-06T00:00:00Z`` is the state at
the close of 2026-10-05.
"""

from __future__ import annotations

import re

from tickarchive.products.errors import InvalidProductRequest

US_PER_MS = 1_000
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
_UNITS = {"ms": US_PER_MS, "s": US_PER_S, "m": 60 * US_PER_S, "h": 3600 * US_PER_S, "d": US_PER_DAY}
_INTERVAL_RE = re.compile(r"^([0-9]{1,6})(ms|s|m|h|d)$")


def parse_interval(text: str, name: str = "interval", min_us: int = US_PER_MS) -> int:
    """``text`` as µs; at least ``min_us`` and at most 31 days."""
    m = _INTERVAL_RE.match(text.strip())
    if not m:
        raise InvalidProductRequest(
            f"parameter {name!r}: {text[:20]!r} is not an interval like 100ms, 1s, 1m, 1h or 1d"
        )
    us = int(m.group(1)) * _UNITS[m.group(2)]
    if us < min_us:
        raise InvalidProductRequest(f"parameter {name!r}: {text!r} is shorter than {min_us // US_PER_MS} ms")
    if us > 31 * US_PER_DAY:
        raise InvalidProductRequest(f"parameter {name!r}: {text!r} is longer than 31 days")
    return us


def first_instant(start_us: int, interval_us: int) -> int:
    """The first multiple of ``interval_us`` at or after ``start_us``."""
    return -(-start_us // interval_us) * interval_us


def count_instants(start_us: int, end_us: int, interval_us: int) -> int:
    first = first_instant(start_us, interval_us)
    return 0 if first >= end_us else (end_us - 1 - first) // interval_us + 1


def instants(start_us: int, end_us: int, interval_us: int) -> list[int]:
    """The multiples of ``interval_us`` in ``[start_us, end_us)``."""
    first = first_instant(start_us, interval_us)
    return list(range(first, end_us, interval_us))


def windows(start_us: int, end_us: int, window_us: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into consecutive windows of at most ``window_us``."""
    out = []
    lo = start_us
    while lo < end_us:
        hi = min(end_us, lo + window_us)
        out.append((lo, hi))
        lo = hi
    return out
