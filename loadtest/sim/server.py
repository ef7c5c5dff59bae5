"""``Simulator``: the asyncio server that ties the pure parts together.

One port serves the WebSocket API (``/ws/api/v2``), the HTTP GET API (``/api/v2/...``)
and the control interface (``/control/...``, see ``loadtest.sim.http``). Owned tasks:
the market generator (or the replay), the fault scheduler, and per connection a reader,
a writer and a control task (heartbeats, requested closes); all are awaited on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tickarchive.loadtest.errors import FaultSpecError, SimServerError
from tickarchive.loadtest.sim import encode, native
from tickarchive.loadtest.sim import sendlog as sl
from tickarchive.loadtest.sim.catalog import MarketCatalog
from tickarchive.loadtest.sim.channels import ChannelRule
from tickarchive.loadtest.sim.clock import WireClock
from tickarchive.loadtest.sim.config import CURRENCY, INDEX_NAME, SimConfig
from tickarchive.loadtest.sim.connection import (
    WS_HEADERS,
    WS_HEADERS_UPTO,
    Connection,
    malformed_frames,
    wall_us,
    ws_frame,
    ws_header,
    ws_payload,
)
from tickarchive.loadtest.sim.faults import POISON_HUGE_BYTES, POISON_SHAPES, FaultRecord, FaultSpec, poison_ticker
from tickarchive.loadtest.sim.history import TradeHistory
from tickarchive.loadtest.sim.market import (
    BookEvent,
    Event,
    IndexEvent,
    MarketModel,
    StateEvent,
    TickerEvent,
    TradesEvent,
)
from tickarchive.loadtest.sim.replay import CapturedFrame, ReplayCatalog, load_capture, replay_offsets
from tickarchive.loadtest.sim.rpc import Catalog, PublicApi, Session

WS_PATH = "/ws/api/v2"
CLOSE_TIMEOUT_S = 2.0
TRADE_CHANNELS = tuple(
    f"trades.{kind}.{cur}.{iv}" for kind in ("option", "any") for cur in (CURRENCY, "any") for iv in ("100ms", "agg2")
)
STATE_CHANNELS = tuple(f"instrument.state.{kind}.{cur}" for kind in ("option", "any") for cur in (CURRENCY, "any"))
INDEX_CHANNEL = f"deribit_price_index.{INDEX_NAME}"


class _Skip:
    """A pending skip_book / skip_trades fault."""

    def __init__(self, record: FaultRecord, instrument: str | None, count: int, conn: str) -> None:
        self.record = record
        self.instrument = instrument
        self.left = count
        self.conn = conn
        self.withheld: list[str] = []

    def applies(self, instrument: str) -> bool:
        return self.left > 0 and self.instrument in (None, instrument)

    def take(self, what: str) -> None:
        self.left -= 1
        self.withheld.append(what)
        self.record.detail = "withheld " + ", ".join(self.withheld)
        if self.instrument is None:
            self.record.instruments = tuple(sorted({*self.record.instruments, what.split(" ", 1)[0]}))
        if self.left == 0:
            self.record.end_us = wall_us()


class Simulator:
    """A Deribit-compatible exchange. ``async with Simulator(cfg) as sim: sim.ws_url``."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.send_log = sl.SendLog(self.config.sendlog_dir, self.config.sendlog_batch_rows)
        self.history = TradeHistory()
        self.started_wall_ms = time.time_ns() // 1_000_000
        self.clock = WireClock(self.started_wall_ms, self.config.past_days_ms, self.config.past_speed)
        self.replay_frames: list[CapturedFrame] | None = None
        self.model: MarketModel | None = None
        catalog: Catalog
        if self.config.replay_file is not None:
            self.replay_frames = load_capture(self.config.replay_file, self.config.replay_interval)
            self.replay_catalog: ReplayCatalog | None = ReplayCatalog(self.replay_frames)
            catalog = self.replay_catalog
        else:
            self.replay_catalog = None
            self.model = MarketModel(self.config, self.started_wall_ms, native=native.ENABLED)
            catalog = MarketCatalog(self.model)
        self.catalog = catalog
        self.api = PublicApi(catalog, self.history)
        self.subs: dict[str, list[Connection]] = {}
        self._agg2_subscriptions = 0
        self.connections: dict[str, Connection] = {}
        self._conn_ids = itertools.count(1)
        self._fault_ids = itertools.count(1)
        self._skips_book: list[_Skip] = []
        self._skips_trades: list[_Skip] = []
        self._reject: tuple[str, float, str, FaultRecord] | None = None
        self._maintenance_until = 0.0
        self._maintenance_record: FaultRecord | None = None
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.replay_started = asyncio.Event()
        self._connected = asyncio.Event()
        self._first_subscription = asyncio.Event()
        self.replay_done = asyncio.Event()
        self.steps = 0
        self.lag_resets = 0
        self.frames_published = 0

    # ---- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        cfg = self.config
        try:
            self._server = await serve(
                self._handler,
                cfg.host,
                cfg.port,
                process_request=self._process_request,
                compression=None,
                ping_interval=None,
                max_size=2**22,
                write_limit=cfg.write_limit_bytes,
                close_timeout=CLOSE_TIMEOUT_S,
            )
        except OSError as exc:
            raise SimServerError(f"cannot listen on {cfg.host}:{cfg.port}: {exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else cfg.port
        loop = asyncio.get_running_loop()
        if self.model is not None:
            self._tasks.append(loop.create_task(self._run_market(), name="sim-market"))
        else:
            self._tasks.append(loop.create_task(self._run_replay(), name="sim-replay"))
        if cfg.faults:
            self._tasks.append(loop.create_task(self._run_scheduled_faults(), name="sim-faults"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.send_log.flush()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}{WS_PATH}"

    url = ws_url

    @property
    def http_url(self) -> str:
        """Base of the HTTP API: ``{http_url}/public/get_instruments``."""
        return f"http://{self.config.host}:{self.port}/api/v2"

    @property
    def control_url(self) -> str:
        return f"http://{self.config.host}:{self.port}/control"

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ws_url": self.ws_url,
            "http_url": self.http_url,
            "mode": "replay" if self.model is None else "market",
            "connections": [c.info() for c in self.connections.values()],
            "sendlog_dir": str(self.send_log.directory),
            "frames_published": self.frames_published,
            "trades_generated": len(self.history),
            "steps": self.steps,
            "lag_resets": self.lag_resets,
        }
        if self.model is not None:
            out.update(
                instruments=len(self.model.active),
                index_price=self.model.index_price,
                sim_ms=self.model.sim_ms,
                rate_per_s=self.model.config.rate_per_s,
                min_interval_ms=self.model.min_steps * self.config.tick_ms,
                native=self.model.native is not None,
            )
            if self.clock.past_days_ms:
                wall = time.time_ns() // 1_000_000
                out.update(past_days=len(self.clock.past_days_ms), in_past=self.clock.in_past(wall),
                           clock_ms=self.clock.now_ms(wall))
        else:
            out.update(replay_started=self.replay_started.is_set(), replay_done=self.replay_done.is_set())
        return out

    def set_rate(self, rate_per_s: float) -> None:
        if self.model is None:
            raise SimServerError("the rate of a replay cannot be changed")
        if rate_per_s < 0:
            raise SimServerError("rate must be >= 0")
        self.model.set_rate(rate_per_s)

    async def wait_for_connections(self, n: int, timeout_s: float = 10.0) -> list[str]:
        async with asyncio.timeout(timeout_s):
            while len([c for c in self.connections.values() if not c.closed]) < n:
                self._connected.clear()
                await self._connected.wait()
        return [c.id for c in self.connections.values() if not c.closed]

    # ---- HTTP -------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        from tickarchive.loadtest.sim.http import handle_http

        path = request.path.split("?", 1)[0]
        if path == WS_PATH and "upgrade" in request.headers.get("Connection", "").lower():
            return None
        return handle_http(self, request.path)

    # ---- connections ------------------------------------------------------------------

    def _rule(self) -> ChannelRule:
        return ChannelRule(self.catalog.instrument_exists, self.catalog.extra_channels())

    async def _handler(self, ws: ServerConnection) -> None:
        conn_id = f"c{next(self._conn_ids)}"
        session = Session(self.config, self.api, self._rule)
        conn = Connection(conn_id, ws, session, self.send_log, self.config.send_queue_frames)
        self.connections[conn_id] = conn
        self._connected.set()
        self.send_log.connections[conn_id] = {
            "remote": conn.remote,
            "connected_us": conn.connected_us,
            "closed_us": None,
            "close_code": None,
            "close_reason": None,
        }
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(conn.writer(), name=f"{conn_id}-writer")
                tg.create_task(self._control(conn), name=f"{conn_id}-control")
                await self._reader(conn)
                conn.closed = True
                conn.wake.set()
                conn.control.set()
        finally:
            conn.closed = True
            for ch in list(conn.session.channels):
                self._unsubscribe(conn, ch)
            conn.flush()
            conn.discard_queue(sl.DROPPED)
            self.send_log.connections[conn_id].update(
                closed_us=wall_us(), close_code=ws.close_code, close_reason=ws.close_reason
            )

    async def _reader(self, conn: Connection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in conn.ws:
                us_in = wall_us()
                conn.session.reject_mode = self._reject_mode(conn)
                out = conn.session.handle(message, us_in)
                rejected = conn.session.rejected
                if rejected and self._reject is not None:
                    rec = self._reject[3]
                    rec.instruments = tuple(sorted({*rec.instruments, *rejected}))
                    rejected.clear()
                for frame in out.replies:
                    conn.add(frame, None)
                for ch in out.unsubscribed:
                    self._unsubscribe(conn, ch)
                for ch in out.subscribed:
                    self._first_subscription.set()
                    self.subs.setdefault(ch, []).append(conn)
                    self._agg2_subscriptions += ch.endswith(".agg2")
                    self._initial_frames(conn, ch)
                conn.flush()
                if out.heartbeat_s is not None:
                    conn.heartbeat_s = out.heartbeat_s
                    conn.control.set()
                if out.close is not None:
                    conn.request_close(*out.close)

    def _unsubscribe(self, conn: Connection, ch: str) -> None:
        conns = self.subs.get(ch)
        if conns and conn in conns:
            conns.remove(conn)
            self._agg2_subscriptions -= ch.endswith(".agg2")
            if not conns:
                del self.subs[ch]

    def _initial_frames(self, conn: Connection, ch: str) -> None:
        """What a fresh subscription gets at once: a book snapshot, the platform state."""
        model = self.model
        if ch == "platform_state":
            conn.add(encode.notification(ch, encode.platform_state_data(self.catalog.locked())), None)
        if model is None or not ch.startswith("book."):
            return
        name = ch.split(".")[1]
        st = model.states.get(name)
        if st is None:
            return
        model.sync(st)
        had_ts = st.book_ts_ms
        data, ts_ms = encode.book_snapshot(st, model.now_ms or time.time_ns() // 1_000_000)
        if not had_ts:
            model.set_book_ts(st)
        conn.add(encode.notification(ch, data), encode.book_snapshot_record(ch, st, ts_ms))

    async def _control(self, conn: Connection) -> None:
        """Heartbeats (test_request, closing when one goes unanswered) and requested closes."""
        ws = conn.ws
        while not conn.closed:
            if conn.close_request is not None:
                await _close(ws, *conn.close_request)
                return
            if conn.heartbeat_s <= 0:
                conn.control.clear()
                await conn.control.wait()
                continue
            conn.control.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(conn.heartbeat_s):
                    await conn.control.wait()
                continue  # settings changed or close requested: re-evaluate
            now = time.monotonic()
            if conn.silenced() or now < conn.heartbeat_withhold_until:
                continue
            if conn.session.test_request_pending:
                await _close(ws, 1000, "test_request not answered")
                return
            if now < conn.heartbeat_delay_until and conn.heartbeat_delay_s > 0:
                await asyncio.sleep(conn.heartbeat_delay_s)
            conn.session.test_request_pending = True
            conn.add(encode.HEARTBEAT_TEST_REQUEST, None)
            conn.flush()

    # ---- market ---------------------------------------------------------------------

    async def _run_market(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.config.tick_ms / 1000.0
        next_t = loop.time()
        last_ms = 0
        while True:
            self._check_maintenance()
            now_ms = self.clock.now_ms(time.time_ns() // 1_000_000)
            if now_ms <= last_ms:
                now_ms = last_ms + 1
            last_ms = now_ms
            self.step_and_publish(now_ms)
            next_t += tick
            delay = next_t - loop.time()
            if delay < -1.0:
                next_t = loop.time()
                self.lag_resets += 1
                delay = 0.0
            await asyncio.sleep(max(delay, 0.0))

    def _step(self, now_ms: int) -> list[Event]:
        assert self.model is not None
        self.steps += 1
        return self.model.step(now_ms)

    def step_and_publish(self, now_ms: int) -> None:
        """One generator step stamped ``now_ms``, published: with the native engine the
        ticker and book notifications come ready-framed from ``MarketModel.step_native``."""
        model = self.model
        assert model is not None
        if model.native is None:
            self.publish_events(self._step(now_ms), now_ms)
            return
        self.steps += 1
        events, frames = model.step_native(now_ms)
        self.publish_frames(frames, now_ms)
        self.publish_events(events, now_ms)

    def publish_frames(self, frames: list[tuple[str, bytes, encode.Record]], now_ms: int) -> None:
        """Fan out the native engine's ``(channel, wire, record)`` ticker and book
        notifications (see ``publish_events`` for the flush)."""
        published = 0
        if self._agg2_subscriptions > 0 or self._skips_book:
            for ch, wire, rec in frames:
                published += self._publish_frame_slow(ch, wire, rec, now_ms)
        else:
            subscribers = self.subs.get
            for ch, wire, rec in frames:
                conns = subscribers(ch)
                if conns:
                    for c in conns:
                        if c.extra_fields_left:
                            c.add_wire(wire, rec)
                        else:
                            c.wires.append(wire)
                            c.recs.append(rec)
                    published += 1
        self.frames_published += published

    def _publish_frame_slow(self, ch: str, wire: bytes, rec: encode.Record, now_ms: int) -> int:
        """One native frame with agg2 subscribers (the same data re-headed for the
        instrument's other channels) or pending ``skip_book`` faults."""
        assert self.model is not None
        name = rec[2]
        is_book = rec[0] == encode.BOOK
        skip = None
        if is_book and self._skips_book:
            skip = next((s for s in self._skips_book if s.applies(name)), None)
            if skip is not None:
                skip.take(f"{name} change_id {rec[3]}")
        channels: tuple[str, ...] = (ch,)
        if self._agg2_subscriptions > 0:
            st = self.model.states.get(name)
            if st is not None:
                channels = st.inst.channels["book" if is_book else "ticker"]
        ts_us = now_ms * 1000
        published = 0
        for ch2 in channels:
            conns = self.subs.get(ch2)
            if not conns:
                continue
            wire2, rec2 = wire, rec
            if ch2 != ch:
                payload = ws_payload(wire)
                wire2 = ws_frame(encode.notification_head(ch2) + payload[len(encode.notification_head(ch)) :])
                rec2 = (rec[0], ch2, *rec[2:])
            for c in conns:
                if skip is not None and skip.conn in ("all", c.id):
                    self.send_log.record(c.id, sl.SKIPPED, ts_us, [rec2])
                else:
                    c.add_wire(wire2, rec2)
            published += 1
        return published

    def publish_events(self, events: list[Event], now_ms: int) -> None:
        """Encode the events for their subscribers, log skips, flush every connection."""
        model = self.model
        assert model is not None
        subs = self.subs
        published = 0
        agg2 = self._agg2_subscriptions > 0
        tail = encode.step_tail(now_ms)
        ts_us = now_ms * 1000
        subscribers = subs.get
        ticker_frame = encode.ticker_frame
        book_frame = encode.book_change_frame
        headers = WS_HEADERS
        quotes = encode.QUOTES
        book = encode.BOOK
        # Inlined on the hot path: ws_frame, ticker_record / book_change_record and
        # Connection.add_wire (its plain case; a pending extra_fields fault takes the call).
        for ev in events:
            if type(ev) is TickerEvent:
                st = ev.state
                for ch in st.inst.channels["ticker"] if agg2 else st.inst.ticker_100:
                    conns = subscribers(ch)
                    if conns:
                        payload = ticker_frame(model, st, ch, tail)
                        n = len(payload)
                        wire = (headers[n] if n < WS_HEADERS_UPTO else ws_header(n)) + payload
                        rec: encode.Record = (quotes, ch, st.inst.name, ts_us)
                        for c in conns:
                            if c.extra_fields_left:
                                c.add_wire(wire, rec)
                            else:
                                c.wires.append(wire)
                                c.recs.append(rec)
                        published += 1
            elif type(ev) is BookEvent:
                inst = ev.state.inst
                skip = None
                if self._skips_book:
                    skip = next((s for s in self._skips_book if s.applies(inst.name)), None)
                    if skip is not None:
                        skip.take(f"{inst.name} change_id {ev.change_id}")
                for ch in inst.channels["book"] if agg2 else inst.book_100:
                    conns = subscribers(ch)
                    if conns:
                        payload = book_frame(ch, ev, now_ms)
                        n = len(payload)
                        wire = (headers[n] if n < WS_HEADERS_UPTO else ws_header(n)) + payload
                        rec = (
                            book,
                            ch,
                            inst.name,
                            ev.change_id,
                            ev.prev_change_id,
                            len(ev.bids) + len(ev.asks),
                            False,
                            ts_us,
                        )
                        for c in conns:
                            if skip is not None and skip.conn in ("all", c.id):
                                self.send_log.record(c.id, sl.SKIPPED, ts_us, [rec])
                            elif c.extra_fields_left:
                                c.add_wire(wire, rec)
                            else:
                                c.wires.append(wire)
                                c.recs.append(rec)
                        published += 1
            elif type(ev) is TradesEvent:
                published += self._publish_trades(ev)
            elif type(ev) is IndexEvent:
                conns = subs.get(INDEX_CHANNEL)
                if conns:
                    wire = ws_frame(encode.notification(INDEX_CHANNEL, encode.index_data(ev.price, now_ms)))
                    rec = encode.index_record(INDEX_CHANNEL, now_ms)
                    for c in conns:
                        c.add_wire(wire, rec)
                    published += 1
            elif type(ev) is StateEvent:
                for ch in STATE_CHANNELS:
                    conns = subs.get(ch)
                    if conns:
                        wire = ws_frame(encode.notification(ch, encode.state_data(ev.instrument, ev.state, now_ms)))
                        rec = encode.state_record(ch, ev.instrument, ev.state, now_ms)
                        for c in conns:
                            c.add_wire(wire, rec)
                        published += 1
        self.frames_published += published
        if self._skips_book:
            self._skips_book = [s for s in self._skips_book if s.left > 0]
        if self._skips_trades:
            self._skips_trades = [s for s in self._skips_trades if s.left > 0]
        for c in self.connections.values():
            if c.wires:
                c.flush()

    def _publish_trades(self, ev: TradesEvent) -> int:
        published = 0
        withheld: dict[str, set[str]] = {}  # trade_id -> connection ids ('all')
        for trade in ev.trades:
            self.history.add(trade)
            name = trade["instrument_name"]
            skip = next((s for s in self._skips_trades if s.applies(name)), None) if self._skips_trades else None
            if skip is not None:
                skip.take(f"{name} trade_seq {trade['trade_seq']} ({trade['trade_id']})")
                withheld[trade["trade_id"]] = {skip.conn}
        by_inst: dict[str, list[dict[str, Any]]] = {}
        for trade in ev.trades:
            by_inst.setdefault(trade["instrument_name"], []).append(trade)
        targets: list[tuple[str, list[dict[str, Any]]]] = [(ch, ev.trades) for ch in TRADE_CHANNELS]
        for name, trades in by_inst.items():
            st = self.model.states.get(name) if self.model else None
            if st is not None:
                targets.extend((ch, trades) for ch in st.inst.channels["trades"])
        for ch, trades in targets:
            conns = self.subs.get(ch)
            if not conns:
                continue
            for c in conns:
                wire = [t for t in trades if not (withheld.get(t["trade_id"], set()) & {"all", c.id})]
                skipped = [t for t in trades if t not in wire] if len(wire) != len(trades) else []
                if skipped:
                    self.send_log.record(c.id, sl.SKIPPED, wall_us(), [encode.trades_record(ch, skipped)])
                if wire:
                    c.add(encode.notification(ch, encode.trades_data(wire)), encode.trades_record(ch, wire))
                    published += 1
        return published

    # ---- replay ---------------------------------------------------------------------

    async def _run_replay(self) -> None:
        frames = self.replay_frames
        assert frames is not None
        await self._first_subscription.wait()
        self.replay_started.set()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for f, offset in zip(frames, replay_offsets(frames, self.config.replay_speed), strict=True):
            delay = t0 + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif offset == 0.0:
                await asyncio.sleep(0)
            self._publish_captured(f)
        self.replay_done.set()

    def _publish_captured(self, f: CapturedFrame) -> None:
        if f.channel is None:
            targets = list(self.connections.values())
            self.send_log.control_frames["replayed_malformed"] += len(targets)
        else:
            targets = list(self.subs.get(f.channel, ()))
        for c in targets:
            c.add(f.frame, f.records[0] if len(f.records) == 1 else None)
            c.flush()
        self.frames_published += 1 if targets else 0

    # ---- faults ---------------------------------------------------------------------

    async def _run_scheduled_faults(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for spec in sorted(self.config.faults, key=lambda s: s.at_s):
            delay = t0 + spec.at_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.inject(spec)

    def _targets(self, spec: FaultSpec) -> list[Connection]:
        live = [c for c in self.connections.values() if not c.closed]
        if spec.conn == "all":
            return live
        found = [c for c in live if c.id == spec.conn]
        if not found:
            raise FaultSpecError(f"fault {spec.kind}: no open connection {spec.conn!r}")
        return found

    def _reject_mode(self, conn: Connection) -> str | None:
        if self._reject is None:
            return None
        mode, until, who, _rec = self._reject
        if time.monotonic() >= until:
            self._reject = None
            return None
        return mode if who in ("all", conn.id) else None

    def _check_maintenance(self) -> None:
        if self.model is not None and self.model.locked and time.monotonic() >= self._maintenance_until:
            self.model.locked = False
            if self._maintenance_record is not None:
                self._maintenance_record.end_us = wall_us()
            self._broadcast_platform_state(False)

    def _broadcast_platform_state(self, locked: bool) -> None:
        for c in self.subs.get("platform_state", ()):
            c.add(encode.notification("platform_state", encode.platform_state_data(locked)), None)
            c.flush()

    def inject(self, spec: FaultSpec | str, **params: object) -> FaultRecord:
        """Inject a fault now (``spec`` or a kind name plus parameters); returns its record."""
        if isinstance(spec, str):
            spec = FaultSpec(spec, {k: str(v) for k, v in params.items()})
        now = wall_us()
        mono = time.monotonic()
        rec = FaultRecord(next(self._fault_ids), spec.kind, spec.conn, now, now, params=dict(spec.params))
        kind = spec.kind
        if kind in ("skip_book", "skip_trades"):
            if spec.conn != "all":
                self._targets(spec)
            instrument = spec.params.get("instrument")
            if kind == "skip_book" and instrument is None:
                instrument = self._busiest_book_instrument()
            if instrument is not None:
                rec.instruments = (instrument,)
            rec.end_us = None
            skip = _Skip(rec, instrument, spec.int_param("count", 1), spec.conn)
            (self._skips_book if kind == "skip_book" else self._skips_trades).append(skip)
        elif kind == "maintenance":
            if self.model is None:
                raise FaultSpecError("maintenance is not available in replay mode")
            seconds = spec.float_param("seconds", 10.0)
            self.model.locked = True
            self._maintenance_until = mono + seconds
            self._maintenance_record = rec
            rec.end_us = now + int(seconds * 1e6)
            self._broadcast_platform_state(True)
        elif kind == "reject":
            seconds = spec.float_param("seconds", 10.0)
            if spec.conn != "all":
                self._targets(spec)
            self._reject = (spec.params.get("mode", "error"), mono + seconds, spec.conn, rec)
            rec.end_us = now + int(seconds * 1e6)
        else:
            targets = self._targets(spec)
            rec.detail = "connections " + ",".join(c.id for c in targets)
            for c in targets:
                self._apply_connection_fault(c, spec, rec, mono)
        self.send_log.add_fault(rec)
        return rec

    def _apply_connection_fault(self, c: Connection, spec: FaultSpec, rec: FaultRecord, mono: float) -> None:
        kind = spec.kind
        if kind == "drop":
            c.ws.transport.abort()
        elif kind == "silence":
            seconds = spec.float_param("seconds", 5.0)
            c.silenced_until = mono + seconds
            rec.end_us = rec.start_us + int(seconds * 1e6)
        elif kind == "too_slow":
            c.discard_queue(sl.TOO_SLOW)
            c.request_close(1008, "connection_too_slow")
        elif kind == "malformed":
            for frame in malformed_frames(spec.int_param("count", 1)):
                c.add(frame, None)
                self.send_log.control_frames["malformed"] += 1
            c.flush()
        elif kind == "poison":
            tickers = sorted(ch for ch, conns in self.subs.items() if ch.startswith("ticker.") and c in conns)
            if not tickers:
                raise FaultSpecError(f"fault poison: connection {c.id} has no ticker subscription")
            now_ms = rec.start_us // 1000
            for i in range(spec.int_param("count", len(POISON_SHAPES))):
                ch = tickers[i % len(tickers)]
                inst = ch.split(".")[1]
                data, ts_us = poison_ticker(
                    POISON_SHAPES[i % len(POISON_SHAPES)], inst, rec.fault_id * 1000 + i + 1, now_ms,
                    spec.int_param("bytes", POISON_HUGE_BYTES),
                )
                c.add(encode.notification(ch, data), (encode.QUOTES, ch, inst, ts_us))
            c.flush()
        elif kind == "unknown_channel":
            for i in range(spec.int_param("count", 1)):
                data = orjson.dumps(
                    {"volatility": 60.0 + i, "timestamp": rec.start_us // 1000 + i, "index_name": INDEX_NAME}
                )
                c.add(encode.notification(f"deribit_volatility_index.{INDEX_NAME}", data), None)
                self.send_log.control_frames["unknown_channel"] += 1
            c.flush()
        elif kind == "extra_fields":
            c.extra_fields_left += spec.int_param("count", 1)
        elif kind == "heartbeat_delay":
            c.heartbeat_delay_s = spec.float_param("seconds", 5.0)
            duration = spec.float_param("duration", 60.0)
            c.heartbeat_delay_until = mono + duration
            rec.end_us = rec.start_us + int(duration * 1e6)
        elif kind == "heartbeat_withhold":
            seconds = spec.float_param("seconds", 30.0)
            c.heartbeat_withhold_until = mono + seconds
            rec.end_us = rec.start_us + int(seconds * 1e6)

    def _busiest_book_instrument(self) -> str | None:
        """The subscribed book instrument with the highest activity weight."""
        assert self.model is not None
        best: tuple[float, str] | None = None
        for ch in self.subs:
            if ch.startswith("book."):
                st = self.model.states.get(ch.split(".")[1])
                if st is not None and (best is None or st.inst.weight > best[0]):
                    best = (st.inst.weight, st.inst.name)
        if best is None and self.model.active:
            return max(self.model.active, key=lambda s: s.inst.weight).inst.name
        return best[1] if best else None

    # ---- send log -------------------------------------------------------------------

    def export_send_log(self, dest: Path) -> dict[str, str]:
        return self.send_log.export(dest)


async def _close(ws: ServerConnection, code: int, reason: str) -> None:
    """Close with a close frame; a reader that never reads it gets its socket aborted."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await ws.close(code, reason)
    except TimeoutError:
        ws.transport.abort()


async def run_forever(config: SimConfig, on_ready: Callable[[Simulator], Awaitable[None] | None]) -> None:
    """Start a simulator, call ``on_ready``, and serve until cancelled."""
    async with Simulator(config) as sim:
        result = on_ready(sim)
        if result is not None:
            await result
        await asyncio.Future()
