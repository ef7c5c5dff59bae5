"""Faults on demand: scheduled (``--fault``), over HTTP (``/control/fault/...``) or from
Python (``Simulator.inject``). ``Faults`` is the half of ``server.Simulator`` that applies
them to the connections, the model and the publisher (docs/simulator.md, Faults)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import TYPE_CHECKING

import orjson

from tickarchive.loadtest.errors import FaultSpecError
from tickarchive.loadtest.sim import encode
from tickarchive.loadtest.sim import sendlog as sl
from tickarchive.loadtest.sim.connection import Connection, malformed_frames, wall_us
from tickarchive.loadtest.sim.faults import POISON_HUGE_BYTES, POISON_SHAPES, FaultRecord, FaultSpec, poison_ticker
from tickarchive.loadtest.sim.publish import Skip

if TYPE_CHECKING:
    from tickarchive.loadtest.sim.config import SimConfig
    from tickarchive.loadtest.sim.market import MarketModel


class Faults:
    """Fault injection for ``server.Simulator``."""

    config: SimConfig
    model: MarketModel | None
    subs: dict[str, list[Connection]]
    connections: dict[str, Connection]
    send_log: sl.SendLog
    skips_book: list[Skip]
    skips_trades: list[Skip]
    platform_index: str

    def __init__(self) -> None:
        self._fault_ids = itertools.count(1)
        self._reject: tuple[str, float, str, FaultRecord] | None = None
        self._maintenance_until = 0.0
        self._maintenance_record: FaultRecord | None = None

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
            c.add(encode.notification("platform_state", encode.platform_state_data(locked, self.platform_index)), None)
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
            skip = Skip(rec, instrument, spec.int_param("count", 1), spec.conn)
            (self.skips_book if kind == "skip_book" else self.skips_trades).append(skip)
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
                    {"volatility": 60.0 + i, "timestamp": rec.start_us // 1000 + i, "index_name": self.platform_index}
                )
                c.add(encode.notification(f"deribit_volatility_index.{self.platform_index}", data), None)
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
