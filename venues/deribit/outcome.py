"""What ``normalize.parse_frame`` makes of one frame (``Outcome``), as plain types."""

from __future__ import annotations

from typing import Final

import msgspec

from tickarchive.domain import Event
from tickarchive.venue import Malformed
from tickarchive.venues.deribit import wire
from tickarchive.venues.deribit.sequence import BookIds


class Notification(msgspec.Struct, gc=False):
    """A ``subscription`` notification and the events it produced."""

    channel: str
    events: list[Event]
    book: BookIds | None = None
    """For ``book.*`` channels: the message's change ids (even when it has no levels)."""


class Heartbeat(msgspec.Struct, frozen=True, gc=False):
    """A ``heartbeat`` notification; ``type`` is ``heartbeat`` or ``test_request``."""

    type: str


class Response(msgspec.Struct, frozen=True, gc=False):
    """A JSON-RPC response. ``result`` is the raw JSON of the result (``None`` on error)."""

    id: int | str | None
    result: msgspec.Raw | None
    error: wire.RpcErrorWire | None
    server_us: int | None
    """Deribit's ``usOut`` (server send time, µs) when present."""


Outcome = Notification | Heartbeat | Response | Malformed

IGNORED_FAMILIES: Final = frozenset(
    {"platform_state", "deribit_volatility_index", "estimated_expiration_price", "markprice", "user"}
)
"""Channel families we may subscribe to but do not store (``events == []``)."""
