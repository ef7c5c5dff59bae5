"""The thin asyncio driver of one venue ``Session`` (``tickarchive.venue``) over ``websockets`` (on uvloop).

Per connection (``c0``, ``c1``, ...), forever until cancelled:

1. take a token from the **global** reconnect limiter (``deribit.reconnects_per_s``,
   shared by every connection: 20 connections dropped together come back spread out);
2. connect; ``session.connection_made``; send ``set_heartbeat`` and the subscribe
   batches as the shared subscribe limiter releases them;
3. receive loop, **journal first**: ``journal.append(frame)`` (bytes exactly as
   received) *before* ``session.receive_frame``; the outputs go to the collector's
   ``on_outputs(driver, seq, outputs)``. If the journal is full (or below its free-space
   floor: the collector closes ``gate``), reading stops until it has room: back-pressure,
   never a dropped frame;
4. a timer task (owned, awaited) calls ``session.poll`` about once a second (stale
   watchdogs) and sends paced frames;
5. on any loss (close, error, ``ReconnectRequired``): ``session.connection_lost`` (the
   disconnect/stale gap), then capped exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from tickarchive.domain import EncodedRows
from tickarchive.ingest.errors import JournalFull
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.metrics import CollectorMetrics
from tickarchive.ingest.wsfast import FastClientConnection
from tickarchive.pacing import Backoff, TokenBucket
from tickarchive.venue import Output, Session

log = logging.getLogger(__name__)

_YIELD_EVERY = 32
"""Frames read before the receive loop yields to the event loop."""

OnOutputs = Callable[["ConnectionDriver", int, Sequence[Output]], None]


_LABEL_OF_TABLE: Final = {"quotes": "ticker", "book_changes": "book"}
_LAGGED: Final = frozenset({"ticker", "book", "trades", "index"})
_BATCH_MAX: Final = 256
"""Most frames journaled in one write (they are parsed right after, in order)."""


def now_us() -> int:
    return time.time_ns() // 1000


class ConnectionDriver:
    """Drives ``session`` over one WebSocket, reconnecting forever. ``run()`` is its task."""

    def __init__(
        self,
        session: Session,
        url: str,
        channel_label: Callable[[bytes], str],
        journal: Journal,
        on_outputs: OnOutputs,
        reconnect_limiter: TokenBucket,
        backoff: Backoff,
        metrics: CollectorMetrics | None = None,
        gate: asyncio.Event | None = None,
        open_timeout_s: float = 10.0,
        max_frame_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.session = session
        self.name = session.connection
        self.url = url
        self._channel_label = channel_label
        self.journal = journal
        self._on_outputs = on_outputs
        self._limiter = reconnect_limiter
        self._backoff = backoff
        self._metrics = metrics
        if metrics is not None:
            metrics.declare_connection(self.name)  # its series at 0 from the first scrape
        self._gate = gate
        self._open_timeout_s = open_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._ws: FastClientConnection | None = None
        self._kick = asyncio.Event()
        self._reconnect_reason: str | None = None
        self.connects = 0
        self.last_frame_us: int | None = None
        self.frames = 0
        self.last_error = ""
        self._counters: dict[str, Any] = {}
        self._lag: dict[str, Any] = {}
        self._uncounted: dict[str, int] = {}
        """Frames per ``channel`` label not yet added to ``tickarchive_frames_total``: the
        counter is bumped once per label every ``_YIELD_EVERY`` frames, once a second
        (timer) and when the socket closes, not once per frame."""

    # ---- control from the collector ------------------------------------------------

    def kick(self) -> None:
        """Send queued frames now (a listing subscribed, a resubscribe queued)."""
        self._kick.set()

    def request_reconnect(self, reason: str) -> None:
        """Close the socket (the session asked: silence, error 10028)."""
        ws = self._ws
        if ws is not None and self._reconnect_reason is None:
            self._reconnect_reason = reason
            log.warning("%s: reconnecting: %s", self.name, reason)
            ws.transport.abort()

    @property
    def local_address(self) -> tuple[str, int] | None:
        """(host, port) of our end of the socket while connected."""
        ws = self._ws
        if ws is None:
            return None
        addr = ws.local_address
        return (str(addr[0]), int(addr[1]))

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.session.connected

    # ---- the task --------------------------------------------------------------------

    async def run(self) -> None:
        m = self._metrics
        while True:
            await self._take_reconnect_token()
            healthy = False
            try:
                async with connect(
                    self.url,
                    open_timeout=self._open_timeout_s,
                    max_size=self._max_frame_bytes,
                    compression=None,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    create_connection=FastClientConnection,
                ) as ws:
                    assert isinstance(ws, FastClientConnection)
                    self._ws = ws
                    self.connects += 1
                    if self.connects > 1 and m is not None:
                        m.reconnects.labels(connection=self.name).inc()
                    if m is not None:
                        m.connection_up.labels(connection=self.name).set(1)
                    log.info("%s: connected to %s", self.name, self.url)
                    healthy = await self._serve(ws)
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                self._reconnect_reason = None
                if m is not None:
                    m.connection_up.labels(connection=self.name).set(0)
                    m.subscribed_channels.labels(connection=self.name).set(0)
                outs = self.session.connection_lost(now_us())
                if outs:
                    self._on_outputs(self, 0, outs)
            if healthy:
                self._backoff.reset()
            delay = self._backoff.next_delay_s()
            log.warning(
                "%s: connection to %s lost or refused (%s); reconnecting in %.1f s",
                self.name,
                self.url,
                self.last_error or "closed",
                delay,
            )
            await asyncio.sleep(delay)

    async def _take_reconnect_token(self) -> None:
        limiter = self._limiter
        for _ in range(1_000_000):
            if limiter.try_acquire(now_us()):
                return
            await asyncio.sleep(max(limiter.wait_us(now_us()) / 1e6, 0.001))

    async def _serve(self, ws: FastClientConnection) -> bool:
        """Until the socket closes; True if it carried data (the backoff resets)."""
        session = self.session
        session.connection_made(now_us())
        await self._send_pending(ws)
        timer = asyncio.get_running_loop().create_task(self._timer(ws), name=f"{self.name}-timer")
        frames_before = self.frames
        try:
            await self._read(ws)
        except ConnectionClosed as exc:
            self.last_error = f"closed: {exc}"
        finally:
            if self._metrics is not None:
                self._flush_counts()
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await timer
        if self._reconnect_reason is not None:
            self.last_error = self._reconnect_reason
        return self.frames - frames_before > 0 and bool(session.subscribed_channels or session.notifications)

    async def _read(self, ws: FastClientConnection) -> None:
        session = self.session
        on_outputs = self._on_outputs
        gate = self._gate
        m = self._metrics
        n = 0
        while True:
            if gate is not None and not gate.is_set():
                await gate.wait()
            n += 1
            if n >= _YIELD_EVERY:
                n = 0
                if m is not None:
                    self._flush_counts()
                # recv_batch() returns buffered messages without suspending: under a
                # backlog this loop would starve the fsync timer, the writer and the
                # other connections
                await asyncio.sleep(0)
            # every whole message already received (ingest/wsfast.py) is one batch: one
            # journal write for all of them, each journaled before any is parsed
            batch = [(raw, now_us()) for raw in await ws.recv_batch(_BATCH_MAX)]
            n += len(batch) - 1
            seq = await self._append_many(batch)
            # no await until the whole batch is offered: another connection's records
            # (later seqs) must not reach the writer between two of ours
            send = False
            for frame, recv in batch:
                self.frames += 1
                self.last_frame_us = recv
                outs = session.receive_frame(frame, recv)
                if m is not None:
                    self._count(frame, recv, outs)
                on_outputs(self, seq, outs)
                seq += 1
                if not send and session.next_send_us(recv) == recv:
                    send = True
            if send:
                await self._send_pending(ws)

    async def _append_many(self, frames: list[tuple[bytes, int]]) -> int:
        """Journal the frames (seq of the first); on a full disk wait (back-pressure) and retry."""
        warned = False
        while True:
            try:
                return self.journal.append_many(frames, self.name)
            except JournalFull as exc:
                if not warned:
                    log.error("%s: JOURNAL FULL, not reading the socket until there is room: %s", self.name, exc)
                    warned = True
                await asyncio.sleep(1.0)

    def _count(self, frame: bytes, recv_us: int, outs: Sequence[Output]) -> None:
        first = outs[0] if outs else None
        # the native path's rows name their table, which names the channel
        label = _LABEL_OF_TABLE[first.table] if type(first) is EncodedRows else self._channel_label(frame)
        u = self._uncounted
        u[label] = u.get(label, 0) + 1
        if first is not None and label in _LAGGED:
            ts = getattr(first, "ts_us", None)
            if ts is not None:
                h = self._lag.get(label)
                if h is None:
                    m = self._metrics
                    assert m is not None
                    h = m.exchange_lag.labels(label)
                    self._lag[label] = h
                lag = (recv_us - ts) / 1e6
                h.observe(lag if lag > 0.0 else 0.0)

    def _flush_counts(self) -> None:
        """Add the frames counted since the last call to ``tickarchive_frames_total``
        (labelled children cached per channel label)."""
        u = self._uncounted
        if not u:
            return
        m = self._metrics
        assert m is not None
        counters = self._counters
        for label, k in u.items():
            c = counters.get(label)
            if c is None:
                c = counters[label] = m.frame_counter(self.name, label)
            c.inc(k)
        u.clear()

    async def _send_pending(self, ws: ClientConnection) -> None:
        for frame in self.session.data_to_send(now_us()):
            await ws.send(frame, text=True)

    async def _timer(self, ws: ClientConnection) -> None:
        session = self.session
        m = self._metrics
        last_poll = 0.0
        while True:
            now = now_us()
            if time.monotonic() - last_poll >= 1.0:
                last_poll = time.monotonic()
                outs = session.poll(now)
                if outs:
                    self._on_outputs(self, 0, outs)
                if m is not None:
                    self._flush_counts()
                    m.subscribed_channels.labels(connection=self.name).set(len(session.subscribed_channels))
                    if self.last_frame_us is not None:
                        m.last_frame.labels(connection=self.name).set(self.last_frame_us / 1e6)
            await self._send_pending(ws)
            nxt = session.next_send_us(now_us())
            wait = 1.0 if nxt is None else min(1.0, max((nxt - now_us()) / 1e6, 0.0))
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()
