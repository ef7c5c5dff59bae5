"""Per-key usage: counted in memory, added to the warm store's ``api_usage`` in the background.

Per key and UTC day: requests, rows returned, bytes sent, stream messages, and requests a
limit refused. ``rows_today`` is what the key used today across restarts and API
processes: the stored figure (read when the key is first seen today, and again at every
flush) plus what this process counted since. A flush adds this process's unflushed
counts with one ``INSERT ... ON CONFLICT DO UPDATE SET x = api_usage.x + EXCLUDED.x``
per key-day; a failed flush keeps the counts for the next one (the dict holds at most
one entry per key and day).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields

from tickarchive.api.errors import ApiError
from tickarchive.api.pool import Pool

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Counts:
    requests: int = 0
    rows: int = 0
    bytes: int = 0
    stream_messages: int = 0
    limited: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class UsageMeter:
    def __init__(self, pool: Pool | None, today: Callable[[], dt.date] = utc_today) -> None:
        self.pool = pool
        self._today = today
        self._pending: dict[tuple[str, dt.date], Counts] = {}
        self._stored_rows: dict[tuple[str, dt.date], int] = {}
        self._inflight: dict[tuple[str, dt.date], Counts] = {}
        """Counts being written by a flush right now (still part of ``rows_today``)."""
        self._lock = threading.Lock()
        self.flush_errors = 0

    def record(self, key_id: str, **counts: int) -> None:
        k = (key_id, self._today())
        with self._lock:
            c = self._pending.get(k)
            if c is None:
                c = self._pending[k] = Counts()
            for name, n in counts.items():
                setattr(c, name, getattr(c, name) + n)

    def rows_today(self, key_id: str) -> int:
        k = (key_id, self._today())
        stored = self._stored_rows.get(k)
        if stored is None:
            stored = self._read_rows(k)
        with self._lock:
            pending = self._pending.get(k)
            inflight = self._inflight.get(k)
            return stored + sum(c.rows for c in (pending, inflight) if c is not None)

    def _read_rows(self, k: tuple[str, dt.date]) -> int:
        if self.pool is None:
            return 0
        try:
            rows = self.pool.fetch("SELECT rows FROM api_usage WHERE key_id = %s AND day = %s", [k[0], k[1]])
        except ApiError as exc:
            log.warning("usage: cannot read api_usage (%s); counting from 0 for %s", exc.detail, k[0])
            return 0
        n = int(rows[0][0]) if rows else 0
        self._stored_rows[k] = n
        return n

    def flush(self) -> int:
        """Add the pending counts to ``api_usage``; the number of key-days written."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._inflight = pending
        if not pending or self.pool is None:
            with self._lock:
                self._inflight = {}
                for k, c in pending.items():
                    self._pending.setdefault(k, Counts()).add(c)
            return 0
        written = 0
        try:
            for (key_id, day), c in pending.items():
                rows = self.pool.fetch(
                    "INSERT INTO api_usage AS u (key_id, day, requests, rows, bytes, stream_messages, limited) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key_id, day) DO UPDATE SET "
                    "requests = u.requests + EXCLUDED.requests, rows = u.rows + EXCLUDED.rows, "
                    "bytes = u.bytes + EXCLUDED.bytes, stream_messages = u.stream_messages + EXCLUDED.stream_messages, "
                    "limited = u.limited + EXCLUDED.limited, updated_at = now() RETURNING rows",
                    [key_id, day, c.requests, c.rows, c.bytes, c.stream_messages, c.limited],
                )
                with self._lock:
                    self._stored_rows[(key_id, day)] = int(rows[0][0])
                    c.requests = c.rows = c.bytes = c.stream_messages = c.limited = 0
                written += 1
        except ApiError as exc:
            self.flush_errors += 1
            log.warning("usage: flush to api_usage failed (%s); kept for the next flush", exc.detail)
        finally:
            with self._lock:
                self._inflight = {}
                for k, c in pending.items():
                    if c != Counts():
                        self._pending.setdefault(k, Counts()).add(c)
        today = self._today()
        for k in [k for k in self._stored_rows if k[1] < today]:
            del self._stored_rows[k]
        return written
