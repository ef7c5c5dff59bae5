"""The collector's QuestDB writer: journal positions in, acknowledged rows out.

ILP over HTTP (``tickarchive.store.ilp_http``: one ``POST /write`` per table, keep-alive), the
writer's own per-table encoder (``tickarchive.store.ilp.IlpEncoder``: ``Buffer`` rows and
a venue's pre-encoded ``EncodedRows``), its own flush timer and row threshold, and
**one transaction per table per flush**. The contract with the journal
(docs/journal.md), which the writer sees only through ``JournalView`` and a ``decode``
function (the collector's: side records, else the venue's ``rows_of_frame``):

* Every journal record is *offered* once, in seq order, with the events it produced
  (``offer(seq, events)``; records without events too, so positions stay contiguous).
  Events that are not in any frame (gaps, heartbeats, backfilled trades) come through
  ``add_side`` and ride along with the next flush.
* A flush takes every buffered row (``IlpEncoder.take``) as one *batch* tagged with
  the last journal seq whose events it completes. Batches are flushed strictly in order;
  the tables of one batch are sent concurrently (one transport per table, each request
  in its own ``asyncio.to_thread``), and a table acknowledged is never sent again. Only
  when every table of the batch is acknowledged does ``Journal.commit(seq)`` advance
  the checkpoint.
* On failure the batch is kept (its request bodies are immutable ``bytes``), the
  writer backs off (``writer.retry_min_s`` .. ``retry_max_s``) and keeps
  accepting rows; the sockets keep being read and journaled.
* Past ``writer.max_buffered_rows`` the writer stops taking offers (*catch-up mode*):
  what it did not take is in the journal, and it reads it back from there
  (``JournalView.read_from``) once QuestDB accepts rows again, decoding each record with
  ``decode`` (the live path's parsers), until it reaches the journal's end and turns live again. Start-up is the same
  path: the writer starts in catch-up mode at ``acked_seq + 1`` and DEDUP keys absorb
  the overlap with rows already stored.

Durability: QuestDB acknowledges a commit once it is in its WAL files, which survives a
crash of QuestDB (the page cache outlives the process) but, in its default commit mode
(``questdb.commit_mode = nosync``), not an OS crash or a power loss, which can cost the
commits of the last ~30 s (the kernel's write-back delay). So at every start the writer
reads back from the journal not only what is unacknowledged but also what was
acknowledged within ``writer.replay_window_s`` before the checkpoint (60 s by default);
DEDUP keys make the repeat harmless. ``questdb.commit_mode = sync`` makes every commit
durable before it is acknowledged instead, at a cost ``tickarchive bench durability``
measures (docs/journal.md).

Everything runs on the collector's event loop except the blocking HTTP request
(``asyncio.to_thread``, which releases the GIL on network I/O).

Metrics: ``tickarchive_ack_lag_seconds`` (exchange ts → acknowledgement) gets two
observations per acknowledged batch holding live market rows: the age of its oldest and
of its newest *live market row* (quotes, ``ws`` trades, book changes, index ticks; gaps,
heartbeats, instruments and backfilled trades carry old or no exchange times and are left
out). ``tickarchive_ticks_total`` is counted per table when a batch is taken (one
``inc`` per table per flush, not one per frame).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tickarchive.domain import BookChange, EncodedRows, Event, IndexTick, QuoteTick, TradeSource, TradeTick
from tickarchive.pacing import Backoff
from tickarchive.rows import TABLE_OF_EVENT
from tickarchive.settings import WriterSettings
from tickarchive.store.errors import IlpHttpError
from tickarchive.store.ilp import IlpEncoder
from tickarchive.store.ilp_http import IlpHttpTransport
from tickarchive.store.isolate import isolate, row_level
from tickarchive.store.writer_contract import JournalView, RecordView, Refused, Rows, WriterMetrics, WriterStats

log = logging.getLogger(__name__)

_CATCH_UP_ROWS = 5_000
"""Rows encoded per catch-up step before the writer flushes and yields."""
_REORDER_MAX = 4096
"""Records ``offer`` holds while waiting for an earlier seq (see ``offer``)."""
SUSPECT_ROUNDS = 3
"""Rounds a table of only rows QuestDB refuses alone with a 500 is retried before they are
set aside (a 500 may be the server failing: see ``tickarchive.store.isolate``)."""
COMMIT_INTERVAL_S = 1.0
"""Checkpoint writes are throttled to one per this many seconds (see ``_commit``)."""

@dataclass(slots=True)
class _Batch:
    from_seq: int
    upto_seq: int
    tables: dict[str, tuple[bytes, int]]
    """table -> (request body, rows)"""
    oldest_ts_us: int | None
    """Exchange ts of the batch's oldest live market row (``None``: none in the batch)."""
    newest_ts_us: int | None
    rows: int
    rounds: dict[str, int] = field(default_factory=dict)
    """table -> isolations that ended in a retry (a table of only suspect rows)."""


class QuestDBWriter:
    """See the module docstring. ``run()`` is the writer task; ``offer``/``add_side`` are
    called synchronously by the connection tasks on the same event loop."""

    def __init__(
        self,
        conf: str,
        settings: WriterSettings,
        journal: JournalView,
        decode: Callable[[RecordView], Rows],
        metrics: WriterMetrics | None = None,
        transport_factory: Callable[[str], IlpHttpTransport] | None = None,
        on_refused: Callable[[Refused], None] | None = None,
        on_acked: Callable[[str, bytes, int, int], None] | None = None,
    ) -> None:
        """``on_acked(table, body, rows, upto_seq)``: called on the event loop for each table
        of a batch once QuestDB acknowledged it (the live feed, ``tickarchive.ingest.publish``);
        it must not block or raise."""
        self.conf = conf
        self.settings = settings
        self.journal = journal
        self._decode = decode
        self._on_refused = on_refused
        self.metrics = metrics
        self._factory = transport_factory or IlpHttpTransport.from_conf
        self._on_acked = on_acked
        self._senders: dict[str, IlpHttpTransport] = {}
        """One per table, so the tables of a batch are flushed concurrently."""
        self._enc = IlpEncoder(protocol_version=2)
        self._buffered = 0
        self._pending: collections.deque[_Batch] = collections.deque()
        self._pending_rows = 0
        self._oldest_ts: int | None = None
        self._newest_ts: int | None = None
        self._ticks_children: dict[str, Any] = {}
        self._held: dict[int, Sequence[Event | EncodedRows]] = {}
        self.next_seq = journal.replay_start(int(settings.replay_window_s * 1e6))
        """The first journal record whose events are not in a buffer yet: at start, the
        records acknowledged within ``writer.replay_window_s`` before the checkpoint are
        read back too (see the module docstring, "Durability")."""
        self.replayed_records = journal.acked_seq + 1 - self.next_seq
        """Records before the checkpoint read back at start (the safety window)."""
        self.live = False
        """True: taking offers; False: reading the journal (start-up, after falling behind)."""
        self.stats = WriterStats()
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()
        self._backoff = Backoff(settings.retry_min_s, settings.retry_max_s)
        self._retry_at = 0.0
        self._failing_since: float | None = None
        self._last_error = ""
        self._closed = False
        self._reader: Generator[RecordView, None, None] | None = None
        self._acked_upto = journal.acked_seq
        self._batch_from = self.next_seq
        self._committed_at = 0.0

    # ---- feeding (synchronous, event loop) ------------------------------------------

    @property
    def buffered_rows(self) -> int:
        """Rows encoded and not yet acknowledged."""
        return self._buffered + self._pending_rows

    @property
    def acked_seq(self) -> int:
        """Last journal seq whose rows QuestDB acknowledged (the durable checkpoint may
        lag by up to ``COMMIT_INTERVAL_S``)."""
        return max(self._acked_upto, self.journal.acked_seq)

    @property
    def healthy(self) -> bool:
        """False while flushes fail."""
        return self._failing_since is None

    def offer(self, seq: int, events: Sequence[Event | EncodedRows]) -> None:
        """The events of journal record ``seq`` (possibly none). Ignored (and read back
        from the journal later) unless the writer is live.

        Records are taken in seq order. A record offered ahead of its turn is held until
        the ones before it arrive: a connection journals a batch of frames and then offers
        them one by one, and a side record (a gap row) journaled while that batch is being
        offered gets a later seq than the batch's rest. More than ``_REORDER_MAX`` held
        records, or a seq already passed, and the writer reads the journal instead."""
        if not self.live:
            return
        if seq != self.next_seq:
            held = self._held
            if seq > self.next_seq and len(held) < _REORDER_MAX:
                held[seq] = events
                return
            log.warning("writer: offered seq %d, expected %d; catching up from the journal", seq, self.next_seq)
            self.stats.out_of_order_offers += 1
            self.live = False
            held.clear()
            return
        self._accept(seq, events)
        held = self._held
        while held and self.live:
            nxt = held.pop(self.next_seq, None)
            if nxt is None:
                break
            self._accept(self.next_seq, nxt)
        if not self.live:
            held.clear()

    def _accept(self, seq: int, events: Sequence[Event | EncodedRows]) -> None:
        self.stats.offered_records += 1
        self.next_seq = seq + 1
        if events:
            self._encode(events, seq)
            if self.buffered_rows >= self.settings.max_buffered_rows:
                log.warning(
                    "writer: %d rows buffered (writer.max_buffered_rows); reading the journal instead of memory",
                    self.buffered_rows,
                )
                self.live = False
                self.stats.catch_up_entries += 1
            if self._buffered >= self.settings.flush_rows:
                self._wake.set()

    def add_side(self, events: Iterable[Event]) -> None:
        """Rows not derived from a journal record (gaps, heartbeats, backfills)."""
        evs = list(events)
        if evs:
            self._encode(evs, None)

    def _encode(self, events: Sequence[Event | EncodedRows], seq: int | None) -> None:
        enc = self._enc
        n = enc.add_all(events)
        if enc.unencodable:  # a value the client cannot write: that row alone is set aside
            at = seq if seq is not None else self.next_seq - 1
            self._refuse_events(enc.take_unencodable(), (at, at))
        self._buffered += n
        # ack-lag bounds from live market rows only; a frame's events are of one kind and
        # (near) one time, so its first and last event stand for it
        first = events[0]
        last = events[-1]
        for ev in (first, last) if last is not first else (first,):
            t = type(ev)
            if t in _LIVE_TYPES and (t is not TradeTick or ev.source is TradeSource.WS):  # type: ignore[union-attr]
                ts: int = ev.ts_us  # type: ignore[union-attr]
                if self._oldest_ts is None or ts < self._oldest_ts:
                    self._oldest_ts = ts
                if self._newest_ts is None or ts > self._newest_ts:
                    self._newest_ts = ts

    # ---- catch-up from the journal ----------------------------------------------------

    def _catch_up_step(self) -> None:
        """Encode journal records from ``next_seq`` on, up to the memory bound (at most
        ``_CATCH_UP_ROWS`` per step, so the event loop keeps turning); turn live when the
        end of the journal is reached. The journal iterator is kept between steps (no
        re-seek) until it runs dry."""
        j = self.journal
        if self.next_seq >= j.next_seq:
            self._close_reader()
            self.live = True
            return
        room = self.settings.max_buffered_rows - self.buffered_rows
        if room <= 0:
            return
        budget = min(room, _CATCH_UP_ROWS)
        it = self._reader
        if it is None:
            self._reader = it = j.read_from(self.next_seq)
        for rec in it:
            if rec.seq < self.next_seq:
                continue
            events = self._decode(rec)
            if events:
                self._encode(events, rec.seq)
            self.next_seq = rec.seq + 1
            self.stats.caught_up_records += 1
            budget -= len(events) + 1
            if budget <= 0:
                break
        else:
            self._close_reader()  # ran dry: the next step re-opens at next_seq
        if self.next_seq >= j.next_seq and self.buffered_rows < self.settings.max_buffered_rows:
            self._close_reader()
            self.live = True
            log.info("writer: caught up with the journal at seq %d; live", self.next_seq - 1)

    def _close_reader(self) -> None:
        it = self._reader
        self._reader = None
        if it is not None:
            it.close()

    # ---- flushing ----------------------------------------------------------------------

    def _take(self) -> None:
        if not self._buffered:
            return
        tables = self._enc.take_payloads()
        upto = self.next_seq - 1
        seqs = (min(self._batch_from, upto), upto)
        self._batch_from = upto + 1
        late = self._enc.take_unencodable()  # rows of batched tables are encoded when taken
        if late:
            self._refuse_events(late, seqs)
            self._buffered -= len(late)
        self._pending.append(_Batch(seqs[0], upto, tables, self._oldest_ts, self._newest_ts, self._buffered))
        self._pending_rows += self._buffered
        self._buffered = 0
        self._oldest_ts = None
        self._newest_ts = None
        m = self.metrics
        if m is not None:
            children = self._ticks_children
            for name, (_buf, n) in tables.items():
                c = children.get(name)
                if c is None:
                    c = children[name] = m.ticks.labels(table=name)
                c.inc(n)

    def _get_sender(self, table: str) -> IlpHttpTransport:
        s = self._senders.get(table)
        if s is None:
            s = self._senders[table] = self._factory(self.conf)
        return s

    def _drop_senders(self) -> None:
        senders = list(self._senders.values())
        self._senders.clear()
        for s in senders:
            s.close()

    async def _send(self, name: str, body: bytes) -> None:
        sender = self._get_sender(name)
        await asyncio.to_thread(sender.send, body)

    async def _flush_table(self, b: _Batch, name: str, body: bytes) -> tuple[str, float | str]:
        """One table's transaction: (table, seconds taken) or (table, error message). Rows
        QuestDB refuses are isolated and set aside (``tickarchive.store.isolate``); the
        table then counts as acknowledged."""
        t0 = time.monotonic()
        try:
            await self._send(name, body)
        except IlpHttpError as exc:
            if not row_level(exc):
                return name, str(exc)
            res = await isolate(body, exc, lambda part: self._send(name, part))
            bad = res.bad
            if res.retry is not None:
                rounds = b.rounds[name] = b.rounds.get(name, 0) + 1
                if not res.suspects or rounds < SUSPECT_ROUNDS:
                    return name, str(res.retry)
                bad = [*bad, *res.suspects]  # refused alone, round after round: set aside
            if bad:
                self._refuse_rows(name, bad, (b.from_seq, b.upto_seq))
                _body, n = b.tables[name]
                b.tables[name] = (_body, n - len(bad))
                b.rows -= len(bad)
        return name, time.monotonic() - t0

    def _refuse_rows(self, table: str, rows: Sequence[tuple[bytes, str]], seqs: tuple[int, int]) -> None:
        self.stats.refused_rows[f"rejected:{table}"] += len(rows)
        self._pending_rows -= len(rows)
        log.error(
            "writer: QuestDB refuses %d %s row(s) of journal records %d..%d (%s); set aside, everything else stored",
            len(rows), table, seqs[0], seqs[1], rows[0][1].splitlines()[0][:200],
        )
        if self._on_refused is not None:
            self._on_refused(Refused("rejected", table, seqs, rows=tuple(rows)))

    def _refuse_events(self, events: Sequence[tuple[Event, str]], seqs: tuple[int, int]) -> None:
        by_table: dict[str, list[tuple[Event, str]]] = {}
        for ev, why in events:
            by_table.setdefault(TABLE_OF_EVENT[type(ev)].name, []).append((ev, why))
        for table, evs in by_table.items():
            self.stats.refused_rows[f"unencodable:{table}"] += len(evs)
            log.error(
                "writer: %d %s row(s) of journal records %d..%d cannot be encoded (%s); set aside",
                len(evs), table, seqs[0], seqs[1], evs[0][1],
            )
            if self._on_refused is not None:
                self._on_refused(Refused("unencodable", table, seqs, events=tuple(evs)))

    async def flush(self) -> bool:
        """Send every buffered row; True when nothing is left unacknowledged."""
        self._take()
        m = self.metrics
        while self._pending:
            b = self._pending[0]
            # every table of the batch at once, each its own transaction on its own sender
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._flush_table(b, name, body)) for name, (body, _n) in b.tables.items()]
            results = [t.result() for t in tasks]
            failures: list[tuple[str, str]] = []
            for name, res in results:
                if isinstance(res, str):
                    failures.append((name, res))
                    continue
                body, n = b.tables.pop(name)
                if self._on_acked is not None:
                    self._on_acked(name, body, n, b.upto_seq)
                b.rows -= n
                self._pending_rows -= n
                self.stats.stored_rows[name] += n
                if m is not None:
                    m.questdb_flush.labels(table=name).observe(res)
                    m.stored_rows.labels(table=name).inc(n)
            if failures:
                self._failed(failures)  # the batch keeps its unacknowledged tables
                return False
            self._pending.popleft()
            self._pending_rows -= b.rows
            self.stats.flushes += 1
            self._acked_upto = max(self._acked_upto, b.upto_seq)
            self._commit(force=False)
            if m is not None and b.oldest_ts_us is not None and b.newest_ts_us is not None:
                now = time.time()
                m.ack_lag.observe(max(0.0, now - b.oldest_ts_us / 1e6))
                m.ack_lag.observe(max(0.0, now - b.newest_ts_us / 1e6))
            self._acked.set()
            self._acked = asyncio.Event()
        if not self._buffered and self.next_seq - 1 > self._acked_upto:
            # records since the last batch produced no rows (heartbeats, RPC replies):
            # nothing of theirs is unacknowledged
            self._acked_upto = self.next_seq - 1
            self._commit(force=False)
            self._acked.set()
            self._acked = asyncio.Event()
        if self._failing_since is not None:
            log.info(
                "writer: QuestDB accepts rows again after %.1f s; backlog flushed",
                time.monotonic() - self._failing_since,
            )
        self._failing_since = None
        self._backoff.reset()
        self._update_gauges()
        return True

    def _commit(self, force: bool) -> None:
        """Write the checkpoint (fsync + rename + fsync dir) at most every
        ``COMMIT_INTERVAL_S`` unless forced: it runs on the event loop, and a restart
        replaying a second more is harmless (DEDUP)."""
        if self._acked_upto <= self.journal.acked_seq:
            return
        now = time.monotonic()
        if force or now - self._committed_at >= COMMIT_INTERVAL_S:
            self.journal.commit(self._acked_upto)
            self._committed_at = now

    def _failed(self, failures: Sequence[tuple[str, str]]) -> None:
        """Some tables of the head batch failed: one error per failed table transaction
        (stats and metric alike), one back-off."""
        self.stats.flush_errors += len(failures)
        if self.metrics is not None:
            for name, _msg in failures:
                self.metrics.questdb_flush_errors.labels(table=name).inc()
        table = ", ".join(name for name, _msg in failures)
        message = failures[0][1]
        self._drop_senders()
        delay = self._backoff.next_delay_s()
        self._retry_at = time.monotonic() + delay
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if message != self._last_error or self._backoff.attempts <= 1 or self._backoff.attempts % 10 == 0:
            log.warning(
                "writer: QuestDB flush of %s failed (%s); %d rows kept, retry in %.1f s, journaling continues",
                table,
                message.splitlines()[0][:300],
                self.buffered_rows,
                delay,
            )
        self._last_error = message
        self._update_gauges()

    def _update_gauges(self) -> None:
        m = self.metrics
        if m is not None:
            m.writer_buffered_rows.set(self.buffered_rows)
            m.journal_backlog_bytes.set(self.journal.backlog_bytes)

    # ---- the task -----------------------------------------------------------------------

    async def run(self) -> None:
        """Flush on the timer or the row threshold; catch up from the journal when not
        live; back off while QuestDB fails. Runs until cancelled."""
        interval = self.settings.flush_interval_ms / 1000.0
        while True:
            now = time.monotonic()
            if now < self._retry_at:
                await asyncio.sleep(min(self._retry_at - now, 1.0))
                continue
            if not self.live and self._failing_since is None:
                self._catch_up_step()
                if not self.live:
                    await self.flush()
                    await asyncio.sleep(0)
                    continue
            try:
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def wait_acked(self, seq: int, timeout_s: float | None = None) -> bool:
        """Wait until every record ``<= seq`` is acknowledged; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.acked_seq < seq:
            ev = self._acked
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                async with asyncio.timeout(left):
                    await ev.wait()
            except TimeoutError:
                return False
        return True

    async def drain(self, timeout_s: float) -> bool:
        """Flush until nothing is buffered and the journal is read to its end (retrying),
        at most ``timeout_s`` (call it once nothing appends any more). Whatever is left
        stays in the journal and is replayed at the next start."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.live and self._failing_since is None:
                self._catch_up_step()
            if await self.flush() and self.live:
                self._commit(force=True)
                return True
            if self.healthy and time.monotonic() < deadline:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("writer: %d rows not acknowledged at shutdown; they are in the journal", self.buffered_rows)
                return False
            await asyncio.sleep(min(max(self._retry_at - time.monotonic(), 0.05), left))

    def close(self) -> None:
        """Write the checkpoint of what was acknowledged and release the sender."""
        if not self._closed:
            self._commit(force=True)
        self._closed = True
        self._close_reader()
        self._drop_senders()


_LIVE_TYPES: frozenset[type] = frozenset((QuoteTick, TradeTick, BookChange, IndexTick, EncodedRows))
"""Live market rows (trades only with source ``ws``): the ones ack lag is measured on."""
