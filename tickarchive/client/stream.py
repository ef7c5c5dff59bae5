"""Live and replay streams from ``/stream`` as an async iterator of batches.

``live(url, channels=..., instruments=..., currency=...)`` yields ``Batch`` (one message:
``channel``, ``frame`` as a polars DataFrame with the table's columns (times as integer µs),
``position``, ``acked_us``) and ``Interrupted`` notices. It reconnects by itself after a
dropped connection (a restarted API, or 4008 "too slow") and resumes after the last
position it yielded, so the rows it yields have no gap and no duplicate; a position the
server no longer holds is reported as ``Interrupted`` (replay that time range). A delayed
plan's live stream works the same (its positions are ``r.<ts_us>``).

``replay(url, start=..., end=..., speed=0)`` yields the stored rows of [start, end) in
exchange-time order and ends after the server's ``end``: ``Batch`` messages when it has
one channel, ``Merged`` messages when it has several (every channel's rows over a stretch
of exchange time in one message: ``Merged.frame()`` is one DataFrame in exchange-time
order with a ``channel`` column, ``Merged.parts`` the per-channel DataFrames; a delayed
plan's live stream of several channels is ``Merged`` too).

``rows(item)`` turns a batch or a merged message into typed rows
(``tickarchive.client.rows``), in exchange-time order. Messages arrive as Arrow
(``format="arrow"``, the default: no JSON decoding) or JSON.
"""

from __future__ import annotations

import asyncio
import io
import logging
import struct
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tickarchive.client.errors import StreamError, Unreachable
from tickarchive.client.rows import ROW_TYPES
from tickarchive.tables import BY_NAME, ColumnType

log = logging.getLogger(__name__)

ARROW_MAGIC = b"TAS1"
_HEAD = struct.Struct(">I")
CLOSE_TOO_SLOW = 4008


@dataclass(frozen=True, slots=True)
class Batch:
    channel: str
    frame: pl.DataFrame
    position: str | None
    acked_us: int | None
    received_ns: int
    """``time.time_ns()`` when the message was read (latency measurements)."""


@dataclass(frozen=True, slots=True)
class Merged:
    """One ``merged`` message: the rows of several channels over a stretch of exchange time."""

    parts: tuple[tuple[str, pl.DataFrame], ...]
    """(channel, rows with the table's columns) per channel with rows, each in exchange-time order."""
    order: bytes
    """Per row in exchange-time order, the index in ``parts`` of the part it comes from."""
    position: str | None
    received_ns: int

    @property
    def count(self) -> int:
        return len(self.order)

    def part(self, channel: str) -> pl.DataFrame | None:
        """The rows of ``channel`` in this message (None when it has none)."""
        return next((f for ch, f in self.parts if ch == channel), None)

    def frame(self) -> pl.DataFrame:
        """Every row in exchange-time order in one DataFrame: ``channel`` first, then the
        union of the channels' columns (null where a channel has no such column)."""
        if not self.parts:
            return pl.DataFrame({"channel": []}, schema={"channel": pl.String})
        stacked = pl.concat(
            [f.select(pl.lit(ch, dtype=pl.String).alias("channel"), pl.all()) for ch, f in self.parts],
            how="diagonal_relaxed",
        )
        offsets, at = [], 0
        for _, f in self.parts:
            offsets.append(at)
            at += f.height
        which = pl.Series("p", list(self.order), dtype=pl.Int64)
        index = pl.DataFrame({"p": which}).select(
            pl.int_range(pl.len(), dtype=pl.Int64).over("p") + pl.col("p").replace_strict(
                list(range(len(offsets))), offsets, return_dtype=pl.Int64
            )
        ).to_series()
        return stacked[index]


@dataclass(frozen=True, slots=True)
class Interrupted:
    reason: str


def ws_url(url: str) -> str:
    base = url.rstrip("/")
    if base.startswith("http://"):
        base = "ws://" + base[7:]
    elif base.startswith("https://"):
        base = "wss://" + base[8:]
    return base + "/stream"


def decode_message(data: str | bytes, received_ns: int) -> Batch | Merged | Interrupted | dict[str, Any]:
    """A data message as a ``Batch`` or ``Merged``, an interruption, or any other control
    message (dict)."""
    if isinstance(data, bytes):
        if data[:4] != ARROW_MAGIC:
            raise StreamError("protocol", "a binary message that is not an Arrow batch")
        (n,) = _HEAD.unpack_from(data, 4)
        head = orjson.loads(data[8 : 8 + n])
        at = 8 + n
        if head.get("type") == "merged":
            count = int(head["count"])
            order = bytes(data[at : at + count])
            at += count
            parts = []
            for p in head["parts"]:
                size = int(p["bytes"])
                parts.append((str(p["channel"]), pl.read_ipc_stream(io.BytesIO(data[at : at + size]))))
                at += size
            return Merged(tuple(parts), order, head.get("position"), received_ns)
        frame = pl.read_ipc_stream(io.BytesIO(data[at:]))
        return Batch(head["channel"], frame, head.get("position"), head.get("acked_us"), received_ns)
    msg = orjson.loads(data)
    kind = msg.get("type")
    if kind == "rows":
        channel = msg["channel"]
        return Batch(channel, _json_frame(channel, msg["columns"], msg["rows"]), msg.get("position"),
                     msg.get("acked_us"), received_ns)
    if kind == "merged":
        pieces = tuple((str(p["channel"]), _json_frame(p["channel"], p["columns"], p["rows"])) for p in msg["parts"])
        return Merged(pieces, bytes(msg["order"]), msg.get("position"), received_ns)
    if kind == "interrupted":
        return Interrupted(str(msg.get("reason", "")))
    if kind == "error":
        raise StreamError(str(msg.get("error")), str(msg.get("detail")))
    return dict(msg)


_DTYPE: dict[ColumnType, Any] = {
    ColumnType.TIMESTAMP: pl.Int64,
    ColumnType.SYMBOL: pl.String,
    ColumnType.VARCHAR: pl.String,
    ColumnType.DOUBLE: pl.Float64,
    ColumnType.LONG: pl.Int64,
    ColumnType.INT: pl.Int32,
    ColumnType.BOOLEAN: pl.Boolean,
}


def _json_frame(channel: str, columns: list[str], values: list[list[Any]]) -> pl.DataFrame:
    table = BY_NAME[channel]
    schema = {c: _DTYPE[table.column(c).type] for c in columns}
    return pl.DataFrame(values, schema=schema, orient="row")


def rows(item: Batch | Merged) -> list[Any]:
    """The rows of a batch (typed rows of its channel) or of a merged message (each typed
    as its channel's row), in exchange-time order."""
    if isinstance(item, Batch):
        cls = ROW_TYPES[item.channel]
        return [cls(**r) for r in item.frame.iter_rows(named=True)]
    per_part = [
        iter([ROW_TYPES[ch](**r) for r in f.iter_rows(named=True)]) for ch, f in item.parts
    ]
    return [next(per_part[p]) for p in item.order]


def _request(**fields: Any) -> str:
    return orjson.dumps({k: v for k, v in fields.items() if v is not None}).decode()


async def _open(url: str, api_key: str | None, request: str) -> ClientConnection:
    headers = {"X-API-Key": api_key} if api_key else None
    try:
        # no permessage-deflate: Arrow messages are LZ4-compressed already, and zlib on the
        # server would cost more CPU than the whole replay (docs/api.md, "Streaming")
        ws = await connect(ws_url(url), additional_headers=headers, max_size=None, ping_interval=20, compression=None)
    except (OSError, websockets.exceptions.InvalidHandshake) as exc:
        raise Unreachable(f"{ws_url(url)}: {type(exc).__name__}: {exc}") from exc
    await ws.send(request)
    return ws


async def live(
    url: str,
    *,
    api_key: str | None = None,
    channels: Sequence[str] = ("quotes", "trades"),
    instruments: Sequence[str] = (),
    currency: str | None = None,
    format: str = "arrow",
    resume: str | None = None,
    reconnect: bool = True,
    max_reconnects: int = 100,
) -> AsyncIterator[Batch | Merged | Interrupted]:
    """Live batches (see the module docstring)."""
    position = resume
    attempts = 0
    while True:
        req = _request(mode="live", channels=list(channels), instruments=list(instruments), currency=currency,
                       format=format, resume=position)
        try:
            ws = await _open(url, api_key, req)
        except Unreachable:
            if not reconnect or attempts >= max_reconnects:
                raise
            attempts += 1
            await asyncio.sleep(min(5.0, 0.2 * attempts))
            continue
        try:
            async for item in _read(ws):
                attempts = 0
                if isinstance(item, (Batch, Merged)) and item.position is not None:
                    position = item.position
                yield item
            return  # the server ended the stream normally
        except websockets.exceptions.ConnectionClosed as exc:
            rcvd = exc.rcvd
            if rcvd is not None and rcvd.code == 1008:
                raise StreamError(rcvd.reason or "policy", "the server refused the stream") from exc
            if not reconnect or attempts >= max_reconnects:
                raise StreamError("closed", f"the stream closed ({rcvd.code if rcvd else 'no close frame'})") from exc
            attempts += 1
            log.info("stream closed (%s); resuming after %s", rcvd.reason if rcvd else "", position)
        finally:
            await ws.close()


async def replay(
    url: str,
    *,
    start: Any,
    end: Any,
    api_key: str | None = None,
    channels: Sequence[str] = ("quotes", "trades"),
    instruments: Sequence[str] = (),
    currency: str | None = None,
    speed: float = 0.0,
    format: str = "arrow",
    resume: str | None = None,
) -> AsyncIterator[Batch | Merged]:
    """The stored rows of [start, end) in exchange-time order: ``Batch`` messages for one
    channel, ``Merged`` messages for several. ``resume``: the last ``position`` of an
    earlier replay of the same range (continues after it: no gap, no duplicate)."""
    req = _request(mode="replay", channels=list(channels), instruments=list(instruments), currency=currency,
                   format=format, start=str(start), end=str(end), speed=speed, resume=resume)
    ws = await _open(url, api_key, req)
    try:
        async for item in _read(ws):
            if isinstance(item, (Batch, Merged)):
                yield item
    except websockets.exceptions.ConnectionClosed as exc:
        raise StreamError("closed", f"the replay closed early ({exc.rcvd.code if exc.rcvd else 'no frame'})") from exc
    finally:
        await ws.close()


async def _read(ws: ClientConnection) -> AsyncIterator[Batch | Merged | Interrupted]:
    while True:
        data = await ws.recv()
        item = decode_message(data, time.time_ns())
        if isinstance(item, dict):
            if item.get("type") == "end":
                return
            continue  # subscribed, ...
        yield item
