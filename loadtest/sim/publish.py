"""Fan-out: a step's events and native frames to the subscribed connections.

``Publisher`` is the half of ``Simulator`` that turns what the model produced into frames
on the connections subscribed to each channel, with the send-log records, the agg2
copies and the ``skip_book`` / ``skip_trades`` faults (the frames a skip withholds are
logged ``skipped``, never written). It holds no state of its own beyond the pending
skips; ``server.Simulator`` owns the subscriptions and the connections.

Channels per event: a ticker or book goes to ``{ticker|book}.{instrument}.100ms`` (and
``.agg2``); a trade to ``trades.{instrument}.{interval}`` and
``trades.{kind|any}.{currency|any}.{interval}``; an index tick to
``deribit_price_index.{c}_usd``; an instrument state to
``instrument.state.{kind|any}.{currency|any}``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tickarchive.loadtest.sim import encode
from tickarchive.loadtest.sim import sendlog as sl
from tickarchive.loadtest.sim.connection import (
    WS_HEADERS,
    WS_HEADERS_UPTO,
    Connection,
    wall_us,
    ws_frame,
    ws_header,
    ws_payload,
)
from tickarchive.loadtest.sim.events import (
    BookEvent,
    Event,
    IndexEvent,
    StateEvent,
    TickerEvent,
    TradesEvent,
)
from tickarchive.loadtest.sim.faults import FaultRecord

if TYPE_CHECKING:
    from tickarchive.loadtest.sim.history import TradeHistory
    from tickarchive.loadtest.sim.market import MarketModel

INTERVALS = ("100ms", "agg2")


class Skip:
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


def trade_channels(instrument: str, currency: str, kind: str) -> list[str]:
    """Every channel a trade of ``instrument`` is published on."""
    out = [f"trades.{instrument}.{iv}" for iv in INTERVALS]
    for k in (kind, "any"):
        for c in (currency, "any"):
            out.extend(f"trades.{k}.{c}.{iv}" for iv in INTERVALS)
    if kind == "option_combo":
        out.extend(f"trades.combo.{c}.{iv}" for c in (currency, "any") for iv in INTERVALS)
    return out


def state_channels(kind: str, currency: str) -> list[str]:
    out = [f"instrument.state.{k}.{c}" for k in (kind, "any") for c in (currency, "any")]
    if kind == "option_combo":
        out.extend(f"instrument.state.combo.{c}" for c in (currency, "any"))
    return out


class Publisher:
    """Publishing for ``server.Simulator`` (see the module docstring)."""

    model: MarketModel | None
    subs: dict[str, list[Connection]]
    connections: dict[str, Connection]
    send_log: sl.SendLog
    history: TradeHistory
    frames_published: int
    _agg2_subscriptions: int

    def __init__(self) -> None:
        self.skips_book: list[Skip] = []
        self.skips_trades: list[Skip] = []

    def publish_frames(self, frames: list[tuple[str, bytes, encode.Record]], now_ms: int) -> None:
        """Fan out the native engine's ``(channel, wire, record)`` ticker and book
        notifications (see ``publish_events`` for the flush)."""
        published = 0
        if self._agg2_subscriptions > 0 or self.skips_book:
            for ch, wire, rec in frames:
                published += self._publish_frame_slow(ch, wire, rec)
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

    def _publish_frame_slow(self, ch: str, wire: bytes, rec: encode.Record) -> int:
        """One native frame with agg2 subscribers (the same data re-headed for the
        instrument's other channels) or pending ``skip_book`` faults."""
        assert self.model is not None
        name = rec[2]
        is_book = rec[0] == encode.BOOK
        skip = None
        if is_book and self.skips_book:
            skip = next((s for s in self.skips_book if s.applies(name)), None)
            if skip is not None:
                skip.take(f"{name} change_id {rec[3]}")
        channels: tuple[str, ...] = (ch,)
        if self._agg2_subscriptions > 0:
            st = self.model.states.get(name)
            if st is not None:
                channels = st.inst.channels["book" if is_book else "ticker"]
        ts_us = rec[-1]
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
        subscribers = self.subs.get
        published = 0
        agg2 = self._agg2_subscriptions > 0
        headers = WS_HEADERS
        quotes = encode.QUOTES
        book = encode.BOOK
        ticker_frame = encode.ticker_frame
        book_frame = encode.book_change_frame
        for ev in events:
            if type(ev) is TickerEvent:
                st = ev.state
                for ch in st.inst.channels["ticker"] if agg2 else st.inst.ticker_100:
                    conns = subscribers(ch)
                    if conns:
                        payload = ticker_frame(model, st, ch, ev.ts_ms)
                        n = len(payload)
                        wire = (headers[n] if n < WS_HEADERS_UPTO else ws_header(n)) + payload
                        rec: encode.Record = (quotes, ch, st.inst.name, ev.ts_ms * 1000)
                        for c in conns:
                            if c.extra_fields_left:
                                c.add_wire(wire, rec)
                            else:
                                c.wires.append(wire)
                                c.recs.append(rec)
                        published += 1
            elif type(ev) is BookEvent:
                published += self._publish_book(ev, agg2, book_frame, book)
            elif type(ev) is TradesEvent:
                published += self._publish_trades(ev)
            elif type(ev) is IndexEvent:
                ch = f"deribit_price_index.{ev.index_name}"
                conns = subscribers(ch)
                if conns:
                    wire = ws_frame(encode.notification(ch, encode.index_data(ev.index_name, ev.price, ev.ts_ms)))
                    rec = encode.index_record(ch, ev.index_name, ev.ts_ms)
                    for c in conns:
                        c.add_wire(wire, rec)
                    published += 1
            elif type(ev) is StateEvent:
                ts = model.stamp()
                for ch in state_channels(ev.kind, ev.currency):
                    conns = subscribers(ch)
                    if conns:
                        wire = ws_frame(encode.notification(ch, encode.state_data(ev.instrument, ev.state, ts)))
                        rec = encode.state_record(ch, ev.instrument, ev.state, ts)
                        for c in conns:
                            c.add_wire(wire, rec)
                        published += 1
        self.frames_published += published
        if self.skips_book:
            self.skips_book = [s for s in self.skips_book if s.left > 0]
        if self.skips_trades:
            self.skips_trades = [s for s in self.skips_trades if s.left > 0]
        for c in self.connections.values():
            if c.wires:
                c.flush()

    def _publish_book(self, ev: BookEvent, agg2: bool, book_frame: Any, book: str) -> int:
        inst = ev.state.inst
        skip = None
        if self.skips_book:
            skip = next((s for s in self.skips_book if s.applies(inst.name)), None)
            if skip is not None:
                skip.take(f"{inst.name} change_id {ev.change_id}")
        published = 0
        headers = WS_HEADERS
        ts_us = ev.ts_ms * 1000
        for ch in inst.channels["book"] if agg2 else inst.book_100:
            conns = self.subs.get(ch)
            if conns:
                payload = book_frame(ch, ev)
                n = len(payload)
                wire = (headers[n] if n < WS_HEADERS_UPTO else ws_header(n)) + payload
                rec = (book, ch, inst.name, ev.change_id, ev.prev_change_id, len(ev.bids) + len(ev.asks), False, ts_us)
                for c in conns:
                    if skip is not None and skip.conn in ("all", c.id):
                        self.send_log.record(c.id, sl.SKIPPED, ts_us, [rec])
                    elif c.extra_fields_left:
                        c.add_wire(wire, rec)
                    else:
                        c.wires.append(wire)
                        c.recs.append(rec)
                published += 1
        return published

    def _publish_trades(self, ev: TradesEvent) -> int:
        published = 0
        withheld: dict[str, set[str]] = {}  # trade_id -> connection ids ('all')
        for trade, (cur, kind) in zip(ev.trades, ev.routes, strict=True):
            self.history.add(trade, cur, kind)
            name = trade["instrument_name"]
            skip = next((s for s in self.skips_trades if s.applies(name)), None) if self.skips_trades else None
            if skip is not None:
                skip.take(f"{name} trade_seq {trade['trade_seq']} ({trade['trade_id']})")
                withheld[trade["trade_id"]] = {skip.conn}
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for trade, (cur, kind) in zip(ev.trades, ev.routes, strict=True):
            for ch in trade_channels(trade["instrument_name"], cur, kind):
                if ch in self.subs:
                    by_channel.setdefault(ch, []).append(trade)
        for ch, trades in by_channel.items():
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

    def initial_frames(self, conn: Connection, ch: str, platform_index: str, locked: bool) -> None:
        """What a fresh subscription gets at once: a book snapshot, the platform state."""
        model = self.model
        if ch == "platform_state":
            conn.add(encode.notification(ch, encode.platform_state_data(locked, platform_index)), None)
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
