"""``/stream``: live and replay streaming over WebSocket (docs/api.md, "Streaming")."""

from tickarchive.api.stream.endpoint import router
from tickarchive.api.stream.hub import StreamHub

__all__ = ["StreamHub", "router"]
