"""One client WebSocket: its bounded send queue, writer and per-connection faults.

Frames reach a connection in batches (one per generator step): ``add`` (a JSON payload)
or ``add_wire`` (an already framed message, shared by every subscriber) collects, and
``flush`` decides each batch's fate — withheld (silence fault: logged ``silenced``),
queued, or, when the queue would pass ``send_queue_frames``, the end of the connection
with reason ``connection_too_slow`` (queued frames logged ``too_slow``). The writer task
writes everything queued in one go (one transport write and one drain per wake-up) and
logs the records ``sent``. Nothing is buffered without bound.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tickarchive.loadtest.sim import sendlog as sl
from tickarchive.loadtest.sim.encode import Record
from tickarchive.loadtest.sim.rpc import Session

Batch = tuple[list[bytes], list[Record]]
"""WebSocket frames (header + payload) and the send-log records of the market data among them."""
TOO_SLOW_REASON = "connection_too_slow"


def wall_us() -> int:
    return time.time_ns() // 1000


class Connection:
    def __init__(self, conn_id: str, ws: ServerConnection, session: Session, log: sl.SendLog, max_frames: int) -> None:
        self.id = conn_id
        self.ws = ws
        self.session = session
        self.log = log
        self.max_frames = max_frames
        self.wires: list[bytes] = []
        self.recs: list[Record] = []
        """The batch being collected."""
        self.queue: deque[Batch] = deque()
        self.pending = 0
        self.wake = asyncio.Event()
        self.control = asyncio.Event()
        """Set when the heartbeat settings change or a close is requested."""
        self.closed = False
        self.close_request: tuple[int, str] | None = None
        self.connected_us = wall_us()
        self.remote = str(ws.remote_address)
        # faults
        self.silenced_until = 0.0
        self.extra_fields_left = 0
        self.heartbeat_s = 0.0
        self.heartbeat_delay_s = 0.0
        self.heartbeat_delay_until = 0.0
        self.heartbeat_withhold_until = 0.0
        self.frames_sent = 0
        self.bytes_sent = 0

    # ---- producing ------------------------------------------------------------------

    def add(self, frame: bytes, rec: Record | None) -> None:
        """Queue the text message ``frame`` (a JSON payload); ``rec`` if it is market data."""
        if rec is not None:
            if self.extra_fields_left:
                self.extra_fields_left -= 1
                frame = with_unknown_field(frame)
            self.recs.append(rec)
        self.wires.append(ws_frame(frame))

    def add_wire(self, wire: bytes, rec: Record) -> None:
        """Queue a market-data message already framed by ``ws_frame`` (the fan-out path)."""
        if self.extra_fields_left:
            self.add(ws_payload(wire), rec)
            return
        self.wires.append(wire)
        self.recs.append(rec)

    def silenced(self) -> bool:
        return time.monotonic() < self.silenced_until

    def flush(self) -> None:
        if not self.wires:
            return
        batch = (self.wires, self.recs)
        self.wires = []
        self.recs = []
        n = len(batch[0])
        if self.closed or self.close_request is not None:
            closing_slow = self.close_request is not None and self.close_request[1] == TOO_SLOW_REASON
            self._log_unsent(batch, sl.TOO_SLOW if closing_slow else sl.DROPPED)
        elif self.silenced():
            self._log_unsent(batch, sl.SILENCED)
        elif self.pending + n > self.max_frames:
            self._log_unsent(batch, sl.TOO_SLOW)
            self.discard_queue(sl.TOO_SLOW)
            self.request_close(1008, TOO_SLOW_REASON)
        else:
            self.queue.append(batch)
            self.pending += n
            self.wake.set()

    def _log_unsent(self, batch: Batch, status: str) -> None:
        if batch[1]:
            self.log.record(self.id, status, wall_us(), batch[1])

    def discard_queue(self, status: str) -> None:
        while self.queue:
            self._log_unsent(self.queue.popleft(), status)
        self.pending = 0

    def request_close(self, code: int, reason: str) -> None:
        if self.close_request is None and not self.closed:
            self.close_request = (code, reason)
            self.control.set()

    # ---- tasks ------------------------------------------------------------------------

    async def writer(self) -> None:
        ws = self.ws
        while not self.closed:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            batches = list(self.queue)
            self.queue.clear()
            n = sum(len(wires) for wires, _ in batches)
            try:
                await send_wire(ws, b"".join(itertools.chain.from_iterable(wires for wires, _ in batches)))
            except ConnectionClosed:
                for batch in batches:
                    self._log_unsent(batch, sl.DROPPED)
                self.pending = 0
                self.closed = True
                return
            self.pending = max(0, self.pending - n)
            self.frames_sent += n
            now = wall_us()
            for _, recs in batches:
                if recs:
                    self.log.record(self.id, sl.SENT, now, recs)

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "remote": self.remote,
            "connected_us": self.connected_us,
            "channels": len(self.session.channels),
            "pending_frames": self.pending,
            "frames_sent": self.frames_sent,
            "silenced": self.silenced(),
            "closed": self.closed,
        }


def ws_header(n: int) -> bytes:
    """Header of an unmasked, final text frame of ``n`` payload bytes (RFC 6455 5.2)."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


WS_HEADERS_UPTO = 8192
WS_HEADERS = [ws_header(n) for n in range(WS_HEADERS_UPTO)]
"""Headers of the usual payload sizes, built once."""


def ws_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, final WebSocket text frame (header + payload)."""
    n = len(payload)
    return (WS_HEADERS[n] if n < WS_HEADERS_UPTO else ws_header(n)) + payload


def ws_payload(wire: bytes) -> bytes:
    """The payload of a frame built by ``ws_frame``."""
    n = wire[1]
    return wire[2:] if n < 126 else wire[4:] if n == 126 else wire[10:]


async def send_wire(ws: ServerConnection, data: bytes) -> None:
    """Write ready-made frames (``ws_frame``) with one transport write.

    At 100k frames/s, websockets' per-message path (frame object, serialisation, one
    transport write each) dominates the simulator's CPU. Server frames are unmasked and
    our payloads are complete UTF-8 JSON, so the frame bytes are built by ``ws_frame``
    (once per message, however many subscribers share it) and written inside websockets'
    own ``send_context`` (which checks the connection is open and applies the
    write-buffer flow control). The sans-I/O protocol does not track outgoing data
    frames, so its state stays correct.
    """
    async with ws.send_context():
        ws.transport.write(data)


def with_unknown_field(frame: bytes) -> bytes:
    """Add an unknown field to a notification's data (the object, or the last element of
    an array of objects), as Deribit does when it grows its schemas."""
    if frame.endswith(b"}}}"):
        return frame[:-3] + b',"sim_unknown_field":{"note":"unknown fields must be kept"}}}}'
    if frame.endswith(b"}]}}"):
        return frame[:-4] + b',"sim_unknown_field":42}]}}'
    return frame


def malformed_frames(count: int) -> list[bytes]:
    shapes = (
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.ETH',
        b"not json at all",
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":null,"data":[]}}',
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.ETH-1JAN30-1000-C.100ms","data":"x"}}',
    )
    return [shapes[i % len(shapes)] for i in range(count)]
