"""Opaque pagination cursors (pure).

A cursor names the position after the last row of a page: the ``ts`` of that row and how
many rows with exactly that ``ts`` the client has already seen (rows are ordered by the
table's dedup keys, so equal-``ts`` rows always come in the same order). The next page
starts at ``ts`` and skips those rows. Encoded as URL-safe base64 of a small JSON object.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from tickarchive.api.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Cursor:
    ts_us: int
    skip: int

    def encode(self) -> str:
        raw = json.dumps({"t": self.ts_us, "s": self.skip}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            pad = "=" * (-len(text) % 4)
            obj = json.loads(base64.urlsafe_b64decode(text + pad))
            ts, skip = obj["t"], obj["s"]
            if type(ts) is not int or type(skip) is not int or skip < 0:
                raise ValueError("bad fields")
        except (ValueError, KeyError, TypeError):
            raise InvalidRequest("parameter 'cursor': not a cursor returned by this API") from None
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
