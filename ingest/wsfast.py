"""A cheaper receive path for server → client WebSocket data frames (issue #7).

websockets' asyncio ``Connection`` feeds every received byte to its sans-I/O parser (a
generator per frame: ``Frame.parse`` over ``StreamReader.read_exact``, a ``Frame``
object, the ``Assembler`` queue) and ``recv()`` returns one message per await. At
40,000 frames/s that was a quarter of the collector's CPU. ``FastClientConnection``
keeps websockets for everything it does — the opening handshake, pings/pongs,
keepalive, closing, errors, flow control of its own queue — and adds a fast path for
the common case only:

* while ``protocol.state`` is OPEN and no fragmented message is in progress, every
  *complete* frame with FIN = 1, RSV1-3 = 0, opcode TEXT or BINARY and no mask (a server
  never masks; the collector connects with ``compression=None``, so no extension may set
  RSV bits) is sliced straight out of the received bytes, its payload appended to
  ``ready`` (a deque of ``bytes``) without running websockets' parser;
* any other *complete* frame (ping, pong, close, a fragment or continuation, RSV bits, a
  mask, a payload above ``max_size``) is handed alone, whole, to the real
  ``Connection.data_received`` (``protocol.receive_data`` + the normal event processing:
  the pong is written, a close starts the closing handshake, a protocol error fails the
  connection exactly as before);
* an incomplete frame at the end of a read stays in our own buffer until the rest
  arrives, so websockets' parser only ever sees whole frames and stays at a frame
  boundary; a frame whose header declares more than ``max_size`` is never buffered: it
  goes to websockets, which refuses it (``PayloadTooBig``, close code 1009), so memory is
  bounded by ``max_size`` (``protocol.max_message_size``) whatever a peer sends;
* once the state is not OPEN (closing, closed, failed) every byte goes to websockets
  for the rest of the connection;
* during the handshake websockets gets the bytes up to the end of the HTTP response
  headers only; what follows is scanned as above once the state is OPEN.

Order is preserved: a data message websockets itself parsed (a fragmented one, or
frames that arrived with the handshake response) leaves a ``None`` marker in ``ready``
where it belongs, and ``recv_batch`` fetches it from websockets' ``Assembler`` (with
``recv()``) at that position.

Flow control stays bounded: above ``high`` ready messages the transport stops reading
(``pause_reading``) until ``recv_batch`` brings it down to ``low``; websockets'
Assembler pauses the same transport for its own queue, and reading resumes only when
neither wants it paused.

Close, EOF and connection loss surface as before: every message received before them
is returned by ``recv_batch`` first, then it raises websockets' ``ConnectionClosed``
(from ``recv()``, i.e. ``close_exc`` with the same codes and causes). A partial frame
still in our buffer at EOF or connection loss is handed to websockets' parser first, so
its "stream ends after N bytes" error is the one it would have raised.

The scanner is ``tickarchive_native.ws_scan`` (Rust, ``native/src/wsframe.rs``) when the
native module is available and not switched off (``TICKARCHIVE_NATIVE=0``), else the
pure-Python ``scan_simple`` below; both are tested equal.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.messages import Assembler
from websockets.frames import BINARY, TEXT, Frame
from websockets.protocol import CONNECTING, OPEN, Event

from tickarchive import native_ext

__all__ = ["SCAN", "FastClientConnection", "frame_end", "scan_simple"]

READY_HIGH: Final = 1024
"""Ready messages above which the transport stops reading."""
READY_LOW: Final = 256
"""... and at or below which it reads again."""

_HEADERS_END: Final = b"\r\n\r\n"


def scan_simple(buf: bytes, pos: int, out: list[bytes]) -> int:
    """Append to ``out`` the payload of every complete simple data frame of ``buf`` from
    ``pos`` on (FIN, no RSV, TEXT or BINARY, unmasked) and return the offset where the
    scan stopped: the end of ``buf``, an incomplete frame, or any other frame."""
    n = len(buf)
    append = out.append
    while n - pos >= 2:
        b0 = buf[pos]
        if b0 != 0x81 and b0 != 0x82:
            break
        ln = buf[pos + 1]
        if ln < 126:
            start = pos + 2
        elif ln == 126:
            if n - pos < 4:
                break
            ln = (buf[pos + 2] << 8) | buf[pos + 3]
            start = pos + 4
        elif ln == 127:
            if n - pos < 10:
                break
            ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            start = pos + 10
        else:  # masked
            break
        end = start + ln
        if end > n:
            break
        append(buf[start:end])
        pos = end
    return pos


def frame_end(buf: bytes | bytearray, pos: int) -> int:
    """The offset just past the frame that starts at ``pos`` (any kind), or -1 while its
    header is incomplete."""
    n = len(buf)
    if n - pos < 2:
        return -1
    b1 = buf[pos + 1]
    ln = b1 & 0x7F
    h = 2
    if ln == 126:
        if n - pos < 4:
            return -1
        ln = (buf[pos + 2] << 8) | buf[pos + 3]
        h = 4
    elif ln == 127:
        if n - pos < 10:
            return -1
        ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        h = 10
    if b1 & 0x80:
        h += 4
    return pos + h + ln


SCAN: Final[Callable[[bytes, int, list[bytes]], int]] = native_ext.enabled("ws_scan") or scan_simple
"""The scanner in use (native when available)."""


class FastClientConnection(ClientConnection):
    """``ClientConnection`` with the fast receive path; read it with ``recv_batch``
    (``recv()`` still works for messages websockets parsed itself, but mixing both is
    not supported). Pass as ``connect(..., create_connection=FastClientConnection)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready: collections.deque[bytes | None] = collections.deque()
        """Messages in arrival order; ``None``: the next message of websockets' Assembler."""
        self.fast_frames = 0
        """Frames delivered by the fast path (tests, profiling)."""
        self._scan = SCAN
        self._tail = bytearray()
        """An incomplete frame (received, not yet complete)."""
        self._need = 0
        """Bytes ``_tail`` must hold before it is worth scanning again."""
        self._slow = False
        """Every byte goes to websockets from now on (state left OPEN)."""
        self._hs_seen = b""
        self._waiter: asyncio.Future[None] | None = None
        self._paused_ready = False
        self._paused_assembler = False
        self._reading_paused = False

    # ---- flow control: one transport, two queues ------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.recv_messages = Assembler(
            self.max_queue_high,
            self.max_queue_low,
            pause=self._pause_assembler,
            resume=self._resume_assembler,
        )

    def _pause_assembler(self) -> None:
        self._paused_assembler = True
        self._apply_pause()

    def _resume_assembler(self) -> None:
        self._paused_assembler = False
        self._apply_pause()

    def _apply_pause(self) -> None:
        want = self._paused_ready or self._paused_assembler
        if want != self._reading_paused:
            self._reading_paused = want
            if want:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    # ---- receiving -------------------------------------------------------------------

    def process_event(self, event: Event) -> None:
        # a data message websockets parsed: its place in the order (fragments: the first)
        if isinstance(event, Frame) and (event.opcode is TEXT or event.opcode is BINARY):
            self.ready.append(None)
            self._wake()
        super().process_event(event)

    def data_received(self, data: bytes) -> None:
        if self._slow:
            super().data_received(data)
            return
        if type(data) is not bytes:  # the scanners slice bytes (transports give bytes)
            data = bytes(data)
        state = self.protocol.state
        if state is not OPEN:
            if state is CONNECTING:
                self._handshake_data(data)
            else:
                self._go_slow(data)
            return
        tail = self._tail
        if tail:
            if len(tail) + len(data) < self._need:
                tail += data
                return
            end = frame_end(tail, 0)
            if end < 0:  # header incomplete: rare, join and rescan everything
                tail += data
                data = bytes(tail)
                tail.clear()
            else:
                k = end - len(tail)
                head = bytes(tail) + data[:k]
                tail.clear()
                self._feed(head)
                if self._slow:
                    if len(data) > k:
                        super().data_received(data[k:])
                    return
                if len(data) == k:
                    return
                data = data[k:]
        self._feed(data)

    def _handshake_data(self, data: bytes) -> None:
        """websockets gets the bytes up to the end of the response headers; the frames
        after them are ours once the handshake succeeded."""
        seen = self._hs_seen + data
        i = seen.find(_HEADERS_END)
        if i < 0:
            self._hs_seen = seen[-3:]
            super().data_received(data)
            return
        k = i + 4 - (len(seen) - len(data))
        self._hs_seen = b""
        super().data_received(data[:k])
        rest = data[k:]
        if not rest:
            return
        if self.protocol.state is OPEN and not self.protocol.reader.buffer:
            self._feed(rest)
        else:
            self._go_slow(rest)

    def _go_slow(self, data: bytes) -> None:
        self._slow = True
        tail = self._tail
        if tail:
            data = bytes(tail) + data
            tail.clear()
        super().data_received(data)

    def _feed(self, buf: bytes) -> None:
        """Deliver the frames of ``buf`` (it starts at a frame boundary)."""
        ready = self.ready
        protocol = self.protocol
        scan = self._scan
        n = len(buf)
        pos = 0
        out: list[bytes] = []
        while pos < n:
            if protocol.current_size is None:
                p = scan(buf, pos, out)
                if out:
                    ready.extend(out)
                    self.fast_frames += len(out)
                    out.clear()
                pos = p
                if pos >= n:
                    break
            end = frame_end(buf, pos)
            if end < 0 or end > n:  # incomplete: keep it for the next read
                limit = protocol.max_message_size
                if limit is not None and end - pos > limit + 14:
                    # larger than max_size: never buffered; websockets' parser refuses it
                    # from its header (PayloadTooBig, close 1009) and the connection ends
                    self._go_slow(buf[pos:])
                    break
                self._tail += buf[pos:]
                self._need = end - pos if end > 0 else n - pos + 1
                break
            # one whole frame for websockets: control, fragment, RSV, masked, too big
            self._wake()
            super().data_received(buf[pos:end])
            pos = end
            if protocol.state is not OPEN:
                if pos < n:
                    self._go_slow(buf[pos:])
                else:
                    self._slow = True
                break
        self._wake()
        if len(ready) > READY_HIGH and not self._paused_ready:
            self._paused_ready = True
            self._apply_pause()

    def _flush_tail(self) -> None:
        """At EOF or connection loss: the partial frame we held goes to websockets' parser
        (which then reports the truncated stream as it would have)."""
        tail = self._tail
        if tail:
            data = bytes(tail)
            tail.clear()
            self._slow = True
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():  # none: the frame is partial
                self.process_event(event)

    def eof_received(self) -> None:
        self._flush_tail()
        super().eof_received()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._flush_tail()
        super().connection_lost(exc)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def recv_batch(self, limit: int) -> list[bytes]:
        """The next messages, in order: every one already received (at most ``limit``),
        waiting for one if there is none. Raises ``ConnectionClosed`` once the
        connection is closed and every message received before was returned."""
        ready = self.ready
        while not ready:
            if self.recv_messages.closed:
                await self.recv(decode=False)  # raises ConnectionClosed
                raise AssertionError("a message outside the ready order")
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        out: list[bytes] = []
        popleft = ready.popleft
        while ready and len(out) < limit:
            item = ready[0]
            if item is None:
                if out:
                    break
                # websockets parsed this one (e.g. fragmented): may wait for the rest;
                # the marker is only dropped once it is returned (cancel-safe)
                msg = await self.recv(decode=False)
                popleft()
                out.append(msg)
                break
            out.append(item)
            popleft()
        if self._paused_ready and len(ready) <= READY_LOW:
            self._paused_ready = False
            self._apply_pause()
        return out
