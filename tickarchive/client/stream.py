"""Live and replay streams from ``/stream`` as an async iterator of batches.

``live(url, channels=..., instruments=..., currency=...)`` yields ``Batch`` (one message:
``channel``, ``frame`` as a polars DataFrame with the table's columns (times as integer µs),
``position``, ``acked_us``) and ``Interrupted`` notices. It reconnects by itself after a
dropped connection (a restarted API, or 4008 "too slow") and resumes after the last
position it yielded, so the rows it yields have no gap and no duplicate; a position the
server no longer holds is reported as ``Interrupted`` (replay that time range). A delayed
plan's live stream works the same (its positions are ``r.<ts_us>``).

``replay(url, start=..., end=..., speed=0)`` yields the stored rows of [start, end) in
exchange-time order and ends after the server's ``end``.

``rows(batch)`` turns a batch into typed rows (``tickarchive.client.rows``). Messages
arrive as Arrow (``format="arrow"``, the default: no JSON decoding) or JSON.
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
class Interrupted:
    reason: str


def ws_url(url: str) -> str:
    base = url.rstrip("/")
    if base.startswith("http://"):
        base = "ws://" + base[7:]
    elif base.startswith("https://"):
        base = "wss://" + base[8:]
    return base + "/stream"


def decode_message(data: str | bytes, received_ns: int) -> Batch | Interrupted | dict[str, Any]:
    """A data message as a ``Batch``, an interruption, or any other control message (dict)."""
    if isinstance(data, bytes):
        if data[:4] != ARROW_MAGIC:
            raise StreamError("protocol", "a binary message that is not an Arrow batch")
        (n,) = _HEAD.unpack_from(data, 4)
        head = orjson.loads(data[8 : 8 + n])
        frame = pl.read_ipc_stream(io.BytesIO(data[8 + n :]))
        return Batch(head["channel"], frame, head.get("position"), head.get("acked_us"), received_ns)
    msg = orjson.loads(data)
    kind = msg.get("type")
    if kind == "rows":
        channel = msg["channel"]
        table = BY_NAME[channel]
        schema = {c: _DTYPE[table.column(c).type] for c in msg["columns"]}
        frame = pl.DataFrame(msg["rows"], schema=schema, orient="row")
        return Batch(channel, frame, msg.get("position"), msg.get("acked_us"), received_ns)
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


def rows(batch: Batch) -> list[Any]:
    """The batch's rows as typed rows of its channel."""
    cls = ROW_TYPES[batch.channel]
    return [cls(**r) for r in batch.frame.iter_rows(named=True)]


def _request(**fields: Any) -> str:
    return orjson.dumps({k: v for k, v in fields.items() if v is not None}).decode()


async def _open(url: str, api_key: str | None, request: str) -> ClientConnection:
    headers = {"X-API-Key": api_key} if api_key else None
    try:
        ws = await connect(ws_url(url), additional_headers=headers, max_size=None, ping_interval=20)
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
) -> AsyncIterator[Batch | Interrupted]:
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
                if isinstance(item, Batch) and item.position is not None:
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
) -> AsyncIterator[Batch]:
    """The stored rows of [start, end) in exchange-time order."""
    req = _request(mode="replay", channels=list(channels), instruments=list(instruments), currency=currency,
                   format=format, start=str(start), end=str(end), speed=speed)
    ws = await _open(url, api_key, req)
    try:
        async for item in _read(ws):
            if isinstance(item, Batch):
                yield item
    except websockets.exceptions.ConnectionClosed as exc:
        raise StreamError("closed", f"the replay closed early ({exc.rcvd.code if exc.rcvd else 'no frame'})") from exc
    finally:
        await ws.close()


async def _read(ws: ClientConnection) -> AsyncIterator[Batch | Interrupted]:
    while True:
        data = await ws.recv()
        item = decode_message(data, time.time_ns())
        if isinstance(item, dict):
            if item.get("type") == "end":
                return
            continue  # subscribed, ...
        yield item
