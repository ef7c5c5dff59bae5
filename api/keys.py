"""API keys: issued, listed, revoked and looked up in the warm store (``api_keys``).

A key is ``ta_<key_id>_<secret>``: ``key_id`` (8 hex digits) names the key in listings,
usage and metrics; the secret is 32 URL-safe random characters. Only the SHA-256 of the
whole key is stored; ``tickarchive keys add`` prints the key once. A key belongs to a plan
of ``api.plans``.

The functions taking a connection are what ``tickarchive keys`` runs (writer role);
``KeyStore`` is the API's view: every active key, re-read every ``api.keys_refresh_s``
(a revoked key is refused within that time), plus a direct look-up for a digest it has
not seen yet (so a new key works at once). Failed look-ups are rate-limited per client
address by the caller (``api.auth``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from tickarchive.api.errors import ApiError, InvalidRequest
from tickarchive.api.pool import Pool

log = logging.getLogger(__name__)

KEY_PREFIX = "ta_"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    plan: str
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key_id, key)."""
    key_id = secrets.token_hex(4)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"


_COLUMNS = "key_id, plan, label, created_at, revoked_at"


def _record(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(row[0], row[1], row[2], row[3], row[4])


def add_key(conn: psycopg.Connection[Any], plan: str, label: str, plans: set[str]) -> tuple[KeyRecord, str]:
    """Issue a key of ``plan``; returns its record and the key (shown once)."""
    if plan not in plans:
        raise InvalidRequest(f"plan {plan!r} is not one of {', '.join(sorted(plans))} (api.plans)")
    for _ in range(5):
        key_id, key = new_key()
        try:
            row = conn.execute(
                f"INSERT INTO api_keys (key_id, key_sha256, plan, label) VALUES (%s, %s, %s, %s) RETURNING {_COLUMNS}",
                (key_id, digest(key), plan, label),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            continue  # a key_id collision (1 in 4 billion): draw again
        assert row is not None
        return _record(row), key
    raise ApiError("could not draw an unused key id")


def list_keys(conn: psycopg.Connection[Any], include_revoked: bool = True) -> list[KeyRecord]:
    where = "" if include_revoked else " WHERE revoked_at IS NULL"
    return [_record(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at, key_id")]


def revoke_key(conn: psycopg.Connection[Any], key_id: str) -> KeyRecord | None:
    """Revoke ``key_id`` (idempotent); None when there is no such key."""
    row = conn.execute(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s RETURNING {_COLUMNS}",
        (key_id,),
    ).fetchone()
    return _record(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class UsageRow:
    key_id: str
    day: dt.date
    requests: int
    rows: int
    bytes: int
    stream_messages: int
    limited: int


def usage(conn: psycopg.Connection[Any], key_id: str | None, first: dt.date, last: dt.date) -> list[UsageRow]:
    params: list[Any] = [first, last]
    where = "day >= %s AND day <= %s"
    if key_id is not None:
        where += " AND key_id = %s"
        params.append(key_id)
    rows = conn.execute(
        "SELECT key_id, day, requests, rows, bytes, stream_messages, limited FROM api_usage "
        f"WHERE {where} ORDER BY day, key_id",
        params,
    ).fetchall()
    return [UsageRow(*r) for r in rows]


class KeyStore:
    """The API's cache of active keys by digest (see the module docstring)."""

    def __init__(self, pool: Pool, refresh_s: float, clock: Any = time.monotonic) -> None:
        self.pool = pool
        self.refresh_s = refresh_s
        self._clock = clock
        self._by_digest: dict[str, KeyRecord] = {}
        self._loaded_at: float | None = None
        self._ever = 0
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded_at is not None

    @property
    def active_keys(self) -> int:
        return len(self._by_digest)

    @property
    def keys_issued(self) -> int:
        """Keys ever issued, revoked ones included (0: the API is open, ``api.auth``)."""
        return max(self._ever, len(self._by_digest))

    def refresh(self) -> None:
        """Re-read every active key (``ApiError`` when the warm store cannot be read)."""
        rows = self.pool.fetch(
            f"SELECT key_sha256, {_COLUMNS}, count(*) OVER () FROM api_keys ORDER BY revoked_at IS NULL"
        )
        fresh = {r[0]: _record(r[1:6]) for r in rows if r[5] is None}
        with self._lock:
            self._by_digest = fresh
            self._ever = int(rows[0][6]) if rows else 0
            self._loaded_at = self._clock()
        self.last_error = None

    def refresh_if_due(self) -> None:
        at = self._loaded_at
        if at is None or self._clock() - at >= self.refresh_s:
            try:
                self.refresh()
            except ApiError as exc:
                if self.last_error is None:
                    log.warning("API keys: cannot read api_keys (%s); keeping what was loaded", exc.detail)
                self.last_error = exc.detail

    def lookup(self, key: str) -> KeyRecord | None:
        """The active key ``key``, else None (asks the warm store for a digest it has not seen)."""
        d = digest(key)
        found = self._by_digest.get(d)
        if found is not None:
            return found
        rows = self.pool.fetch(f"SELECT {_COLUMNS} FROM api_keys WHERE key_sha256 = %s AND revoked_at IS NULL", [d])
        if not rows:
            return None
        rec = _record(rows[0])
        with self._lock:
            self._by_digest[d] = rec
        return rec
