"""The outgoing side of a session (sans-I/O): request ids, the outbox, the subscribe
pacing and the requests awaiting an answer.

``public/subscribe`` / ``public/unsubscribe`` calls wait in ``paced`` until the shared
``TokenBucket`` (one per collector: Deribit limits subscribe calls per IP) releases
them; every other request goes to the outbox at once. ``pending`` maps each request id
sent to what it asked, so a response can be interpreted (``session._response``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from tickarchive.pacing import TokenBucket

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Pending:
    """What a request id asked for."""

    method: str
    channels: tuple[str, ...] = ()
    currency: str = ""
    kind: str | None = None


class RequestQueue:
    """Ids, outbox, paced (un)subscribe batches and pending requests of one connection."""

    __slots__ = ("_limiter", "_next_id", "outbox", "paced", "pending")

    def __init__(self, limiter: TokenBucket | None) -> None:
        self._limiter = limiter
        self._next_id = 1
        self.outbox: list[bytes] = []
        self.paced: deque[tuple[str, tuple[str, ...]]] = deque()
        self.pending: dict[int, Pending] = {}

    def clear(self) -> None:
        """Forget everything unsent and every pending answer (a new or a lost connection)."""
        self.outbox.clear()
        self.paced.clear()
        self.pending.clear()

    def frame(self, method: str, params: dict[str, Any], pending: Pending) -> bytes:
        """A request frame with the next id, registered as pending."""
        rid = self._next_id
        self._next_id += 1
        self.pending[rid] = pending
        return _encoder.encode({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})

    def send(self, method: str, params: dict[str, Any], pending: Pending) -> int:
        """Queue a request for the outbox; its id."""
        rid = self._next_id
        self.outbox.append(self.frame(method, params, pending))
        return rid

    def queue_batches(self, method: str, channels: Sequence[str], per_request: int) -> None:
        """(Un)subscribe ``channels`` in calls of at most ``per_request``, paced."""
        for i in range(0, len(channels), per_request):
            self.paced.append((method, tuple(channels[i : i + per_request])))

    def data_to_send(self, now_us: int) -> list[bytes]:
        """Frames to send now: the outbox, then paced calls as the limiter allows."""
        out = self.outbox
        self.outbox = []
        paced = self.paced
        limiter = self._limiter
        while paced and (limiter is None or limiter.try_acquire(now_us)):
            method, channels = paced.popleft()
            out.append(self.frame(method, {"channels": list(channels)}, Pending(method, channels)))
        return out

    def next_send_us(self, now_us: int) -> int | None:
        """When paced requests can go out (``None``: nothing waiting)."""
        if self.outbox:
            return now_us
        if not self.paced:
            return None
        return now_us + (0 if self._limiter is None else self._limiter.wait_us(now_us))
