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

Two paths, one result: ``encode`` writes one event with ``Buffer.row`` (the reference
specialisation, used for the rare tables); ``IlpEncoder`` keeps the events of the
wide high-volume tables (``BATCHED``: quotes, trades) and encodes
each table's pending events with one ``Buffer.dataframe`` call (``encode_batch``) when a
buffer is handed out. The batch path produces the same bytes as ``encode`` row by row
(tested against ``tickarchive.rows`` for every batched type, protocol versions 1–3, and
the real capture). Per quote row it saves the client's per-column cost in ``Buffer.row``
(~0.1 µs × 26) and the Python dicts it needs; what remains is ``astuple`` + one
``pa.array`` per table + the client's column loops. A batch has a fixed cost of a few
milliseconds, hence ``BATCH_MIN_ROWS``.

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

import pyarrow as pa

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Buffer, IngressError, TimestampMicros

from tickarchive.domain import (
    BookChange,
    ComboLeg,
    ConnectionHeartbeat,
    EncodedRows,
    Event,
    Gap,
    IndexTick,
    InstrumentEvent,
    QuoteTick,
    TradeTick,
)
from tickarchive.rows import TABLE_OF_EVENT
from tickarchive.store.ilp_batch import BATCH_MIN_ROWS, BATCHED, encode_batch

DEFAULT_PROTOCOL_VERSION = 2


_at: Callable[[int], Any] = TimestampMicros
"""``Buffer.row(at=...)`` accepts TimestampMicros at runtime; the stubs only list nanos."""


def _quote(buf: Buffer, q: QuoteTick) -> None:
    buf.row(
        "quotes",
        symbols={
            "instrument": q.instrument,
            "underlying_index": q.underlying_index,
            "state": q.state,
            "combo_state": q.combo_state,
            "channel_interval": q.channel_interval,
        },
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
            "high_24h": q.high_24h,
            "low_24h": q.low_24h,
            "price_change_24h": q.price_change_24h,
            "volume_usd_24h": q.volume_usd_24h,
            "volume_notional_24h": q.volume_notional_24h,
            "interest_value": q.interest_value,
            "delivery_price": q.delivery_price,
            "implied_bid": q.implied_bid,
            "implied_ask": q.implied_ask,
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
        symbols={
            "instrument": b.instrument,
            "side": b.side._value_,
            "action": b.action._value_,
            "channel_interval": b.channel_interval,
        },
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


def _combo_leg(buf: Buffer, c: ComboLeg) -> None:
    buf.row(
        "combo_legs",
        symbols={"combo": c.combo, "instrument": c.instrument, "state": c.state},
        columns={
            "recv_ts": TimestampMicros(c.recv_ts_us),
            "amount": c.amount,
            "combo_instrument_id": c.combo_instrument_id,
        },
        at=_at(c.ts_us),
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


_ENCODERS: dict[type, tuple[str, Callable[[Buffer, Any], None]]] = {
    QuoteTick: ("quotes", _quote),
    TradeTick: ("trades", _trade),
    BookChange: ("book_changes", _book),
    IndexTick: ("index_ticks", _index),
    InstrumentEvent: ("instruments", _instrument),
    ComboLeg: ("combo_legs", _combo_leg),
    Gap: ("gaps", _gap),
    ConnectionHeartbeat: ("collector_heartbeats", _heartbeat),
}

TABLE_NAMES: tuple[str, ...] = tuple(name for name, _ in _ENCODERS.values())


def encode(buf: Buffer, event: Event) -> str:
    """Append ``event``'s row to ``buf``; return its table name."""
    table, fn = _ENCODERS[type(event)]
    fn(buf, event)
    return table


# ---------------------------------------------------------------------------- columnar batches
# Buffer.row costs ~0.1 µs per column plus ~0.4 µs per row in the client (measured), and
# building its two dicts in Python costs about as much again. The high-volume tables are
# therefore encoded in batches: ``IlpEncoder.add`` only keeps the event (a list append),
# and when the buffer is needed (``take``/``buffer``) the pending events of a table go
# through one C-level pipeline:
#
#   events --msgspec.structs.astuple--> row tuples --pa.array(struct type)--> Arrow columns
#          --> NumPy / pandas masked arrays --> one Buffer.dataframe call
#
# ``Buffer.dataframe`` leaves masked (NULL) values out of the line exactly as
_UNENCODABLE: tuple[type[Exception], ...] = (ValueError, OverflowError, TypeError, IngressError)
"""What the client raises for a value it cannot write."""


class IlpEncoder:
    """Per-table ILP buffers fed with domain events.

    Rows of the ``BATCHED`` (wide, high-volume) types are kept as events when added and
    encoded when a buffer is handed out (``take`` / ``buffer``): in one batch per table
    from ``batch_min_rows`` pending rows on, else row by row; the other types are encoded
    row by row as they come. Either way the bytes are those of ``encode`` applied to each
    event in order.

    ``rows`` counts the rows added since the last ``take``/``clear``, per table. Not
    thread-safe; a writer that flushes in a thread hands over buffers with ``take()`` first.

    An event the client cannot write (a timestamp below 0 or past 2**63 - 1 µs, an integer
    past 64 bits) never raises out of the encoder and never leaves half a row behind: it is
    left out and listed in ``unencodable`` (event, reason) for the caller to set aside;
    ``take_unencodable`` hands the list over.
    """

    __slots__ = (
        "_buffers", "_dispatch", "_pending", "_raw", "batch_min_rows", "protocol_version", "rows", "unencodable",
    )

    def __init__(self, protocol_version: int = DEFAULT_PROTOCOL_VERSION, batch_min_rows: int = BATCH_MIN_ROWS) -> None:
        self.protocol_version = protocol_version
        self.batch_min_rows = batch_min_rows
        self._buffers: dict[str, Buffer] = {}
        self.rows: dict[str, int] = {}
        self._pending: dict[str, list[Any]] = {}
        self._raw: dict[str, list[bytes]] = {}
        """Pre-encoded ``EncodedRows`` payloads per table, appended after the buffer's rows."""
        self._dispatch: dict[type, tuple[str, Callable[[Any], object]]] = {}
        self.unencodable: list[tuple[Event, str]] = []
        self._reset()

    def _reset(self) -> None:
        self._buffers = {name: Buffer(protocol_version=self.protocol_version) for name in TABLE_NAMES}
        self.rows = dict.fromkeys(TABLE_NAMES, 0)
        self._pending = {TABLE_OF_EVENT[cls].name: [] for cls in BATCHED}
        self._raw = {}
        # type -> (table, sink): a batched type's sink is its pending list's append
        self._dispatch = {}
        for cls, (name, fn) in _ENCODERS.items():
            if cls in BATCHED:
                self._dispatch[cls] = (name, self._pending[name].append)
            else:
                self._dispatch[cls] = (name, _row_sink(self._buffers[name], fn))

    def add(self, event: Event | EncodedRows) -> None:
        self.add_all((event,))

    def _add_encoded(self, e: EncodedRows) -> int:
        if e.rows:
            raw = self._raw.get(e.table)
            if raw is None:
                if e.table not in self.rows:
                    raise ValueError(f"EncodedRows for unknown table {e.table!r}")
                raw = self._raw[e.table] = []
            raw.append(e.payload)
            self.rows[e.table] += e.rows
        return e.rows

    def add_all(self, events: Iterable[Event | EncodedRows]) -> int:
        """Add every event (or pre-encoded rows); return how many rows were added."""
        dispatch = self._dispatch
        rows = self.rows
        total = 0
        last: type | None = None
        name = ""
        run = 0
        sink: Any = None
        for ev in events:
            cls = type(ev)
            if cls is EncodedRows:
                total += self._add_encoded(ev)  # type: ignore[arg-type]
                continue
            if cls is not last:  # events of one frame are almost always of one type
                if run:
                    rows[name] += run
                    total += run
                    run = 0
                name, sink = dispatch[cls]
                last = cls
            try:
                sink(ev)
            except _UNENCODABLE as exc:  # nothing of the row was written (the client checks first)
                self.unencodable.append((ev, f"{type(exc).__name__}: {exc}"))  # type: ignore[arg-type]
                continue
            run += 1
        if run:
            rows[name] += run
            total += run
        return total

    def _encode_pending(self) -> None:
        """Encode the pending events of every batched table into its buffer."""
        for name, events in self._pending.items():
            if not events:
                continue
            buf = self._buffers[name]
            if len(events) < self.batch_min_rows:
                self._encode_rows(buf, name, events)
                continue
            try:
                encode_batch(buf, events)
            except (pa.ArrowException, OverflowError, IngressError, TypeError, ValueError):
                # An event the batch path cannot take (a value out of range): the row path
                # writes every other row and sets that one aside. A batch that failed
                # wrote nothing (one call on a fresh frame).
                self._encode_rows(buf, name, events)
            finally:
                events.clear()

    def _encode_rows(self, buf: Buffer, name: str, events: list[Any]) -> None:
        for ev in events:
            try:
                encode(buf, ev)
            except _UNENCODABLE as exc:
                self.unencodable.append((ev, f"{type(exc).__name__}: {exc}"))
                self.rows[name] -= 1
        events.clear()

    def take_unencodable(self) -> list[tuple[Event, str]]:
        """The events left out since the last call, with why."""
        out = self.unencodable
        self.unencodable = []
        return out

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def buffer(self, table: str) -> Buffer:
        """The live buffer of ``table`` with every row added so far."""
        self._encode_pending()
        return self._buffers[table]

    def take(self) -> dict[str, tuple[Buffer, int]]:
        """Hand over every non-empty buffer with its row count and start fresh ones.
        For encoders that were given no ``EncodedRows`` (those only fit ``take_payloads``)."""
        if any(self._raw.values()):
            raise ValueError("EncodedRows were added: use take_payloads()")
        self._encode_pending()
        out = {name: (self._buffers[name], n) for name, n in self.rows.items() if n}
        self._reset()
        return out

    def take_payloads(self) -> dict[str, tuple[bytes, int]]:
        """Every non-empty table as one ILP request body (the buffer's rows, then the
        pre-encoded ones in the order added) with its row count; start afresh."""
        self._encode_pending()
        out: dict[str, tuple[bytes, int]] = {}
        for name, n in self.rows.items():
            if not n:
                continue
            raw = self._raw.get(name)
            body = bytes(self._buffers[name])
            out[name] = (body + b"".join(raw) if raw else body, n)
        self._reset()
        return out

    def clear(self) -> None:
        """Drop every buffered row (a writer uses ``take``)."""
        for events in self._pending.values():
            events.clear()
        self._raw.clear()
        for buf in self._buffers.values():
            buf.clear()  # type: ignore[no-untyped-call]
        for name in self.rows:
            self.rows[name] = 0


def _row_sink(buf: Buffer, fn: Callable[[Buffer, Any], None]) -> Callable[[Any], None]:
    def sink(event: Any) -> None:
        fn(buf, event)

    return sink


_BINARY_WIDTH = {16: 8}
"""ILP v2 binary field types the writer produces and their payload widths (16 = f64)."""


def split_rows(body: bytes) -> list[bytes]:
    """The rows of an ILP request body, each with its ``\\n``: a row ends at a newline that
    is neither escaped, inside a quoted string, nor inside a binary field's payload (a v2
    binary double may hold the byte 0x0A). Used to isolate a row QuestDB refused; the
    inverse of concatenation (tested on every row shape the writer produces)."""
    rows: list[bytes] = []
    n = len(body)
    i = 0
    start = 0
    in_fields = False  # after the first unescaped space of the row
    while i < n:
        c = body[i]
        if c == 0x5C:  # backslash escapes the next byte (measurement, tags, field names)
            i += 2
            continue
        if c == 0x0A:
            rows.append(body[start : i + 1])
            i += 1
            start = i
            in_fields = False
            continue
        if c == 0x20 and not in_fields:
            in_fields = True
            i += 1
            continue
        if in_fields and c == 0x3D:  # '=': a field value follows
            i += 1
            if i < n and body[i] == 0x3D:  # '==': binary value: type byte, fixed payload
                width = _BINARY_WIDTH.get(body[i + 1]) if i + 1 < n else None
                if width is None:
                    raise ValueError(f"unknown ILP binary field type at byte {i + 1}")
                i += 2 + width
                continue
            if i < n and body[i] == 0x22:  # '"': a string, with backslash escapes
                i += 1
                while i < n and body[i] != 0x22:
                    i += 2 if body[i] == 0x5C else 1
                i += 1
            continue
        i += 1
    if start < n:
        rows.append(body[start:])
    return rows


def row_bytes(event: Event) -> bytes | None:
    """The ILP row of one event, alone (protocol v2, as the writer sends it); None when
    the event cannot be encoded (a value out of range: the writer sets such a row aside
    on its own, ``IlpEncoder.unencodable``)."""
    buf = Buffer(protocol_version=DEFAULT_PROTOCOL_VERSION)
    try:
        encode(buf, event)
    except _UNENCODABLE:
        return None
    return bytes(buf)
