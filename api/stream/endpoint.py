"""``/stream``: the WebSocket endpoint (protocol: ``api.stream.messages``).

One connection carries one stream:

* ``mode=live`` on a real-time plan (or open access): the hub's live fan-out
  (``api.stream.hub``), resumable by position;
* ``mode=live`` on a delayed plan (``live_delay_s > 0``): an open-ended replay following
  ``now - delay`` (``api.stream.replay``), resumable by ``r.<ts>`` position;
* ``mode=replay``: stored history over [start, end) at the requested speed.

Plan rules (``api.auth``): the key is checked at the handshake; streams open at once per
key are limited (``concurrent_streams``), replay needs ``replay``, the format must be in
``formats``, replay and delayed starts respect ``history_days``, and every message
counts against ``rows_per_day`` (the stream ends with ``quota_exceeded`` when used up).
Usage is metered per message (rows, bytes, messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from tickarchive.api.auth import Caller, presented_key
from tickarchive.api.context import AppContext, client_address
from tickarchive.api.errors import ApiError, InvalidRequest, PlanLimit
from tickarchive.api.routes_common import now_us
from tickarchive.api.stream import messages as msg
from tickarchive.api.stream import replay as rp
from tickarchive.api.stream.filters import Filter, build
from tickarchive.api.stream.hub import LiveClient, StreamHub
from tickarchive.api.timefmt import US_PER_S, parse_time
from tickarchive.tables import BY_NAME

log = logging.getLogger(__name__)

router = APIRouter()

FIRST_MESSAGE_TIMEOUT_S = 10.0
_open_streams: Counter[str] = Counter()
"""Streams open per key id (this process)."""


class StreamError(Exception):
    """End the stream with an ``error`` message (code, detail)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    ctx: AppContext = ws.app.state.ctx
    await ws.accept()
    key_id: str | None = None
    try:
        try:
            key = presented_key(
                ws.headers.get("x-api-key"), ws.headers.get("authorization"), ws.query_params.get("api_key")
            )
            caller = await asyncio.to_thread(ctx.guard.check, key, client_address(ws))
            req = await _request(ws)
            flt = build(
                req.channels, req.instruments, req.currency, req.format, ctx.settings.stream.max_patterns,
                ctx.settings.api.max_pattern_wildcards,
            )
            caller.check_format(req.format)
            key_id = _admit(caller)
            await _serve(ws, ctx, caller, req, flt)
        except ApiError as exc:
            raise StreamError(exc.code, exc.detail) from exc
    except StreamError as exc:
        await _close_with_error(ws, exc.code, exc.detail)
    except DISCONNECTED:
        pass
    finally:
        if key_id is not None:
            _open_streams[key_id] -= 1
            if _open_streams[key_id] <= 0:
                del _open_streams[key_id]


async def _request(ws: WebSocket) -> msg.StreamRequest:
    try:
        text = await asyncio.wait_for(ws.receive_text(), FIRST_MESSAGE_TIMEOUT_S)
    except TimeoutError:
        raise StreamError("invalid_request", "send the stream request within 10 s of connecting") from None
    except KeyError:  # a binary first message
        raise StreamError("invalid_request", "the stream request is a JSON text message") from None
    try:
        return msg.StreamRequest.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "request"
        raise StreamError("invalid_request", f"stream request {where}: {first.get('msg')}") from None


def _admit(caller: Caller) -> str | None:
    if caller.key_id is None or caller.plan is None:
        return None
    limit = caller.plan.concurrent_streams
    if _open_streams[caller.key_id] >= limit:
        raise PlanLimit(f"plan {caller.plan_name!r} allows {limit} streams at once; close one first")
    _open_streams[caller.key_id] += 1
    return caller.key_id


async def _close_with_error(ws: WebSocket, code: str, detail: str) -> None:
    if ws.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, *DISCONNECTED):
            await ws.send_text(msg.control("error", error=code, detail=detail))
            await ws.close(code=msg.CLOSE_POLICY, reason=code)


async def _serve(ws: WebSocket, ctx: AppContext, caller: Caller, req: msg.StreamRequest, flt: Filter) -> None:
    hub = ctx.hub
    delay_s = caller.plan.live_delay_s if caller.plan is not None else 0
    metrics = ctx.metrics
    sender = _Sender(ws, ctx, caller)
    if req.mode == "live" and delay_s == 0:
        if hub is None:
            raise StreamError("not_available", "this API process has no live feed (started without one)")
        await sender.control("subscribed", mode="live", channels=list(req.channels), format=req.format)
        client = hub.attach(flt, req.resume)
        try:
            await _watch(ws, _pump_live(hub, client, sender))
        finally:
            hub.detach(client)
        return
    if req.mode == "replay" and caller.plan is not None and not caller.plan.replay:
        raise StreamError("plan_limit", f"plan {caller.plan_name!r} does not include replay")
    now = now_us()
    if req.mode == "replay":
        if req.start is None or req.end is None:
            raise InvalidRequest("replay needs start and end")
        start, end = parse_time("start", req.start), parse_time("end", req.end)
        if start >= end:
            raise InvalidRequest("replay: start must be before end")
        end = min(end, caller.horizon_us(now))
        mode, open_end = "replay", end
    else:
        start = now - delay_s * US_PER_S
        open_end = None
        mode = "delayed"
    if req.resume:
        resumed = rp.parse_position(req.resume)
        if resumed is None:
            raise InvalidRequest(f"resume: {req.resume[:40]!r} is not a replay position (r.<ts_us>)")
        start = max(start, resumed)
    caller.check_history(start, now, "start")
    match = flt.match()
    replay = rp.Replay(
        ctx.stores,
        [BY_NAME[c] for c in req.channels],
        match,
        start,
        open_end,
        speed=req.speed if mode == "replay" else 0.0,
        delay_us=delay_s * US_PER_S,
        page_rows=ctx.settings.stream.replay_page_rows,
        max_rows=ctx.settings.api.max_rows,
    )
    await sender.control("subscribed", mode=mode, channels=list(req.channels), format=req.format, delay_s=delay_s,
                         position=replay.position)
    metrics.streams.labels(mode).inc()
    try:
        await _watch(ws, _pump_replay(replay, sender, flt, mode))
    finally:
        metrics.streams.labels(mode).dec()


DISCONNECTED = (WebSocketDisconnect, ConnectionError, OSError)


async def _watch(ws: WebSocket, pump: Coroutine[Any, Any, None]) -> None:
    """Run ``pump`` until it ends or the client goes away (whatever comes first); a send
    to a client that has gone is the end of the stream, not an error."""

    async def listen() -> None:
        while True:
            m = await ws.receive()
            if m["type"] == "websocket.disconnect":
                return

    pump_task = asyncio.create_task(pump)
    listen_task = asyncio.create_task(listen())
    try:
        await asyncio.wait({pump_task, listen_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (pump_task, listen_task):
            if not t.done():
                t.cancel()
        for t in (pump_task, listen_task):
            with contextlib.suppress(asyncio.CancelledError, *DISCONNECTED):
                await t
    if not pump_task.cancelled():
        exc = pump_task.exception()
        if exc is not None and not isinstance(exc, DISCONNECTED):
            raise exc


class _Sender:
    """Sends messages to one client and meters them (rows, bytes, messages; the quota)."""

    def __init__(self, ws: WebSocket, ctx: AppContext, caller: Caller) -> None:
        self.ws = ws
        self.ctx = ctx
        self.caller = caller

    async def control(self, kind: str, **fields: Any) -> None:
        await self.ws.send_text(msg.control(kind, **fields))

    async def data(self, m: str | bytes, rows: int, mode: str) -> None:
        if rows and self.caller.plan is not None and self.caller.plan.rows_per_day is not None:
            self.caller.row_budget(rows, now_us())
        if isinstance(m, str):
            await self.ws.send_text(m)
        else:
            await self.ws.send_bytes(m)
        self.caller.charge(rows=rows, nbytes=len(m), stream_messages=1)
        self.ctx.metrics.stream_messages.labels(mode).inc()
        if self.caller.key_id is not None and rows:
            self.ctx.metrics.key_rows.labels(self.caller.key_id, self.caller.plan_name or "").inc(rows)


async def _pump_live(hub: StreamHub, client: LiveClient, sender: _Sender) -> None:
    for entry in client.backlog:
        out = hub.encode(client.filter, entry)
        if out is not None:
            await sender.data(out[0], out[1], "live")
            client.last_position = out[2] or client.last_position
    client.backlog = []
    while True:
        while client.queue and not client.dropped:
            m, rows, pos = client.queue.popleft()
            await sender.data(m, rows, "live")
            client.last_position = pos or client.last_position
        if client.closing:
            with contextlib.suppress(RuntimeError, *DISCONNECTED):
                await sender.ws.close(code=msg.CLOSE_GOING_AWAY, reason="the server is shutting down; resume later")
            return
        if client.dropped:
            reason = f"too slow: {client.limit} messages queued; resume after {client.last_position}"
            with contextlib.suppress(RuntimeError, *DISCONNECTED):
                await sender.ws.close(code=msg.CLOSE_TOO_SLOW, reason=reason[:120])
            return
        client.wake.clear()
        await client.wake.wait()


async def _pump_replay(replay: rp.Replay, sender: _Sender, flt: Filter, mode: str) -> None:
    """One message per chunk: ``rows`` of the one channel, or ``merged`` when the stream
    has several (``api.stream.messages``); each is encoded once, in the replay's worker
    thread, while the previous window is sent."""
    merged = len(replay.tables) > 1
    arrow = flt.fmt == "arrow"

    def encode(chunk: rp.Chunk) -> str | bytes:
        if merged:
            if arrow:
                return msg.merged_arrow(chunk.parts, chunk.order, chunk.position)
            return msg.merged_json(chunk.parts, chunk.order, chunk.position)
        channel, frame = chunk.parts[0]
        if arrow:
            return msg.frame_arrow(channel, frame, chunk.position)
        return msg.frame_json(channel, frame, chunk.position)

    async def emit(chunk: rp.Chunk, m: str | bytes) -> None:
        await sender.data(m, chunk.rows, mode)

    await replay.run(emit, encode)
    await sender.control("end", position=replay.position, rows=replay.rows_sent)


__all__ = ["router"]
