"""Optional API keys and per-key rate limits.

Keys are configured as SHA-256 hex digests (``api.api_keys_sha256``); a client sends the
key itself in ``X-API-Key`` (or ``Authorization: Bearer <key>``). The digest of the
presented key is compared with every configured digest in constant time. With no digests
configured the API is open and unlimited.

Each key has a token bucket of ``api.rate_limit_burst`` tokens refilled at
``api.rate_limit_per_min`` per minute; an empty bucket answers 429 with ``Retry-After``.
The buckets live in a bounded dict (one entry per configured key).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tickarchive.api.errors import RateLimited, Unauthorized


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Pure token-bucket arithmetic over an injected clock."""

    def __init__(self, capacity: int, per_min: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(capacity)
        self.rate_per_s = per_min / 60.0
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for ``key``; 0.0 on success, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = Bucket(self.capacity, now)
            b.tokens = min(self.capacity, b.tokens + (now - b.updated) * self.rate_per_s)
            b.updated = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate_per_s


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


class KeyGuard:
    def __init__(self, digests: tuple[str, ...], per_min: int, burst: int) -> None:
        self.digests = tuple(d.strip().lower() for d in digests)
        self.buckets = TokenBuckets(burst, per_min)

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def check(self, key: str | None) -> None:
        """Raise ``Unauthorized`` or ``RateLimited``; return when the request may proceed."""
        if not self.enabled:
            return
        if key is None:
            raise Unauthorized("an API key is required: send it in the X-API-Key header")
        digest = hashlib.sha256(key.encode()).hexdigest()
        matched = None
        for d in self.digests:
            if hmac.compare_digest(digest, d):
                matched = d
        if matched is None:
            raise Unauthorized("unknown API key")
        wait = self.buckets.take(matched)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(f"rate limit exceeded for this key; retry in {retry} s", retry)
