"""``Simulator``: the asyncio server that ties the pure parts together.

One port serves the WebSocket API (``/ws/api/v2``), the HTTP GET API (``/api/v2/...``)
and the control interface (``/control/...``, see ``loadtest.sim.http``). Owned tasks:
the market generator (or the replay), the fault scheduler, and per connection a reader,
a writer and a control task (heartbeats, requested closes); all are awaited on stop.
Publishing a step to the subscribers is ``publish.Publisher``'s half of the class,
injecting faults ``inject.Faults``'s; the JSON-RPC protocol is ``rpc.Session``.
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

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tickarchive.loadtest.errors import SimServerError
from tickarchive.loadtest.sim import encode, native
from tickarchive.loadtest.sim import sendlog as sl
from tickarchive.loadtest.sim.catalog import MarketCatalog
from tickarchive.loadtest.sim.channels import ChannelRule
from tickarchive.loadtest.sim.clock import WireClock
from tickarchive.loadtest.sim.config import SimConfig
from tickarchive.loadtest.sim.connection import Connection, wall_us
from tickarchive.loadtest.sim.events import Event
from tickarchive.loadtest.sim.history import TradeHistory
from tickarchive.loadtest.sim.http import handle_http
from tickarchive.loadtest.sim.inject import Faults
from tickarchive.loadtest.sim.market import MarketModel
from tickarchive.loadtest.sim.publish import Publisher
from tickarchive.loadtest.sim.replay import CapturedFrame, ReplayCatalog, load_capture, replay_offsets
from tickarchive.loadtest.sim.rpc import Catalog, PublicApi, Session

WS_PATH = "/ws/api/v2"
CLOSE_TIMEOUT_S = 2.0


class Simulator(Publisher, Faults):
    """A Deribit-compatible exchange. ``async with Simulator(cfg) as sim: sim.ws_url``."""

    def __init__(self, config: SimConfig | None = None) -> None:
        Publisher.__init__(self)
        Faults.__init__(self)
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
        self.platform_index = self.catalog.index_names()[0]
        """The index named by ``platform_state`` and the fault frames (the first currency's)."""
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.replay_started = asyncio.Event()
        self._connected = asyncio.Event()
        self._answered = asyncio.Event()
        """Set when a client answers a test_request or a connection closes (``barrier``)."""
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
                index_price=self.model.currencies[0].index_price,
                index_prices={m.index_name: m.index_price for m in self.model.currencies},
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

    async def barrier(self, timeout_s: float = 10.0) -> list[str]:
        """Prove that every frame queued so far reached the reader of each open connection:
        queue a heartbeat ``test_request`` behind it on each and wait until each answers with
        ``public/test`` (a Deribit client answers every test_request, in order, so an answer
        counted beyond the test_request already pending is the probe's). Silenced
        connections, and those that close meanwhile, are left out. The ids that answered."""
        wanted: dict[str, tuple[Connection, int]] = {}
        for conn in self.connections.values():
            if conn.closed or conn.silenced():
                continue
            s = conn.session
            wanted[conn.id] = (conn, s.tests_answered + int(s.test_request_pending) + 1)
            conn.add(encode.HEARTBEAT_TEST_REQUEST, None)
            conn.flush()
        async with asyncio.timeout(timeout_s):
            while any(not c.closed and c.session.tests_answered < n for c, n in wanted.values()):
                self._answered.clear()
                await self._answered.wait()
        return [cid for cid, (c, n) in wanted.items() if c.session.tests_answered >= n]

    async def wait_for_connections(self, n: int, timeout_s: float = 10.0) -> list[str]:
        async with asyncio.timeout(timeout_s):
            while len([c for c in self.connections.values() if not c.closed]) < n:
                self._connected.clear()
                await self._connected.wait()
        return [c.id for c in self.connections.values() if not c.closed]

    # ---- HTTP -------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == WS_PATH and "upgrade" in request.headers.get("Connection", "").lower():
            return None
        return handle_http(self, request.path)

    # ---- connections ------------------------------------------------------------------

    def _rule(self) -> ChannelRule:
        return ChannelRule(
            self.catalog.instrument_exists,
            self.catalog.extra_channels(),
            currencies=self.catalog.currencies(),
            index_names=self.catalog.index_names(),
        )

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
            self._answered.set()

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
                    self.initial_frames(conn, ch, self.platform_index, self.catalog.locked())
                conn.flush()
                if out.test_answered:
                    self._answered.set()
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
