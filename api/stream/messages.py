"""The ``/stream`` protocol: what a client asks, what it gets (pure).

A client opens ``ws://HOST:PORT/stream`` (API key in ``X-API-Key``, ``Authorization:
Bearer`` or the ``api_key`` query parameter) and sends one JSON text message, a
``StreamRequest``:

``{"mode": "live", "channels": ["quotes", "trades"], "instruments": ["ETH-27DEC24-*"],
"format": "json", "resume": "<position>"}`` or ``{"mode": "replay", ..., "start": "...",
"end": "...", "speed": 0}``.

The server answers ``{"type": "subscribed", ...}`` and then data messages of one channel
(live, and a replay of one channel):

* ``format=json`` (text frames): ``{"type": "rows", "channel": "quotes", "position": P,
  "acked_us": T, "count": n, "columns": [...], "rows": [[...], ...]}``; every value as the
  REST JSON has it except times, which are integer µs since the epoch;
* ``format=arrow`` (binary frames): ``TAS1``, a 4-byte big-endian header length, the same
  header as JSON without ``rows``/``columns``, then the rows as an Arrow IPC stream
  (``polars.read_ipc_stream`` reads it);

or, when a replay (or a delayed live stream) has more than one channel, ``merged``
messages: the rows of every channel over a stretch of exchange time, in exchange-time
order, as one message:

* ``format=json``: ``{"type": "merged", "position": P, "count": n, "order": [0, 1, 0, ...],
  "parts": [{"channel": "quotes", "count": k, "columns": [...], "rows": [[...], ...]},
  ...]}``;
* ``format=arrow``: ``TAS1``, the header length, the header ``{"type": "merged",
  "position": P, "count": n, "parts": [{"channel": "quotes", "count": k, "bytes": b},
  ...]}``, then ``n`` bytes of ``order``, then each part's rows as an Arrow IPC stream of
  ``b`` bytes, one after the other.

Each part holds one channel's rows (the table's columns) in exchange-time order; ``order``
says, row by row in exchange-time order, which part the next row comes from (its index in
``parts``): row ``i`` of the merged stream is the next unread row of part ``order[i]``.
Ties in ``ts`` are in the order of the requested channels. Parts with no rows are left out.

Control messages (text): ``interrupted`` (the live feed has a hole: ``reason``; use replay
for the time it covers), ``end`` (a replay finished), ``error`` (then the socket closes).
``position`` marks how far a client got: pass the last one as ``resume`` after a reconnect
(live: the feed's own positions ``<epoch>.<n>``; delayed live and replay: ``r.<ts_us>``,
every row before ``ts_us`` delivered). A client that reads too slowly is closed with
code 4008 and a reason naming its last position.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import orjson
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from tickarchive.api import frames
from tickarchive.tables import BY_NAME

IpcCompression: TypeAlias = Literal["uncompressed", "lz4", "zstd"]

CHANNELS = ("quotes", "trades", "book_changes", "gaps")
ARROW_MAGIC = b"TAS1"
_HEAD = struct.Struct(">I")
CLOSE_TOO_SLOW = 4008
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001


class StreamRequest(BaseModel):
    """The first message of a client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["live", "replay"] = "live"
    channels: tuple[Literal["quotes", "trades", "book_changes", "gaps"], ...] = Field(
        ("quotes", "trades"), min_length=1
    )
    instruments: tuple[str, ...] = Field((), description="names or patterns; empty = every instrument")
    currency: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{2,16}$", description="shorthand for '<CUR>-*'")
    format: Literal["json", "arrow"] = "json"
    resume: str | None = Field(
        None, max_length=80, description="the position to continue after; live: 'oldest' = all the server holds"
    )
    start: str | None = Field(None, max_length=40, description="replay: first exchange time (inclusive)")
    end: str | None = Field(None, max_length=40, description="replay: last exchange time (exclusive)")
    speed: float = Field(0.0, ge=0.0, le=10_000.0, description="replay: 0 = as fast as the client reads, N = xN")


def dumps(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def control(kind: str, **fields: Any) -> str:
    return dumps({"type": kind, **fields})


def rows_json(
    channel: str, rows: Sequence[tuple[Any, ...]], position: str | None, acked_us: int | None
) -> str:
    """A JSON ``rows`` message from row tuples in the table's column order."""
    head = {
        "type": "rows",
        "channel": channel,
        "position": position,
        "acked_us": acked_us,
        "count": len(rows),
        "columns": list(BY_NAME[channel].column_names),
    }
    # orjson writes NaN as null, as the REST JSON does
    return (orjson.dumps(head)[:-1] + b',"rows":' + orjson.dumps(list(rows)) + b"}").decode()


def frame_json(channel: str, frame: pl.DataFrame, position: str | None, acked_us: int | None = None) -> str:
    """A JSON ``rows`` message from a frame with the table's columns (times as µs)."""
    head = {
        "type": "rows",
        "channel": channel,
        "position": position,
        "acked_us": acked_us,
        "count": frame.height,
        "columns": frame.columns,
    }
    return (orjson.dumps(head)[:-1] + b',"rows":' + orjson.dumps(frame.rows()) + b"}").decode()


def frame_arrow(channel: str, frame: pl.DataFrame, position: str | None, acked_us: int | None = None) -> bytes:
    head = orjson.dumps(
        {"type": "rows", "channel": channel, "position": position, "acked_us": acked_us, "count": frame.height}
    )
    buf = io.BytesIO()
    frame.write_ipc_stream(buf, compression="lz4")
    return ARROW_MAGIC + _HEAD.pack(len(head)) + head + buf.getvalue()


def merged_arrow(
    parts: Sequence[tuple[str, pl.DataFrame]], order: bytes, position: str | None, compression: IpcCompression = "lz4"
) -> bytes:
    """A binary ``merged`` message: ``order`` (one byte per row: the index of its part) and
    each part's rows as an Arrow IPC stream."""
    bodies = []
    for _, frame in parts:
        buf = io.BytesIO()
        frame.write_ipc_stream(buf, compression=compression)
        bodies.append(buf.getvalue())
    head = orjson.dumps({
        "type": "merged",
        "position": position,
        "count": len(order),
        "parts": [
            {"channel": ch, "count": frame.height, "bytes": len(body)}
            for (ch, frame), body in zip(parts, bodies, strict=True)
        ],
    })
    return b"".join([ARROW_MAGIC, _HEAD.pack(len(head)), head, order, *bodies])


def merged_json(parts: Sequence[tuple[str, pl.DataFrame]], order: bytes, position: str | None) -> str:
    """A JSON ``merged`` message (times as µs)."""
    out = [
        orjson.dumps({"type": "merged", "position": position, "count": len(order), "order": list(order)})[:-1],
        b',"parts":[',
    ]
    for k, (ch, frame) in enumerate(parts):
        head = orjson.dumps({"channel": ch, "count": frame.height, "columns": frame.columns})
        out += [b"," if k else b"", head[:-1], b',"rows":', orjson.dumps(frame.rows()), b"}"]
    out.append(b"]}")
    return b"".join(out).decode()


def rows_frame(channel: str, rows: Sequence[tuple[Any, ...]]) -> pl.DataFrame:
    """Row tuples (the table's column order) as a frame; built column by column (half the
    cost of ``orient="row"`` for the 40-column quotes)."""
    table = BY_NAME[channel]
    schema = frames.schema(table, table.column_names)
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(dict(zip(table.column_names, map(list, zip(*rows, strict=True)), strict=True)),
                        schema=schema)


def split_arrow(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, Arrow IPC stream) of a binary message (``ValueError`` when it is not one)."""
    if data[:4] != ARROW_MAGIC:
        raise ValueError("not a tickarchive Arrow stream message")
    (n,) = _HEAD.unpack_from(data, 4)
    head = orjson.loads(data[8 : 8 + n])
    return head, data[8 + n :]
