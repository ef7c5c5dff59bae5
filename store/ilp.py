"""Domain events → QuestDB ILP rows, one ``questdb.ingress.Buffer`` per table (pure).

The hot-path specialisation of ``tickarchive.rows.event_row``: the same columns, with
``tickarchive.tables`` deciding symbol vs column, the exchange time as the designated
timestamp (``at=_at(ts_us)``), ``recv_ts`` as a timestamp column and ``None``
values left out of the line (SQL NULL). ``tests/store/test_ilp.py`` holds the two
mappings together byte for byte.

Usage by the QuestDB writer (one transaction per table per flush)::

    enc = IlpEncoder(protocol_version=sender_protocol_version)
    enc.add_all(events)                    # or enc.add(event)
    for table, buf in enc.take().items():  # full buffers out, fresh ones in
        sender.flush(buf, clear=False, transaction=True)   # keep buf until acknowledged

``take()`` swaps the buffers, so rows can keep arriving while the taken ones are being
flushed (or retried after a failure). Nothing here does I/O.

Protocol version: over HTTP the ``Sender`` negotiates it with the server (QuestDB 9.3.4
answers 3; 2 and later send doubles in binary, which is faster to encode and exact;
1 is text). Build the encoder with ``IlpEncoder(sender.protocol_version)``; the bytes
of every row are tested for versions 1, 2 and 3 (``tests/store/test_ilp.py``) and
v3 rows are tested against a real QuestDB 9.3.4 (``tests/ingest/test_replay_questdb.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Buffer, TimestampMicros

from tickarchive.domain import (
    BookChange,
    ConnectionHeartbeat,
    Event,
    Gap,
    IndexTick,
    InstrumentEvent,
    QuoteTick,
    TradeTick,
)

DEFAULT_PROTOCOL_VERSION = 2

_at: Callable[[int], Any] = TimestampMicros
"""``Buffer.row(at=...)`` accepts TimestampMicros at runtime; the stubs only list nanos."""


def _quote(buf: Buffer, q: QuoteTick) -> None:
    buf.row(
        "quotes",
        symbols={"instrument": q.instrument, "underlying_index": q.underlying_index, "state": q.state},
        columns={
            "recv_ts": TimestampMicros(q.recv_ts_us),
            "bid_price": q.bid_price,
            "bid_amount": q.bid_amount,
            "ask_price": q.ask_price,
            "ask_amount": q.ask_amount,
            "bid_iv": q.bid_iv,
            "ask_iv": q.ask_iv,
            "mark_iv": q.mark_iv,
            "mark_price": q.mark_price,
            "underlying_price": q.underlying_price,
            "index_price": q.index_price,
            "delta": q.delta,
            "gamma": q.gamma,
            "vega": q.vega,
            "theta": q.theta,
            "rho": q.rho,
            "open_interest": q.open_interest,
            "last_price": q.last_price,
            "settlement_price": q.settlement_price,
            "min_price": q.min_price,
            "max_price": q.max_price,
            "interest_rate": q.interest_rate,
            "volume_24h": q.volume_24h,
            "current_funding": q.current_funding,
            "funding_8h": q.funding_8h,
            "estimated_delivery_price": q.estimated_delivery_price,
        },
        at=_at(q.ts_us),
    )


def _trade(buf: Buffer, t: TradeTick) -> None:
    buf.row(
        "trades",
        symbols={
            "instrument": t.instrument,
            "direction": t.direction,
            "liquidation": t.liquidation,
            "combo_id": t.combo_id,
            "source": t.source._value_,
        },
        columns={
            "recv_ts": TimestampMicros(t.recv_ts_us),
            "trade_id": t.trade_id,
            "trade_seq": t.trade_seq,
            "price": t.price,
            "amount": t.amount,
            "tick_direction": t.tick_direction,
            "mark_price": t.mark_price,
            "index_price": t.index_price,
            "iv": t.iv,
            "contracts": t.contracts,
            "block_trade_id": t.block_trade_id,
            "combo_trade_id": t.combo_trade_id,
        },
        at=_at(t.ts_us),
    )


def _book(buf: Buffer, b: BookChange) -> None:
    buf.row(
        "book_changes",
        symbols={"instrument": b.instrument, "side": b.side._value_, "action": b.action._value_},
        columns={
            "recv_ts": TimestampMicros(b.recv_ts_us),
            "change_id": b.change_id,
            "prev_change_id": b.prev_change_id,
            "is_snapshot": b.is_snapshot,
            "price": b.price,
            "amount": b.amount,
        },
        at=_at(b.ts_us),
    )


def _index(buf: Buffer, i: IndexTick) -> None:
    buf.row(
        "index_ticks",
        symbols={"index_name": i.index_name},
        columns={"recv_ts": TimestampMicros(i.recv_ts_us), "price": i.price},
        at=_at(i.ts_us),
    )


def _opt_ts(us: int | None) -> TimestampMicros | None:
    return None if us is None else TimestampMicros(us)


def _instrument(buf: Buffer, e: InstrumentEvent) -> None:
    buf.row(
        "instruments",
        symbols={
            "instrument": e.instrument,
            "state": e.state,
            "kind": e.kind,
            "base_currency": e.base_currency,
            "quote_currency": e.quote_currency,
            "settlement_currency": e.settlement_currency,
            "option_type": e.option_type,
            "settlement_period": e.settlement_period,
        },
        columns={
            "recv_ts": TimestampMicros(e.recv_ts_us),
            "strike": e.strike,
            "expiration": _opt_ts(e.expiration_us),
            "creation": _opt_ts(e.creation_us),
            "tick_size": e.tick_size,
            "contract_size": e.contract_size,
            "min_trade_amount": e.min_trade_amount,
            "instrument_id": e.instrument_id,
        },
        at=_at(e.ts_us),
    )


def _gap(buf: Buffer, g: Gap) -> None:
    buf.row(
        "gaps",
        symbols={
            "instrument": g.instrument,
            "kind": g.kind._value_,
            "connection": g.connection,
            "status": g.status._value_,
        },
        columns={"end_ts": _opt_ts(g.end_us), "cause": g.cause},
        at=_at(g.start_us),
    )


def _heartbeat(buf: Buffer, h: ConnectionHeartbeat) -> None:
    buf.row(
        "collector_heartbeats",
        symbols={"connection": h.connection},
        columns={
            "connected": h.connected,
            "subscribed_channels": h.subscribed_channels,
            "frames_total": h.frames_total,
            "last_frame_ts": _opt_ts(h.last_frame_us),
            "journal_backlog_bytes": h.journal_backlog_bytes,
        },
        at=_at(h.ts_us),
    )


_ENCODERS = {
    QuoteTick: ("quotes", _quote),
    TradeTick: ("trades", _trade),
    BookChange: ("book_changes", _book),
    IndexTick: ("index_ticks", _index),
    InstrumentEvent: ("instruments", _instrument),
    Gap: ("gaps", _gap),
    ConnectionHeartbeat: ("collector_heartbeats", _heartbeat),
}

TABLE_NAMES: tuple[str, ...] = tuple(name for name, _ in _ENCODERS.values())


def encode(buf: Buffer, event: Event) -> str:
    """Append ``event``'s row to ``buf``; return its table name."""
    table, fn = _ENCODERS[type(event)]
    fn(buf, event)  # type: ignore[operator]
    return table


class IlpEncoder:
    """Per-table ILP buffers fed with domain events.

    ``rows`` counts the rows currently in each buffer. Not thread-safe; a writer that
    flushes in a thread hands over buffers with ``take()`` first.
    """

    __slots__ = ("_buffers", "_dispatch", "protocol_version", "rows")

    def __init__(self, protocol_version: int = DEFAULT_PROTOCOL_VERSION) -> None:
        self.protocol_version = protocol_version
        self._buffers: dict[str, Buffer] = {}
        self.rows: dict[str, int] = {}
        self._dispatch: dict[type, tuple[str, Buffer, object]] = {}
        self._reset()

    def _reset(self) -> None:
        self._buffers = {name: Buffer(protocol_version=self.protocol_version) for name in TABLE_NAMES}
        self.rows = dict.fromkeys(TABLE_NAMES, 0)
        self._dispatch = {cls: (name, self._buffers[name], fn) for cls, (name, fn) in _ENCODERS.items()}

    def add(self, event: Event) -> None:
        name, buf, fn = self._dispatch[type(event)]
        fn(buf, event)  # type: ignore[operator]
        self.rows[name] += 1

    def add_all(self, events: Iterable[Event]) -> int:
        """Encode every event; return how many rows were added."""
        dispatch = self._dispatch
        rows = self.rows
        total = 0
        last: type | None = None
        name = ""
        run = 0
        buf: Buffer | None = None
        fn: Any = None
        for ev in events:
            cls = type(ev)
            if cls is not last:  # events of one frame are almost always of one type
                if run:
                    rows[name] += run
                    total += run
                    run = 0
                name, buf, fn = dispatch[cls]
                last = cls
            fn(buf, ev)
            run += 1
        if run:
            rows[name] += run
            total += run
        return total

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def buffer(self, table: str) -> Buffer:
        """The live buffer of ``table`` (still being filled)."""
        return self._buffers[table]

    def take(self) -> dict[str, tuple[Buffer, int]]:
        """Hand over every non-empty buffer with its row count and start fresh ones."""
        out = {name: (self._buffers[name], n) for name, n in self.rows.items() if n}
        self._reset()
        return out

    def clear(self) -> None:
        """Drop every buffered row (the bench; a writer uses ``take``)."""
        for buf in self._buffers.values():
            buf.clear()  # type: ignore[no-untyped-call]
        for name in self.rows:
            self.rows[name] = 0
