"""Opaque, signed pagination cursors (pure).

A cursor names the position after the last row of a page: the ``ts`` of that row and how
many rows with exactly that ``ts`` the client has already seen (rows are ordered by the
table's dedup keys, so equal-``ts`` rows always come in the same order). The next page
starts at ``ts`` and skips those rows.

Cursors are tamper-proof and bounded: the text is ``<payload>.<mac>``, where the payload
is URL-safe base64 of ``{"t": ts, "s": skip}`` and the MAC is HMAC-SHA256 over the
payload and the query the cursor belongs to (endpoint, instrument, range, filters), keyed
with ``api.cursor_secret`` (a random key per process when unset). A cursor the API did not
issue for this very query, or whose ``skip`` exceeds ``api.max_rows``, is a 422: a client
cannot make the API read ``limit + skip`` rows of its choosing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from tickarchive.api.errors import InvalidRequest

MAC_CHARS = 22
"""Base64 characters of the MAC kept (132 bits)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str, binding: str) -> str:
    return _b64(hmac.new(secret, f"{payload}\n{binding}".encode(), hashlib.sha256).digest())[:MAC_CHARS]


@dataclass(frozen=True, slots=True)
class Cursor:
    ts_us: int
    skip: int

    def encode(self, secret: bytes, binding: str) -> str:
        payload = _b64(json.dumps({"t": self.ts_us, "s": self.skip}, separators=(",", ":")).encode())
        return f"{payload}.{_mac(secret, payload, binding)}"

    @classmethod
    def decode(cls, text: str, secret: bytes, binding: str, max_skip: int) -> Cursor:
        bad = InvalidRequest("parameter 'cursor': not a cursor this API returned for this query")
        payload, dot, mac = text.partition(".")
        if not dot or not hmac.compare_digest(mac.encode(), _mac(secret, payload, binding).encode()):
            raise bad
        try:
            obj = json.loads(_unb64(payload))
            ts, skip = obj["t"], obj["s"]
        except (ValueError, KeyError, TypeError):
            raise bad from None
        if type(ts) is not int or type(skip) is not int or not 0 <= skip <= max_skip:
            raise bad
        return cls(ts, skip)


def next_cursor(prev: Cursor | None, page_ts: list[int]) -> Cursor | None:
    """The cursor after a page whose rows have the timestamps ``page_ts`` (ascending)."""
    if not page_ts:
        return None
    last = page_ts[-1]
    same = 0
    for ts in reversed(page_ts):
        if ts != last:
            break
        same += 1
    if prev is not None and prev.ts_us == last:
        same += prev.skip
    return Cursor(last, same)
