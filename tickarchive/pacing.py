"""Reconnect and request pacing as pure data: capped exponential backoff with jitter,
and a token bucket. No clocks, no sleeping: callers pass times and sleep themselves.

* ``Backoff``: one per connection. ``next_delay_s()`` after each failed attempt,
  ``reset()`` once a connection is subscribed and healthy.
* ``TokenBucket``: one per process, shared by every connection, for reconnects
  (``DeribitSettings.reconnects_per_s``) and another for ``public/subscribe`` calls
  (``subscribe_rate_per_s``), so that 20 connections never reconnect or subscribe in a
  storm.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


class Backoff:
    """Capped exponential backoff with "equal jitter".

    Attempt n (from 0) waits uniformly in ``[c/2, c]`` with ``c = min(max_s, min_s * 2**n)``:
    never zero (no hot loop), never above the cap, and spread so that connections dropped
    together do not come back together.
    """

    __slots__ = ("_rng", "attempts", "max_s", "min_s")

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"need 0 < min_s <= max_s, got {min_s}, {max_s}")
        self.min_s = min_s
        self.max_s = max_s
        self.attempts = 0
        self._rng = rng if rng is not None else random.Random()

    def ceiling_s(self, attempt: int) -> float:
        return min(self.max_s, self.min_s * 2.0 ** min(attempt, 62))

    def next_delay_s(self) -> float:
        cap = self.ceiling_s(self.attempts)
        self.attempts += 1
        return cap / 2 + self._rng.random() * cap / 2

    def reset(self) -> None:
        self.attempts = 0


class TokenBucket:
    """``rate_per_s`` tokens per second, at most ``burst`` saved up. Times in µs."""

    __slots__ = ("_last_us", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float, now_us: int = 0) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"need rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last_us = now_us

    def _refill(self, now_us: int) -> None:
        if now_us > self._last_us:
            self._tokens = min(self.burst, self._tokens + (now_us - self._last_us) * self.rate_per_s / 1e6)
            self._last_us = now_us

    def try_acquire(self, now_us: int, n: float = 1.0) -> bool:
        """Take ``n`` tokens if available now."""
        self._refill(now_us)
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def wait_us(self, now_us: int, n: float = 1.0) -> int:
        """µs until ``n`` tokens are available (0 = now)."""
        self._refill(now_us)
        missing = n - self._tokens
        return 0 if missing <= 0 else int(missing * 1e6 / self.rate_per_s) + 1


def backoff_delays(min_s: float, max_s: float, rng: random.Random | None = None) -> Iterator[float]:
    """The delays of ``Backoff`` as an endless generator (attempt 0, 1, 2, ...)."""
    b = Backoff(min_s, max_s, rng)
    while True:
        yield b.next_delay_s()
