"""The wire format of the collector's live feed (``tickarchive.ingest.publish`` writes it,
``tickarchive.api.stream.feed`` reads it): length-prefixed frames of a JSON header and a
body (pure, plus one asyncio read helper).

A frame is ``>II`` (header length, body length), the header (a JSON object), the body.
Headers: ``{"k": "batch", "e": epoch, "n": n, "t": table, "r": rows, "a": acked_at_us,
"s": upto_seq}`` (body = the ILP QuestDB acknowledged), ``{"k": "hello", "e": epoch,
"oldest": [e, n] | null}``, ``{"k": "gap", "reason": text}``, and from a subscriber
``{"k": "subscribe", "after": [e, n] | null, "backlog": bool}`` (``backlog``: with no
position, send the publisher's whole ring of recent frames first).
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

PUBLISHED_TABLES = frozenset({"quotes", "trades", "book_changes", "gaps"})
"""The tables live streams carry (heartbeats, instruments and index ticks are not published)."""

FRAME_HEAD = struct.Struct(">II")
MAX_HEADER = 64 * 1024


def frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return FRAME_HEAD.pack(len(head), len(body)) + head + body


async def read_frame(reader: asyncio.StreamReader, max_body: int = 1 << 30) -> tuple[dict[str, Any], bytes]:
    """One frame (``asyncio.IncompleteReadError`` at EOF; ``ValueError`` when malformed)."""
    hlen, blen = FRAME_HEAD.unpack(await reader.readexactly(FRAME_HEAD.size))
    if hlen > MAX_HEADER or blen > max_body:
        raise ValueError(f"frame too large (header {hlen}, body {blen})")
    header = json.loads(await reader.readexactly(hlen))
    if not isinstance(header, dict):
        raise ValueError("frame header is not an object")
    body = await reader.readexactly(blen) if blen else b""
    return header, body
