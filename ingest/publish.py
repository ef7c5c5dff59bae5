"""The collector's live feed: every batch QuestDB acknowledged, published on a Unix socket.

Why a local socket (docs/api.md, "Live streaming: how rows reach the API", measured with
``tickarchive bench stream --mechanisms``): the rows are in the writer's hands at the
moment QuestDB acknowledges them, as the exact ILP body QuestDB took. Handing that body
to a socket costs the collector one ``bytes`` reference per subscriber and adds
microseconds, where polling QuestDB by ``ts`` adds the WAL-apply delay plus half a poll
interval and a query load per poll, and PostgreSQL ``NOTIFY`` caps a payload at 8,000
bytes (a 100 ms batch is ~100 KB), puts the live feed on the warm store and needs
encoding.

The hook: ``QuestDBWriter(on_acked=publisher.acknowledged)``; the writer calls
``acknowledged(table, body, rows, upto_seq)`` once per table of a batch when QuestDB
answered 2xx for it, on the event loop, in flush order. ``acknowledged`` never blocks and
never raises: it tags the body with a position (``epoch`` = this publisher's start time
in µs, ``n`` = a counter) and appends one frame to a ring of recent frames
(``stream.publisher_ring_bytes``) and to every subscriber's queue.

Subscribers (the API processes) connect to ``stream.publish_socket`` and send a
``subscribe`` frame naming the last position they hold (or none, and whether they want
the whole ring: a starting API does). They get a ``hello``, then the ring's frames after
that position (same epoch and still in the ring; otherwise a ``gap`` frame saying the feed
has a hole), then every new frame. A subscriber whose queue
passes ``stream.publisher_queue_bytes`` is disconnected (it reconnects and resumes from
its position); the collector never waits for one.

The frames are ``tickarchive.livefeed``'s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickarchive.livefeed import PUBLISHED_TABLES, frame, read_frame
from tickarchive.settings import Settings

log = logging.getLogger(__name__)

@dataclass(slots=True)
class PublisherStats:
    published: int = 0
    """Frames published (tables of acknowledged batches)."""
    subscribers: int = 0
    dropped: int = 0
    """Subscribers disconnected for falling more than ``queue_bytes`` behind."""
    errors: collections.Counter[str] = field(default_factory=collections.Counter)


class _Subscriber:
    def __init__(self, writer: asyncio.StreamWriter, limit_bytes: int) -> None:
        self.writer = writer
        self.limit_bytes = limit_bytes
        self.queue: collections.deque[bytes] = collections.deque()
        self.bytes = 0
        self.wake = asyncio.Event()
        self.dropped = False

    def push(self, data: bytes) -> bool:
        """Queue ``data``; False when that would pass the limit (the subscriber is dropped)."""
        if self.dropped:
            return False
        if self.bytes + len(data) > self.limit_bytes:
            self.dropped = True
            self.queue.clear()
            self.bytes = 0
            self.wake.set()
            return False
        self.queue.append(data)
        self.bytes += len(data)
        self.wake.set()
        return True


class Publisher:
    """See the module docstring. ``run()`` serves until cancelled; ``acknowledged`` is the hook."""

    def __init__(self, path: Path, queue_bytes: int, ring_bytes: int) -> None:
        self.path = path
        self.queue_bytes = queue_bytes
        self.ring_bytes = ring_bytes
        self.epoch = time.time_ns() // 1000
        self._n = 0
        self._ring: collections.deque[tuple[int, bytes]] = collections.deque()
        self._ring_size = 0
        self._subs: set[_Subscriber] = set()
        self.stats = PublisherStats()
        self.listening = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    # ---- the hook (writer, event loop) ------------------------------------------------

    def acknowledged(self, table: str, body: bytes, rows: int, upto_seq: int) -> None:
        if table not in PUBLISHED_TABLES or not rows:
            return
        try:
            self._n += 1
            data = frame(
                {"k": "batch", "e": self.epoch, "n": self._n, "t": table, "r": rows, "a": time.time_ns() // 1000,
                 "s": upto_seq},
                body,
            )
            self.stats.published += 1
            if self.ring_bytes:
                self._ring.append((self._n, data))
                self._ring_size += len(data)
                while self._ring_size > self.ring_bytes and self._ring:
                    self._ring_size -= len(self._ring.popleft()[1])
            for sub in list(self._subs):
                if not sub.push(data):
                    self._drop(sub)
        except (OSError, ValueError) as exc:  # never let publishing disturb the writer
            self.stats.errors[type(exc).__name__] += 1

    def _drop(self, sub: _Subscriber) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            self.stats.dropped += 1
            self.stats.subscribers = len(self._subs)
            log.warning("publisher: a subscriber fell %d bytes behind; disconnected (it resumes)", self.queue_bytes)

    # ---- serving ------------------------------------------------------------------------

    async def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if await self._taken():
            log.error(
                "publisher: another process already publishes on %s; this collector publishes nothing "
                "(set stream.publish_socket to another path)", self.path,
            )
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a previous run
        server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o660)
        log.info("publisher: live feed on %s", self.path)
        self.listening.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            await self._close_subscribers()

    async def _close_subscribers(self) -> None:
        """Let every connection handler end on its own (not cancelled with the loop)."""
        for sub in list(self._subs):
            sub.dropped = True
            sub.wake.set()
        handlers = [t for t in self._handlers if not t.done()]
        if handlers:
            await asyncio.wait(handlers, timeout=5.0)

    async def _taken(self) -> bool:
        """Does a live process listen on ``path`` (not just a stale socket file)?"""
        if not self.path.exists():
            return False
        try:
            _, w = await asyncio.wait_for(asyncio.open_unix_connection(str(self.path)), timeout=2.0)
        except (OSError, TimeoutError):
            return False
        w.close()
        with contextlib.suppress(OSError):
            await w.wait_closed()
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sub = _Subscriber(writer, self.queue_bytes)
        me = asyncio.current_task()
        if me is not None:
            self._handlers.add(me)
            me.add_done_callback(self._handlers.discard)
        try:
            header, _ = await asyncio.wait_for(read_frame(reader, max_body=0), timeout=10.0)
            if header.get("k") != "subscribe":
                raise ValueError("expected a subscribe frame")
            after = header.get("after")
            oldest = [self.epoch, self._ring[0][0]] if self._ring else None
            sub.push(frame({"k": "hello", "e": self.epoch, "oldest": oldest}))
            if after is not None:
                self._backlog(sub, after)
            elif header.get("backlog"):
                for _, data in self._ring:
                    sub.push(data)
            self._subs.add(sub)
            self.stats.subscribers = len(self._subs)
            await self._send(sub, reader)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ValueError) as exc:
            log.info("publisher: subscriber gone (%s)", type(exc).__name__)
        finally:
            self._subs.discard(sub)
            self.stats.subscribers = len(self._subs)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _backlog(self, sub: _Subscriber, after: Any) -> None:
        """Queue the ring's frames after position ``after``, or a ``gap`` frame."""
        try:
            epoch, n = int(after[0]), int(after[1])
        except (TypeError, ValueError, IndexError):
            sub.push(frame({"k": "gap", "reason": "malformed resume position"}))
            return
        if epoch == self.epoch and n >= self._n:
            return  # nothing missed
        if epoch != self.epoch or not self._ring or self._ring[0][0] > n + 1:
            reason = "the collector restarted" if epoch != self.epoch else "the position left the publisher's ring"
            sub.push(frame({"k": "gap", "reason": reason}))
            return
        for pos, data in self._ring:
            if pos > n:
                sub.push(data)

    async def _send(self, sub: _Subscriber, reader: asyncio.StreamReader) -> None:
        closed = asyncio.ensure_future(reader.read(1))  # EOF (or anything) from the subscriber ends it
        try:
            while not sub.dropped:
                while sub.queue and not sub.dropped:
                    data = sub.queue.popleft()
                    sub.bytes -= len(data)
                    sub.writer.write(data)
                    await sub.writer.drain()
                if sub.dropped:
                    break
                sub.wake.clear()
                waiter = asyncio.ensure_future(sub.wake.wait())
                try:
                    done, _ = await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not waiter.done():
                        waiter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await waiter
                if closed in done:
                    return
        finally:
            if not closed.done():
                closed.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await closed


def publisher_of(settings: Settings) -> Publisher | None:
    """The publisher ``settings.stream`` asks for (None when ``stream.publish`` is off)."""
    st = settings.stream
    if not st.publish:
        return None
    return Publisher(st.publish_socket, st.publisher_queue_bytes, st.publisher_ring_bytes)
