"""Who is calling, and what their plan lets them do.

A client sends its API key in ``X-API-Key`` (or ``Authorization: Bearer <key>``; a
WebSocket may also use the ``api_key`` query parameter). The key is looked up by its
SHA-256 in ``api.keys.KeyStore``; the key's plan (``api.plans``) sets its limits:

* requests per minute: a token bucket per key of ``burst`` tokens refilled at
  ``requests_per_min``; empty → 429 ``rate_limited`` with ``Retry-After``;
* rows per day: a request is refused (429 ``quota_exceeded``, ``Retry-After`` until the
  next UTC midnight) once the key's rows of today reach ``rows_per_day``, and a page is
  cut to the rows left (``Caller.row_budget``);
* history depth, live delay, formats, streams at once, replay: checked where they apply
  (``Caller`` methods, ``api.stream``), 403 ``plan_limit`` with the reason.

Failed key attempts (no key, an unknown or revoked key) are limited per client address
(``api.auth_failures_per_min``; 429 before the warm store is even asked).

With no key ever issued (``api_keys`` empty) the API is **open**: every loopback client
may use it without a key and without limits, and any other client is refused (401), so an
open API is never exposed by accident (``tickarchive api`` also refuses to listen on a
non-loopback address then). Once a key exists the API stays keyed, also when every key is
revoked. The buckets live in bounded dicts (one entry per key, and per
client address with recent failures, pruned when full).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tickarchive.api.errors import ApiError, PlanLimit, QuotaExceeded, RateLimited, StoreUnavailable, Unauthorized
from tickarchive.api.keys import KeyRecord, KeyStore
from tickarchive.api.timefmt import US_PER_DAY, US_PER_S
from tickarchive.api.usage import UsageMeter
from tickarchive.settings import ApiSettings, PlanSettings

log = logging.getLogger(__name__)

MAX_FAILURE_CLIENTS = 10_000
"""Client addresses whose recent failures are remembered (the oldest are pruned past this)."""


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Pure token-bucket arithmetic over an injected clock; at most ``max_keys`` buckets
    (when full, the ones idle long enough to be full again are dropped)."""

    def __init__(
        self, capacity: int, per_min: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.capacity = float(capacity)
        self.rate_per_s = per_min / 60.0
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()
        self.max_keys = max_keys

    def take(self, key: str, capacity: float | None = None, per_min: float | None = None) -> float:
        """Take a token for ``key``; 0.0 on success, else the seconds until one is available."""
        cap = self.capacity if capacity is None else float(capacity)
        rate = self.rate_per_s if per_min is None else per_min / 60.0
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= self.max_keys:
                    self._prune(now, cap, rate)
                b = self._buckets[key] = Bucket(cap, now)
            b.tokens = min(cap, b.tokens + (now - b.updated) * rate)
            b.updated = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / rate

    def peek(self, key: str) -> bool:
        """True when ``key`` has a token now (nothing taken)."""
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            return b is None or b.tokens + (now - b.updated) * self.rate_per_s >= 1.0

    def _prune(self, now: float, cap: float, rate: float) -> None:
        full_after = cap / rate if rate > 0 else math.inf
        for k in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[k]
        while len(self._buckets) >= self.max_keys:  # everyone busy: forget the least recent
            oldest = min(self._buckets, key=lambda k: self._buckets[k].updated)
            del self._buckets[oldest]


def presented_key(x_api_key: str | None, authorization: str | None, query_key: str | None = None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return query_key or None


def is_loopback(address: str | None) -> bool:
    if address is None:
        return False
    if address == "testclient":  # Starlette's TestClient (in-process)
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def seconds_to_utc_midnight(now_us: int) -> int:
    return max(1, math.ceil(((now_us // US_PER_DAY + 1) * US_PER_DAY - now_us) / US_PER_S))


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request; ``plan`` None = open access (no limits)."""

    key_id: str | None
    plan_name: str | None
    plan: PlanSettings | None
    address: str | None
    usage: UsageMeter | None = None

    @property
    def open(self) -> bool:
        return self.plan is None

    def horizon_us(self, now_us: int) -> int:
        """The newest exchange time this caller may see (now minus the plan's delay)."""
        return now_us - (self.plan.live_delay_s * US_PER_S if self.plan else 0)

    def check_history(self, start_us: int, now_us: int, what: str = "start") -> None:
        p = self.plan
        if p is None or p.history_days is None:
            return
        oldest = now_us - p.history_days * US_PER_DAY
        if start_us < oldest:
            raise PlanLimit(
                f"parameter {what!r}: plan {self.plan_name!r} reads at most {p.history_days} days back "
                f"(from {dt.datetime.fromtimestamp(oldest / US_PER_S, dt.UTC):%Y-%m-%dT%H:%M:%SZ})"
            )

    def check_format(self, fmt: str) -> None:
        p = self.plan
        if p is not None and fmt not in p.formats:
            raise PlanLimit(
                f"format {fmt!r} is not in plan {self.plan_name!r} (allowed: {', '.join(p.formats)})"
            )

    def row_budget(self, limit: int, now_us: int) -> int:
        """``limit`` cut to the rows the key has left today (``QuotaExceeded`` at none)."""
        p = self.plan
        if p is None or p.rows_per_day is None or self.key_id is None or self.usage is None:
            return limit
        left = p.rows_per_day - self.usage.rows_today(self.key_id)
        if left <= 0:
            raise QuotaExceeded(
                f"plan {self.plan_name!r}: {p.rows_per_day} rows per day used up; resets at 00:00 UTC",
                seconds_to_utc_midnight(now_us),
            )
        return min(limit, left)

    def charge(self, rows: int = 0, nbytes: int = 0, stream_messages: int = 0) -> None:
        if self.key_id is not None and self.usage is not None:
            self.usage.record(self.key_id, rows=rows, bytes=nbytes, stream_messages=stream_messages)


class KeyGuard:
    def __init__(
        self,
        settings: ApiSettings,
        keys: KeyStore | None,
        usage: UsageMeter | None,
        on_limited: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.plans = dict(settings.plans)
        self.keys = keys
        self.usage = usage
        self.requests = TokenBuckets(1, 60.0, clock)
        self.failures = TokenBuckets(settings.auth_failures_per_min, settings.auth_failures_per_min, clock,
                                     max_keys=MAX_FAILURE_CLIENTS)
        self._on_limited = on_limited or (lambda reason, plan: None)

    @property
    def open(self) -> bool:
        """No key was ever issued: the API serves loopback clients without a key. (Once a key
        exists the API stays keyed, also after its last key is revoked.)"""
        return self.keys is None or self.keys.keys_issued == 0

    def _fail(self, address: str | None, message: str) -> Unauthorized:
        self.failures.take(address or "?")
        return Unauthorized(message)

    def check(self, key: str | None, address: str | None, *, count_request: bool = True) -> Caller:
        """The caller, or ``Unauthorized`` / ``RateLimited`` / ``StoreUnavailable``."""
        if self.keys is not None:
            self.keys.refresh_if_due()
        where = address or "?"
        if not self.failures.peek(where):
            self._on_limited("auth_failures", "")
            raise RateLimited("too many failed API-key attempts from this address; retry later", 60)
        rec = self._lookup(key) if key is not None and self.keys is not None else None
        if rec is not None:
            return self._admit(rec, address, count_request)
        if self.open:  # no active key exists (a key just issued was found above)
            if is_loopback(address):
                return Caller(None, None, None, address)
            raise self._fail(address, "no API keys are configured: this API answers loopback clients only")
        if key is None:
            raise self._fail(address, "an API key is required: send it in the X-API-Key header")
        raise self._fail(address, "unknown or revoked API key")

    def _lookup(self, key: str) -> KeyRecord | None:
        assert self.keys is not None
        try:
            return self.keys.lookup(key)
        except ApiError as exc:
            if self.open:
                return None  # open access does not depend on the warm store
            raise StoreUnavailable("API keys cannot be checked right now", exc.detail) from exc

    def _admit(self, rec: KeyRecord, address: str | None, count_request: bool) -> Caller:
        plan = self.plans.get(rec.plan)
        if plan is None:
            log.error("API key %s names plan %r, which api.plans does not define; refused", rec.key_id, rec.plan)
            raise Unauthorized(f"this key's plan {rec.plan!r} is not configured on this server")
        caller = Caller(rec.key_id, rec.plan, plan, address, self.usage)
        if count_request:
            wait = self.requests.take(rec.key_id, plan.burst, plan.requests_per_min)
            if wait > 0:
                if self.usage is not None:
                    self.usage.record(rec.key_id, limited=1)
                self._on_limited("requests_per_min", rec.plan)
                raise RateLimited(
                    f"plan {rec.plan!r}: {plan.requests_per_min} requests per minute; retry in {math.ceil(wait)} s",
                    math.ceil(wait),
                )
            if self.usage is not None:
                self.usage.record(rec.key_id, requests=1)
        return caller
