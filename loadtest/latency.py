"""Quantiles from Prometheus histogram buckets (linear interpolation, as histogram_quantile)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def bucket_delta(
    now: Sequence[tuple[float, float]], before: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Cumulative bucket counts of ``now`` minus ``before`` (same bounds); a counter reset
    (a restarted process: any count went down) yields ``now`` itself."""
    if not before or len(before) != len(now) or any(b[1] > n[1] for n, b in zip(now, before, strict=True)):
        return [(le, c) for le, c in now]
    return [(n[0], n[1] - b[1]) for n, b in zip(now, before, strict=True)]


def add_buckets(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    if not a:
        return list(b)
    if not b:
        return list(a)
    return [(x[0], x[1] + y[1]) for x, y in zip(a, b, strict=True)]


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile (seconds) of cumulative ``(le, count)`` buckets, +Inf last;
    None without observations. Above the last finite bound it answers that bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def max_bound(buckets: Sequence[tuple[float, float]]) -> float | None:
    """Upper bound of the highest non-empty bucket (the histogram's bound on the maximum)."""
    prev_c = 0.0
    top: float | None = None
    prev_le = 0.0
    for le, c in buckets:
        if c > prev_c:
            top = prev_le if math.isinf(le) else le
        prev_c = c
        prev_le = le
    return top
