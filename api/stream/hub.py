"""The live fan-out: one feed from the collector, many WebSocket clients.

Per acknowledged batch (one table's rows, as QuestDB took them) the hub decodes the ILP
once (``api.stream.ilp``), drops rows a restarted collector publishes a second time, keeps
the batch in a bounded ring for resuming clients (``stream.resume_buffer_bytes``), and
fans it out: clients are grouped by their subscription (``Filter.key``); each group's
rows are selected and encoded **once**, and the same ``str``/``bytes`` object is queued
to every client of the group. Each client has a bounded queue
(``stream.client_queue_messages``); a client whose queue is full is dropped (closed with
code 4008 naming its last position) and nobody else waits for it: queuing never blocks.

Resuming: a client that sends ``resume=<epoch>.<n>`` gets the ring's batches after that
position (``resume=oldest``: everything the ring holds), re-encoded for it, before the live
ones; all of it happens between two batches on the event loop, so nothing falls between
the backlog and the live flow. A position the
ring no longer holds gets an ``interrupted`` message instead (use replay for that time).

Duplicates: the store de-duplicates on each table's dedup keys (``tickarchive.tables``);
the feed may carry a key twice (a trade backfilled from the history while the live copy
was in flight; after a collector restart, the journal replayed from the last checkpoint).
The hub remembers the keys of the last ``stream.dedup_rows`` rows and publishes each key
once, the first version it saw. Gap rows are the exception: a gap is published again when
it changes (opened, then closed or backfilled); the last version is the stored one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tickarchive.api.metrics import ApiMetrics
from tickarchive.api.stream import messages as msg
from tickarchive.api.stream.feed import Feed, LiveBatch
from tickarchive.api.stream.filters import Filter
from tickarchive.api.stream.ilp import IlpDecodeError, decode
from tickarchive.settings import Settings
from tickarchive.tables import BY_NAME

log = logging.getLogger(__name__)

Message = tuple[str | bytes, int, str | None]
"""(the encoded message, its rows, its position): one object shared by every client it goes to."""


def position_text(pos: tuple[int, int]) -> str:
    return f"{pos[0]}.{pos[1]}"


def parse_position(text: str) -> tuple[int, int] | None:
    e, dot, n = text.partition(".")
    if not dot or not e.isdigit() or not n.isdigit():
        return None
    return int(e), int(n)


@dataclass(slots=True)
class Entry:
    """A ring entry: a decoded batch, or a hole in the feed (``rows`` None)."""

    seq: int
    position: tuple[int, int] | None
    table: str
    rows: list[tuple[Any, ...]] | None
    acked_us: int
    size: int
    reason: str = ""


@dataclass(eq=False)
class LiveClient:
    filter: Filter
    limit: int
    queue: collections.deque[Message] = field(default_factory=collections.deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    backlog: list[Entry] = field(default_factory=list)
    dropped: bool = False
    closing: bool = False
    """The server is shutting down: close the stream (the client resumes elsewhere/later)."""
    last_position: str | None = None

    def push(self, m: Message) -> bool:
        if self.dropped:
            return False
        if len(self.queue) >= self.limit:
            self.dropped = True
            self.queue.clear()
            self.wake.set()
            return False
        self.queue.append(m)
        self.wake.set()
        return True


class StreamHub:
    def __init__(self, settings: Settings, metrics: ApiMetrics) -> None:
        self.settings = settings
        st = settings.stream
        self.metrics = metrics
        self.feed = Feed(st.publish_socket)
        self.client_limit = st.client_queue_messages
        self.ring_limit = st.resume_buffer_bytes
        self.dedup_rows = st.dedup_rows
        self._ring: collections.deque[Entry] = collections.deque()
        self._ring_bytes = 0
        self._index: dict[tuple[int, int], int] = {}
        self._seq = 0
        self._groups: dict[tuple[object, ...], tuple[Filter, set[LiveClient]]] = {}
        self._epoch: int | None = None
        self._recent: collections.deque[tuple[Any, ...]] = collections.deque()
        self._recent_set: set[tuple[Any, ...]] = set()
        self.batches = 0
        self.duplicates_dropped = 0
        self.last_batch_at: float | None = None
        self._keys = {
            name: tuple(BY_NAME[name].column_names.index(k) for k in BY_NAME[name].dedup_keys)
            for name in msg.CHANNELS
        }

    # ---- lifecycle --------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.feed.run(self.on_batch, self.on_gap)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Tell every live client's pump to close its stream (the app is stopping)."""
        for _, clients in self._groups.values():
            for c in clients:
                c.closing = True
                c.wake.set()

    def status(self) -> dict[str, Any]:
        age = None if self.last_batch_at is None else round(time.monotonic() - self.last_batch_at, 3)
        return {
            "feed_connected": self.feed.connected,
            "clients": sum(len(c) for _, c in self._groups.values()),
            "batches": self.batches,
            "last_batch_age_s": age,
        }

    # ---- clients ----------------------------------------------------------------------

    def attach(self, flt: Filter, resume: str | None) -> LiveClient:
        """Register a client (with its backlog when ``resume`` names a position)."""
        client = LiveClient(flt, self.client_limit)
        if resume == "oldest":
            client.backlog.extend(self._ring)
        elif resume:
            pos = parse_position(resume)
            seq = self._index.get(pos) if pos is not None else None
            if seq is None:
                client.backlog.append(
                    Entry(0, None, "", None, 0, 0, "the resume position is not held any more (or never was): "
                          "the rows since it must be replayed")
                )
            else:
                first = self._ring[0].seq
                client.backlog.extend(list(self._ring)[seq - first + 1 :])
        key = flt.key
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = (flt, set())
        group[1].add(client)
        self.metrics.streams.labels("live").inc()
        return client

    def detach(self, client: LiveClient) -> None:
        group = self._groups.get(client.filter.key)
        if group is not None and client in group[1]:
            group[1].discard(client)
            if not group[1]:
                del self._groups[client.filter.key]
            self.metrics.streams.labels("live").dec()

    def encode(self, flt: Filter, entry: Entry) -> Message | None:
        """``entry`` as ``flt``'s clients receive it (None: nothing of it is wanted)."""
        if entry.rows is None:
            return (msg.control("interrupted", reason=entry.reason), 0, None)
        table = entry.table
        if table not in flt.channels:
            return None
        rows = entry.rows if flt.everything else self._select(flt, table, entry.rows)
        if not rows:
            return None
        pos = position_text(entry.position) if entry.position is not None else None
        if flt.fmt == "arrow":
            return (msg.frame_arrow(table, msg.rows_frame(table, rows), pos, entry.acked_us), len(rows), pos)
        return (msg.rows_json(table, rows, pos, entry.acked_us), len(rows), pos)

    @staticmethod
    def _select(flt: Filter, table: str, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        i = BY_NAME[table].column_names.index("instrument")
        return [r for r in rows if flt.wants(table, r[i])]

    # ---- the feed -------------------------------------------------------------------------

    def on_gap(self, reason: str) -> None:
        self.metrics.stream_interruptions.inc()
        self._append(Entry(0, None, "", None, int(time.time() * 1e6), 64, f"live feed interrupted: {reason}"))
        notice: Message = (msg.control("interrupted", reason=f"live feed interrupted: {reason}"), 0, None)
        self._fan(lambda flt: notice)

    def on_batch(self, b: LiveBatch) -> None:
        if b.table not in self._keys:
            return
        try:
            rows = decode(b.body).get(b.table, [])
        except IlpDecodeError as exc:
            log.error("stream: undecodable batch %s.%s (%s); skipped", b.epoch, b.n, exc)
            return
        rows = self._dedup(b.epoch, b.table, rows)
        self.batches += 1
        self.last_batch_at = time.monotonic()
        if not rows:
            return
        entry = Entry(0, b.position, b.table, rows, b.acked_us, len(b.body))
        self._append(entry)
        self._fan(lambda flt: self.encode(flt, entry))

    def _fan(self, encode: Any) -> None:
        for flt, clients in list(self._groups.values()):
            m = encode(flt)
            if m is None:
                continue
            for c in list(clients):
                if not c.push(m):
                    self.metrics.stream_dropped.inc()

    def _append(self, entry: Entry) -> None:
        self._seq += 1
        entry.seq = self._seq
        self._ring.append(entry)
        self._ring_bytes += entry.size
        if entry.position is not None:
            self._index[entry.position] = entry.seq
        while self._ring and self._ring_bytes > self.ring_limit:
            old = self._ring.popleft()
            self._ring_bytes -= old.size
            if old.position is not None:
                self._index.pop(old.position, None)

    def _dedup(self, epoch: int, table: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Drop rows whose dedup key was published among the last ``dedup_rows`` rows (gap
        rows excepted: a gap's later version carries its end and status)."""
        if self.dedup_rows <= 0:
            return rows
        self._epoch = epoch
        idx = self._keys[table]
        recent, seen = self._recent, self._recent_set
        out = []
        for r in rows:
            k = (table, *(r[i] for i in idx))
            if k in seen and table != "gaps":
                self.duplicates_dropped += 1
                continue
            if k not in seen:
                recent.append(k)
                seen.add(k)
            out.append(r)
        while len(recent) > self.dedup_rows:
            seen.discard(recent.popleft())
        return out
