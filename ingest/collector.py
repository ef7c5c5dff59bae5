"""The collector: every venue frame journaled, normalized, stored in QuestDB, gap-aware.

The collector drives a venue adapter (``tickarchive.venue.Venue``, loaded from
``collector.venue``) and never imports one. One asyncio ``TaskGroup`` (on uvloop when run
from the CLI) owns every task:

* ``discovery``   the venue's instrument lists over REST (journaled, connection ``rest``),
                  the venue's channel plan sharded over its connections, then a
                  periodic reconcile (``ConnectionPolicy.reconcile_interval_s``); listings
                  and expiries in between arrive as ``InstrumentEvent``s;
* ``c0..cN-1``    one ``ConnectionDriver`` per connection (``tickarchive.ingest.connection``):
                  journal first, then the venue's sans-I/O session, then ``on_outputs``;
* ``writer``      ``tickarchive.store.questdb_writer.QuestDBWriter``: flush timer, transactions,
                  checkpoint, catch-up from the journal;
* ``fsync``       ``journal.sync()`` every ``journal.fsync_interval_ms``
                  (``tickarchive.ingest.supervision``);
* ``heartbeat``   a ``collector_heartbeats`` row per connection per second, gap and
                  disk gauges, the free-space gate (back-pressure below
                  ``journal.min_free_bytes``) (``tickarchive.ingest.supervision``);
* ``backfill``    a bounded queue of trade backfills (``tickarchive.ingest.backfill_queue``)
                  for closed ``disconnect``/``stale``/``trade_seq``/``downtime`` gaps;
* ``backfill-resume`` once at start: the gaps a previous run closed but never backfilled
                  (its queue died with it) are queued again, read from the ``gaps`` table
                  once QuestDB acknowledged the journal as it was at this start.
* ``publisher``   the live feed of acknowledged rows for the API's streams
                  (``tickarchive.ingest.publish``, when ``stream.publish``).

What cannot be stored is set aside with its raw frames (``tickarchive.ingest.set_aside``).

Start-up: open the journal (torn tail repaired), replay what QuestDB has not
acknowledged (the writer starts in catch-up mode at ``acked_seq + 1``), and write a
``downtime`` gap from the previous run's last journaled frame (else its last heartbeat
row; ``tickarchive.ingest.downtime``) to now, backfilled like any other.

Stop (``stop`` event: SIGTERM/SIGINT from the CLI): connections are cancelled (no
disconnect gap: the next start's downtime gap covers the time), the writer drains what it
holds (bounded time), the journal is fsynced and closed; anything not acknowledged is
replayed at the next start.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from tickarchive import native_ext, venues
from tickarchive.domain import (
    BookChange,
    EncodedRows,
    Event,
    Gap,
    GapKind,
    GapStatus,
    IndexTick,
    InstrumentEvent,
    QuoteTick,
    TradeTick,
)
from tickarchive.errors import VenueUnavailable
from tickarchive.ingest import set_aside
from tickarchive.ingest.backfill import Backfiller
from tickarchive.ingest.backfill_queue import BackfillQueue
from tickarchive.ingest.connection import ConnectionDriver, now_us
from tickarchive.ingest.downtime import journaled_ends, last_heartbeat_us
from tickarchive.ingest.errors import JournalError
from tickarchive.ingest.gaps import COLLECTOR_CONNECTION, GapLedger, downtime_gap
from tickarchive.ingest.instruments import InstrumentSet
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.journal.files import Damage
from tickarchive.ingest.journal.side import SIDE_CONNECTION, decode_side, encode_side, is_side_record
from tickarchive.ingest.metrics import CollectorMetrics
from tickarchive.ingest.publish import Publisher, publisher_of
from tickarchive.ingest.quarantine import Quarantine, quarantine_dir
from tickarchive.ingest.supervision import fsync_loop, heartbeat_loop
from tickarchive.pacing import Backoff, TokenBucket
from tickarchive.settings import Settings
from tickarchive.store.questdb_writer import QuestDBWriter
from tickarchive.store.writer_contract import RecordView, Refused, Rows, ilp_conf
from tickarchive.venue import (
    FetchedInstruments,
    GapDetected,
    Malformed,
    Output,
    ReconnectRequired,
    Rejected,
    RpcFailed,
    Session,
    Subscribed,
    Unsubscribed,
    Venue,
)

log = logging.getLogger(__name__)

REST_CONNECTION: Final = "rest"
UNREACHABLE_HINT: Final = "`make demo` runs the same pipeline offline against the local simulator"
_EVENT_TYPES: Final = frozenset({QuoteTick, TradeTick, BookChange, IndexTick, InstrumentEvent, EncodedRows})
_RESUBSCRIBE_AFTER_S: Final = 2.0


def connection_name(i: int) -> str:
    """The id of connection ``i`` (journal records, gap rows, metrics): ``c0``, ``c1``, ..."""
    return f"c{i}"


def record_decoder(venue: Venue) -> Callable[[RecordView], Rows]:
    """How the writer reads a journal record back (catch-up, restart): the collector's side
    records (gap rows, backfilled trades) as they were written, anything else through the
    venue's parsers (``Venue.rows_of_frame``, native fast path included)."""
    rows_of_frame = venue.rows_of_frame

    def decode(rec: RecordView) -> Rows:
        if rec.connection == SIDE_CONNECTION:
            return decode_side(rec.frame) or []
        return rows_of_frame(rec.frame, rec.recv_ts_us)

    return decode


@dataclass(slots=True)
class CollectorStats:
    malformed: collections.Counter[str] = field(default_factory=collections.Counter)
    rejected: int = 0
    rpc_failures: int = 0
    listings: int = 0
    expiries: int = 0


class Collector:
    """``await Collector(settings).run(stop)``: see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        venue: Venue | None = None,
        journal_dir: Path | None = None,
        metrics: CollectorMetrics | None = None,
        serve_metrics: bool = True,
    ) -> None:
        self.settings = settings
        self.venue = venue if venue is not None else venues.load(settings)
        self.questdb_http_url = f"http://{settings.questdb.host}:{settings.questdb.http_port}"
        self.journal_dir = journal_dir or settings.paths.journal_dir
        self.metrics = metrics or CollectorMetrics()
        self.serve_metrics = serve_metrics
        self.metrics_port: int | None = None
        """The port the exporter listens on, once it does (``metrics.port`` 0: the kernel's choice)."""
        self.on_metrics_port: Callable[[int], None] | None = None
        """Called with that port once the exporter listens (``tickarchive collect`` records it in its run file)."""
        self.plan = self.venue.plan
        self.instruments = InstrumentSet(self.plan, self.venue.live_states)
        self.stats = CollectorStats()
        self.drivers: list[ConnectionDriver] = []
        self.sessions: list[Session] = []
        self.started = asyncio.Event()
        """Set once discovery succeeded and the connection tasks run."""
        self._journal: Journal | None = None
        self._quarantine: Quarantine | None = None
        self._writer: QuestDBWriter | None = None
        self._ledger: GapLedger | None = None
        self._backfiller: Backfiller | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._driver_tasks: list[asyncio.Task[None]] = []
        self.backfills = BackfillQueue(self.metrics, settings.collector.backfill_history_max)
        self.backfill_idle = self.backfills.idle
        self._gate = asyncio.Event()
        self._gate.set()
        self._stopping = False
        self._downtime: list[Gap] = []
        self._windows: collections.deque[float] = collections.deque(maxlen=100_000)
        """Receive-to-fsync windows of the fsync timer (the shutdown log gives percentiles)."""
        self._retry_subscribe: dict[str, tuple[float, set[str]]] = {}
        """connection → (when, refused channels): a refused subscription is asked again."""
        self._malformed_logged: set[str] = set()
        self._rpc_logged: collections.Counter[str] = collections.Counter()
        policy = self.venue.policy
        self._subscribe_limiter = TokenBucket(policy.subscribe_rate_per_s, 5.0, now_us())
        self._reconnect_limiter = TokenBucket(
            policy.reconnects_per_s, max(1.0, policy.reconnects_per_s), now_us()
        )
        self.publisher: Publisher | None = None
        """The live feed of acknowledged rows (``stream.publish``), once running."""

    # ---- accessors (tests, CLI) ------------------------------------------------------

    @property
    def journal(self) -> Journal:
        assert self._journal is not None, "collector not running"
        return self._journal

    @property
    def writer(self) -> QuestDBWriter:
        assert self._writer is not None, "collector not running"
        return self._writer

    @property
    def ledger(self) -> GapLedger:
        assert self._ledger is not None, "collector not running"
        return self._ledger

    def all_subscribed(self) -> bool:
        """Every connection has every channel it wants confirmed."""
        return bool(self.sessions) and all(
            s.connected and s.subscribed_channels >= s.desired_channels for s in self.sessions
        )

    # ---- run -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        quarantine = self._quarantine = Quarantine(
            quarantine_dir(self.journal_dir), s.journal.quarantine_max_bytes,
            on_item=lambda reason: self.metrics.quarantined.labels(reason=reason).inc(),
        )
        journal = Journal.open(self.journal_dir, s.journal.segment_bytes, on_damage=self._journal_damaged)
        self._journal = journal
        if journal.recovery is not None:
            r = journal.recovery
            if r.cut_bytes:
                log.warning(
                    "journal: torn tail of %s repaired (%d bytes cut: %s); %d records kept",
                    r.segment, r.cut_bytes, r.reason, r.kept_records,
                )
            for d in r.damage:
                log.error(
                    "journal: %s holds a damaged region at offset %d (%d bytes: %s); skipped, copied to %s",
                    d.segment, d.offset, d.size, d.reason, quarantine.directory,
                )
        conf = ilp_conf(s.questdb.host, s.questdb.http_port, s.writer.request_timeout_s)
        publisher = self.publisher = publisher_of(s)
        writer = QuestDBWriter(
            conf, s.writer, journal, record_decoder(self.venue), self.metrics, on_refused=self._refused,
            on_acked=publisher.acknowledged if publisher is not None else None,
        )
        self._writer = writer
        self._ledger = GapLedger(self._journal_side, self.backfills.schedule, self.metrics)
        self._backfiller = Backfiller(self.venue, self.questdb_http_url, metrics=self.metrics)
        log.info("collector: %s", native_ext.status())
        log.info(
            "collector: journal %s (next seq %d, acknowledged up to %d: %d records to replay)",
            self.journal_dir, journal.next_seq, journal.acked_seq, journal.backlog_records,
        )
        if self.serve_metrics:
            self.metrics_port = self.metrics.serve(s.metrics.host, s.metrics.port)
            if self.on_metrics_port is not None:
                self.on_metrics_port(self.metrics_port)
            log.info("collector: metrics on http://%s:%d/metrics", s.metrics.host, self.metrics_port)
        try:
            await self._downtime_gap()
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                services = [
                    tg.create_task(writer.run(), name="writer"),
                    tg.create_task(
                        fsync_loop(journal, self.metrics, s.journal.fsync_interval_ms / 1000.0, self._windows),
                        name="fsync",
                    ),
                    tg.create_task(
                        heartbeat_loop(
                            self.drivers, journal, writer, self.ledger, self.metrics, self.journal_dir,
                            self._gate, s.journal.min_free_bytes, self._housekeeping,
                        ),
                        name="heartbeat",
                    ),
                    tg.create_task(
                        self.backfills.run(self._backfiller, journal, writer, self.ledger, self._journal_side),
                        name="backfill",
                    ),
                    tg.create_task(self.backfills.resume(self._backfiller, journal, writer), name="backfill-resume"),
                    tg.create_task(self._discovery_loop(), name="discovery"),
                ]
                if publisher is not None:
                    services.append(tg.create_task(publisher.run(), name="publisher"))
                await stop.wait()
                log.info("collector: stopping")
                self._stopping = True
                for t in self._driver_tasks:
                    t.cancel()
                for t in services:
                    t.cancel()
            journal.sync()  # every frame received is durable before the (bounded) drain
            drained = await writer.drain(timeout_s=10.0)
            journal.sync()
            st = journal.stats
            w = sorted(self._windows) or [0.0]
            log.info(
                "collector: stopped (%s); journal acknowledged up to seq %d of %d; "
                "fsyncs %d, fsync max %.2f ms, receive-to-fsync window p50 %.1f ms p99 %.1f ms max %.1f ms",
                "all rows acknowledged" if drained else "unacknowledged rows stay in the journal",
                journal.acked_seq, journal.last_seq, st.fsyncs, st.fsync_seconds_max * 1e3,
                w[len(w) // 2] * 1e3, w[min(len(w) - 1, int(len(w) * 0.99))] * 1e3, w[-1] * 1e3,
            )
        finally:
            writer.close()
            await self._backfiller.aclose()
            journal.close()
            left = quarantine.retry_pending()
            if left:
                log.error("quarantine: %d items held back by a full disk are lost with this process "
                          "(counted in tickarchive_quarantined_total; their frames are in the journal)", left)

    # ---- start-up ----------------------------------------------------------------------

    async def _downtime_gap(self) -> None:
        """Gaps for the time the previous run ended until data flows again: one per
        exchange connection of the previous run, from where its journaled data ended
        (``_journaled_ends``), else one for the whole collector from its last heartbeat
        row. They stay open until every connection is subscribed again."""
        journal = self.journal
        now = now_us()
        starts = journaled_ends(self.journal_dir, self.venue, (REST_CONNECTION, SIDE_CONNECTION))
        cause = "collector not running (since the last journaled frame of {conn} of the previous run)"
        if not starts:
            last = await last_heartbeat_us(self.questdb_http_url)
            starts = {COLLECTOR_CONNECTION: last} if last is not None else {}
            cause = "collector not running (since the last heartbeat row of the previous run)"
        for conn, start in sorted(starts.items()):
            gap = downtime_gap(start, now, cause.format(conn=conn), conn)
            if gap is not None:
                open_gap = Gap(gap.kind, gap.instrument, gap.start_us, None, gap.cause, gap.connection, gap.status)
                self._downtime.append(open_gap)
                self.ledger.record(open_gap, journal_seq=journal.last_seq)

    def _close_downtime(self, seq: int) -> None:
        if self._downtime and self.all_subscribed():
            end = now_us()
            for g in self._downtime:
                closed = Gap(g.kind, g.instrument, g.start_us, end, g.cause, g.connection, GapStatus.OPEN)
                self.ledger.record(closed, journal_seq=seq or self.journal.last_seq)
            self._downtime = []

    async def _discovery_loop(self) -> None:
        s = self.venue.policy
        backoff = Backoff(s.reconnect_min_s, s.reconnect_max_s)
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                try:
                    fetched = await self.venue.fetch_instruments(client)
                    break
                except VenueUnavailable as exc:
                    delay = backoff.next_delay_s()
                    log.warning(
                        "%s is unreachable (%s); retrying in %.1f s. No internet here? %s.",
                        self.venue.display_name, exc, delay, UNREACHABLE_HINT,
                    )
                    await asyncio.sleep(delay)
            listed = self._journal_fetched(fetched)
            self.instruments.reconcile(listed)
            self._start_connections()
            self._update_instrument_gauges()
            self.started.set()
            while True:
                await asyncio.sleep(s.reconcile_interval_s)
                try:
                    fetched = await self.venue.fetch_instruments(client)
                except VenueUnavailable as exc:
                    log.warning("reconcile: get_instruments failed (%s); retry in %.0f s", exc, s.reconcile_interval_s)
                    continue
                added, removed = self.instruments.reconcile(self._journal_fetched(fetched))
                if added or removed:
                    log.info("reconcile: %d listed, %d gone", len(added), len(removed))
                self._follow(added, removed)

    def _journal_side(self, events: list[Any]) -> None:
        """Rows the collector derives (gap rows, backfilled trades): journaled as a side
        record (``tickarchive.ingest.journal.side``), then offered like a frame's rows, so they are
        replayed after a crash or an outage until QuestDB acknowledged them."""
        if not events:
            return
        if not is_side_record(events):
            self.writer.add_side(events)
            return
        j = self.journal
        try:
            seq = j.append(encode_side(events), j.last_recv_ts_us or now_us(), SIDE_CONNECTION)
        except JournalError as exc:  # JournalFull included
            log.error("journal: cannot write %d derived rows (%s); they are held in memory only", len(events), exc)
            self.writer.add_side(events)
            return
        self.writer.offer(seq, events)

    def _journal_fetched(self, fetched: Sequence[FetchedInstruments]) -> list[InstrumentEvent]:
        out: list[InstrumentEvent] = []
        for f in fetched:
            try:
                seq = self.journal.append(f.body, f.recv_ts_us, REST_CONNECTION)
            except JournalError as exc:  # JournalFull included: the listing is fetched again later
                log.error("journal: cannot write an instrument listing (%s); its rows are held in memory only", exc)
                self.writer.add_side(f.events)
            else:
                self.writer.offer(seq, f.events)
            out.extend(e for e in f.events if type(e) is InstrumentEvent)  # combo lists: legs only
        return out

    def _start_connections(self) -> None:
        s = self.venue.policy
        layout = self.plan.layout(self.instruments.live_names())
        assert self._tg is not None
        for i, channels in enumerate(layout):
            session = self.venue.new_session(connection_name(i), self._subscribe_limiter)
            session.subscribe(channels)
            if s.liquid_instruments:  # only instruments a session actually receives are watched
                session.mark_liquid(s.liquid_instruments)
            driver = ConnectionDriver(
                session,
                self.venue.ws_url,
                self.venue.channel_label,
                self.journal,
                self._on_outputs,
                self._reconnect_limiter,
                Backoff(s.reconnect_min_s, s.reconnect_max_s),
                self.metrics,
                self._gate,
                max_frame_bytes=self.settings.collector.max_frame_bytes,
            )
            self.sessions.append(session)
            self.drivers.append(driver)
            self._driver_tasks.append(self._tg.create_task(driver.run(), name=session.connection))
        log.info(
            "collector: %d instruments, %d channels over %d connections",
            len(self.instruments.live_names()), sum(len(c) for c in layout), len(layout),
        )

    def _follow(self, added: Sequence[str], removed: Sequence[str]) -> None:
        """Subscribe listings, unsubscribe expiries, on the instrument's own connection."""
        if not self.sessions:
            return
        touched: set[int] = set()
        for name in added:
            i = self.plan.shard(name)
            self.sessions[i].subscribe(self.plan.instrument_channels(name))
            touched.add(i)
            self.stats.listings += 1
            log.info("listing: %s subscribed on %s", name, self.sessions[i].connection)
        for name in removed:
            i = self.plan.shard(name)
            self.sessions[i].unsubscribe(self.plan.instrument_channels(name))
            touched.add(i)
            self.stats.expiries += 1
            log.info("expiry: %s (%s) unsubscribed", name, self.instruments.known[name].state)
        for i in touched:
            self.drivers[i].kick()
        self._update_instrument_gauges()

    def _update_instrument_gauges(self) -> None:
        for kind, n in self.instruments.counts_by_kind().items():
            self.metrics.instruments.labels(kind=kind).set(n)

    # ---- the hot path ------------------------------------------------------------------

    def _on_outputs(self, driver: ConnectionDriver, seq: int, outs: Sequence[Output]) -> None:
        events: list[Event] = []
        for o in outs:
            t = type(o)
            if t in _EVENT_TYPES:
                events.append(o)  # type: ignore[arg-type]
                if t is InstrumentEvent and seq:
                    self._on_state(o)  # type: ignore[arg-type]
            else:
                self._signal(driver, seq, o)
        if seq:
            self.writer.offer(seq, events)

    def _on_state(self, e: InstrumentEvent) -> None:
        if not self.instruments.wanted(e):
            return
        added, removed = self.instruments.on_state(e)
        if added or removed:
            self._follow(added, removed)

    def _signal(self, driver: ConnectionDriver, seq: int, o: Output) -> None:
        t = type(o)
        if t is GapDetected:
            assert isinstance(o, GapDetected)
            if self._stopping and o.gap.end_us is None and o.gap.kind in (GapKind.DISCONNECT, GapKind.STALE):
                return  # shutting down: the next start's downtime gap covers it
            self.ledger.record(o.gap, o.first_missing_seq, o.last_missing_seq, seq or self.journal.last_seq)
        elif t is ReconnectRequired:
            assert isinstance(o, ReconnectRequired)
            driver.request_reconnect(o.reason)
        elif t is Malformed:
            assert isinstance(o, Malformed)
            key = o.key
            self.stats.malformed[key] += 1
            self.metrics.malformed.labels(kind=key).inc()
            set_aside.malformed(self.quarantine, self.journal, driver.name, seq, o)
            if key not in self._malformed_logged:
                self._malformed_logged.add(key)
                log.warning(
                    "%s: malformed frame (%s: %s), kept in the journal (seq %d); further ones are only counted. "
                    "sample: %r",
                    driver.name, key, o.detail[:200], seq, o.sample,
                )
        elif t is Subscribed or t is Unsubscribed:
            if self._downtime:
                self._close_downtime(seq)
            self.metrics.subscribed_channels.labels(connection=driver.name).set(
                len(driver.session.subscribed_channels)
            )
        elif t is Rejected:
            assert isinstance(o, Rejected)
            self.stats.rejected += len(o.channels)
            due = time.monotonic() + _RESUBSCRIBE_AFTER_S
            self._retry_subscribe.setdefault(driver.name, (due, set()))[1].update(o.channels)
            log.warning(
                "%s: %d channels refused (%s); retrying them in %.0f s",
                driver.name, len(o.channels), o.reason, _RESUBSCRIBE_AFTER_S,
            )
        elif t is RpcFailed:
            assert isinstance(o, RpcFailed)
            self.stats.rpc_failures += 1
            k = f"{o.method}:{o.code}"
            self._rpc_logged[k] += 1
            n = self._rpc_logged[k]
            if n & (n - 1) == 0:  # 1st, 2nd, 4th, 8th, ...
                log.warning("%s: %s failed: %d %s (%d times)", driver.name, o.method, o.code, o.message, n)

    # ---- the quarantine -----------------------------------------------------------------

    @property
    def quarantine(self) -> Quarantine:
        assert self._quarantine is not None, "collector not running"
        return self._quarantine

    def _journal_damaged(self, segment: Path, damage: Damage) -> None:
        set_aside.journal_damaged(self.quarantine, segment, damage)

    def _refused(self, refused: Refused) -> None:
        set_aside.refused(self.quarantine, self.journal, record_decoder(self.venue), refused)

    # ---- timers -------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        self._retry_refused()
        self.quarantine.retry_pending()  # items a full disk held back

    def _retry_refused(self) -> None:
        """Ask again for channels the exchange refused (a ``rejected`` gap stays open until
        a subscribe is granted; the session resolves it then)."""
        now = time.monotonic()
        for name, (due, channels) in list(self._retry_subscribe.items()):
            if now < due:
                continue
            del self._retry_subscribe[name]
            for driver in self.drivers:
                if driver.name == name:
                    wanted = [c for c in channels if c in driver.session.desired_channels]
                    if wanted and driver.connected:
                        driver.session.unsubscribe(wanted)
                        driver.session.subscribe(wanted)
                        driver.kick()
                        log.info("%s: re-subscribing %d refused channels", name, len(wanted))
