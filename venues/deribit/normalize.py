"""Pure parsers: one raw Deribit frame (bytes) + its receive time → domain events.

Public entry points (none of them raises on bad input):

``parse_frame(frame, recv_ts_us) -> Outcome``
    The hot path. ``Outcome`` is one of

    * ``Notification(channel, events)``: a ``subscription`` notification and the domain
      events it holds (``QuoteTick``, ``TradeTick``, ``BookChange``, ``IndexTick``,
      ``InstrumentEvent``); ``events`` is empty for known channels we do not store
      (``platform_state``, ...);
    * ``Heartbeat(type)``: ``method == "heartbeat"`` (``type`` is ``heartbeat`` or
      ``test_request``; the session answers the latter);
    * ``Response(id, result, error, server_us)``: a JSON-RPC response, ``result`` left raw
      for whoever sent the request (``tickarchive.venues.deribit.session``) to decode;
    * ``Malformed(kind, detail, sample)``: anything else. ``kind`` is a short stable
      string (``invalid_json``, ``unexpected_shape``, ``unknown_channel``,
      ``invalid_data:<family>``) so the caller counts and logs once per kind.

``parse_instruments(result, recv_ts_us, ts_us)``
    A ``public/get_instruments`` ``result`` (or a whole response) → ``InstrumentEvent``s.

``parse_history_trades(body, recv_ts_us)``
    A ``public/get_last_trades_by_*`` response or result (history API) → ``TradeTick``s
    with ``source=BACKFILL`` and the page's ``has_more``.

``events_of_response(response, recv_ts_us)``
    The events a response holds when it is read without knowing its request (replay):
    instrument lists and trade-history pages; ``[]`` for anything else.

Speed: ``ticker``, ``book.{instrument}.{interval}``, ``trades`` and
``deribit_price_index`` notifications are decoded in one pass into typed structs
(``wire.*Frame``) after a cheap look at the bytes for ``"channel":"<family>.``;
everything else, and anything that does not validate on that path, goes through the
general two-pass route (envelope with raw ``data``, then the family decoder), which is
also the one that classifies errors. Both routes give identical results.

Mapping decisions (docs/collector.md, docs/data-dictionary.md)
-------------------------------------
* Times: Deribit milliseconds × 1000 = ``ts_us``; ``recv_ts_us`` is passed in.
* Ticker: an empty book side (price 0 or null, or amount 0 or null) becomes ``None`` for
  that side's price, amount *and* IV (Deribit sends ``bid_iv: 0.0`` with an empty bid,
  which is not an implied volatility). ``underlying_index`` is kept as text (a number is
  stringified). ``estimated_delivery_price == "expired"`` (any string) → ``None``.
  ``stats.volume`` → ``volume_24h``. ``quote.{instrument}`` gives a ``QuoteTick`` with
  only the top of book: never subscribe ``quote`` and ``ticker`` for the same
  instrument, they share the quotes dedup key (ts, instrument).
* Trades: ``trade_id``, ``block_trade_id`` and ``combo_trade_id`` are strings whatever
  the wire type. A combo trade (on a combo instrument's channel) yields its own
  ``TradeTick`` (combo instrument, combo trade_seq) followed by one ``TradeTick`` per
  ``legs[]`` element on the *leg's* instrument with the leg's own trade_id/trade_seq/iv
  and ``combo_id``/``combo_trade_id`` (falling back to the parent's instrument and
  trade_id). The same legs also arrive on the legs' own instrument streams; the dedup key
  (ts, instrument, trade_id) makes that overlap harmless and the sequence tracker treats
  a repeated trade_seq as a duplicate, not a gap.
* Book: one ``BookChange`` per level. ``type == "snapshot"`` (or the grouped form
  ``book.{inst}.{group}.{depth}.{interval}``, whose ``[price, amount]`` entries are a
  full top-N view with only ``change_id``) → ``is_snapshot=True``,
  ``action=SNAPSHOT``, ``prev_change_id=None``. Changes carry ``[action, price, amount]``
  with action new/change/delete (delete amount 0). An empty side yields nothing.
* ``deribit_price_index.*`` → ``IndexTick``; ``instrument.state.{kind}.{currency}`` →
  ``InstrumentEvent`` (``kind`` from the channel unless it is ``any``).
* ``get_instruments``: ``state`` is taken from the wire when present, else derived from
  ``is_active`` (``open`` / ``inactive``); ``ts`` is the server's ``usOut`` when the
  caller has it, else the receive time.
* Unknown fields are ignored; unknown instrument states are accepted as text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from tickarchive.domain import (
    BookAction,
    BookChange,
    Event,
    IndexTick,
    InstrumentEvent,
    QuoteTick,
    Side,
    TradeSource,
    TradeTick,
)
from tickarchive.venue import SAMPLE_BYTES, Malformed, MalformedKind
from tickarchive.venues.deribit import wire
from tickarchive.venues.deribit.sequence import BookIds


class Notification(msgspec.Struct, gc=False):
    """A ``subscription`` notification and the events it produced."""

    channel: str
    events: list[Event]
    book: BookIds | None = None
    """For ``book.*`` channels: the message's change ids (even when it has no levels)."""


class Heartbeat(msgspec.Struct, frozen=True, gc=False):
    """A ``heartbeat`` notification; ``type`` is ``heartbeat`` or ``test_request``."""

    type: str


class Response(msgspec.Struct, frozen=True, gc=False):
    """A JSON-RPC response. ``result`` is the raw JSON of the result (``None`` on error)."""

    id: int | str | None
    result: msgspec.Raw | None
    error: wire.RpcErrorWire | None
    server_us: int | None
    """Deribit's ``usOut`` (server send time, µs) when present."""


Outcome = Notification | Heartbeat | Response | Malformed

IGNORED_FAMILIES: Final = frozenset(
    {"platform_state", "deribit_volatility_index", "estimated_expiration_price", "markprice", "user"}
)
"""Channel families we may subscribe to but do not store (``events == []``)."""


class _BadData(Exception):
    """Internal: a data payload that decoded but makes no sense."""


def _sample(frame: bytes) -> bytes:
    return bytes(frame[:SAMPLE_BYTES])


# ---------------------------------------------------------------------------- decoders

_envelope_decoder = msgspec.json.Decoder(wire.Envelope)
_ticker_decoder = msgspec.json.Decoder(wire.TickerWire)
_trades_decoder = msgspec.json.Decoder(list[wire.TradeWire])
_book_decoder = msgspec.json.Decoder(wire.BookWire)
_grouped_book_decoder = msgspec.json.Decoder(wire.GroupedBookWire)
_index_decoder = msgspec.json.Decoder(wire.IndexWire)
_state_decoder = msgspec.json.Decoder(wire.InstrumentStateWire)
_instruments_decoder = msgspec.json.Decoder(list[wire.InstrumentWire])
_history_decoder = msgspec.json.Decoder(wire.HistoryTradesWire)
_any_envelope_decoder = msgspec.json.Decoder(wire.Envelope)


# ---------------------------------------------------------------------------- ticker


def quote_from_wire(t: wire.TickerWire, recv_ts_us: int) -> QuoteTick:
    """A ``QuoteTick`` from a decoded ticker (or quote) payload."""
    bp = t.best_bid_price
    ba = t.best_bid_amount
    bid_iv = t.bid_iv
    if not bp or not ba:  # empty side: price or amount 0 / null
        bp = ba = bid_iv = None
    ap = t.best_ask_price
    aa = t.best_ask_amount
    ask_iv = t.ask_iv
    if not ap or not aa:
        ap = aa = ask_iv = None
    g = t.greeks
    if g is None:
        delta = gamma = vega = theta = rho = None
    else:
        delta, gamma, vega, theta, rho = g.delta, g.gamma, g.vega, g.theta, g.rho
    ui = t.underlying_index
    if ui is not None and not isinstance(ui, str):
        ui = repr(ui)
    edp = t.estimated_delivery_price
    if isinstance(edp, str):
        edp = None
    stats = t.stats
    # positional: the field order of QuoteTick (faster than keywords on the hot path)
    return QuoteTick(
        t.instrument_name,
        t.timestamp * 1000,
        recv_ts_us,
        bp,
        ba,
        ap,
        aa,
        bid_iv,
        ask_iv,
        t.mark_iv,
        t.mark_price,
        t.underlying_price,
        ui,
        t.index_price,
        delta,
        gamma,
        vega,
        theta,
        rho,
        t.open_interest,
        t.last_price,
        t.settlement_price,
        t.min_price,
        t.max_price,
        t.interest_rate,
        None if stats is None else stats.volume,
        t.current_funding,
        t.funding_8h,
        edp,
        t.state,
    )


def _ticker(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    return Notification(channel, [quote_from_wire(_ticker_decoder.decode(data), recv_ts_us)])


# ---------------------------------------------------------------------------- trades


def _opt_str(v: str | int | None) -> str | None:
    return v if v is None or isinstance(v, str) else str(v)


def trade_from_wire(
    t: wire.TradeWire,
    recv_ts_us: int,
    source: TradeSource = TradeSource.WS,
    combo_id: str | None = None,
    combo_trade_id: str | None = None,
) -> TradeTick:
    """A ``TradeTick`` from one decoded trade (legs are not expanded here)."""
    tid = t.trade_id
    return TradeTick(
        t.instrument_name,
        t.timestamp * 1000,
        recv_ts_us,
        tid if isinstance(tid, str) else str(tid),
        t.trade_seq,
        t.price,
        t.amount,
        t.direction,
        t.tick_direction,
        t.mark_price,
        t.index_price,
        t.iv,
        t.contracts,
        _opt_str(t.block_trade_id),
        t.liquidation,
        t.combo_id or combo_id,
        _opt_str(t.combo_trade_id) or combo_trade_id,
        source,
    )


def trades_from_wire(
    trades: list[wire.TradeWire], recv_ts_us: int, source: TradeSource = TradeSource.WS
) -> list[Event]:
    """Every trade of a ``trades.*`` array, combo legs expanded after their combo."""
    out: list[Event] = []
    for t in trades:
        out.append(trade_from_wire(t, recv_ts_us, source))
        legs = t.legs
        if legs:
            parent_tid = _opt_str(t.trade_id)
            for leg in legs:
                out.append(trade_from_wire(leg, recv_ts_us, source, t.instrument_name, parent_tid))
    return out


def _trades(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    return Notification(channel, trades_from_wire(_trades_decoder.decode(data), recv_ts_us))


# ---------------------------------------------------------------------------- book

_ACTIONS: Final = {"new": BookAction.NEW, "change": BookAction.CHANGE, "delete": BookAction.DELETE}
_SNAPSHOT = BookAction.SNAPSHOT
_BID = Side.BID
_ASK = Side.ASK


def _levels(
    out: list[Event],
    entries: list[tuple[str, float, float]],
    side: Side,
    inst: str,
    ts_us: int,
    recv_ts_us: int,
    change_id: int,
    prev: int | None,
    snap: bool,
) -> None:
    actions = _ACTIONS
    for a, price, amount in entries:
        if snap:
            action = _SNAPSHOT
        else:
            got = actions.get(a)
            if got is None:
                raise _BadData(f"unknown book action {a!r}")
            action = got
        out.append(BookChange(inst, ts_us, recv_ts_us, change_id, prev, snap, side, action, price, amount))


def _grouped_levels(
    out: list[Event],
    entries: list[tuple[float, float]],
    side: Side,
    inst: str,
    ts_us: int,
    recv_ts_us: int,
    change_id: int,
) -> None:
    for price, amount in entries:
        out.append(BookChange(inst, ts_us, recv_ts_us, change_id, None, True, side, _SNAPSHOT, price, amount))


def book_from_wire(b: wire.BookWire, recv_ts_us: int) -> list[Event]:
    """One ``BookChange`` per level of a decoded ``book.{instrument}.{interval}`` payload."""
    snap = b.type == "snapshot" or (b.type is None and b.prev_change_id is None)
    prev = None if snap else b.prev_change_id
    out: list[Event] = []
    ts_us = b.timestamp * 1000
    inst = b.instrument_name
    cid = b.change_id
    if b.bids:
        _levels(out, b.bids, _BID, inst, ts_us, recv_ts_us, cid, prev, snap)
    if b.asks:
        _levels(out, b.asks, _ASK, inst, ts_us, recv_ts_us, cid, prev, snap)
    return out


def grouped_book_from_wire(b: wire.GroupedBookWire, recv_ts_us: int) -> list[Event]:
    """A grouped book message: every level is a snapshot level."""
    out: list[Event] = []
    ts_us = b.timestamp * 1000
    if b.bids:
        _grouped_levels(out, b.bids, _BID, b.instrument_name, ts_us, recv_ts_us, b.change_id)
    if b.asks:
        _grouped_levels(out, b.asks, _ASK, b.instrument_name, ts_us, recv_ts_us, b.change_id)
    return out


def _book(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    if channel.count(".") == 2:  # book.{instrument}.{interval}
        b = _book_decoder.decode(data)
        events = book_from_wire(b, recv_ts_us)
        snap = b.type == "snapshot" or (b.type is None and b.prev_change_id is None)
        ids = BookIds(b.instrument_name, b.timestamp * 1000, b.change_id, None if snap else b.prev_change_id, snap)
        return Notification(channel, events, ids)
    g = _grouped_book_decoder.decode(data)
    events = grouped_book_from_wire(g, recv_ts_us)
    return Notification(channel, events, BookIds(g.instrument_name, g.timestamp * 1000, g.change_id, None, True))


# ---------------------------------------------------------------------------- index, state


def _index(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    i = _index_decoder.decode(data)
    return Notification(channel, [IndexTick(i.index_name, i.timestamp * 1000, recv_ts_us, i.price)])


def _instrument(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    parts = channel.split(".")
    if len(parts) < 3 or parts[1] != "state":
        raise _BadData(f"unsupported instrument channel {channel!r}")
    s = _state_decoder.decode(data)
    kind = parts[2] if parts[2] != "any" else None
    return Notification(
        channel, [InstrumentEvent(s.instrument_name, s.timestamp * 1000, recv_ts_us, s.state, kind=kind)]
    )


def _ignored(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    return Notification(channel, [])


_Handler = Callable[[bytes, int, str], Notification]

_HANDLERS: Final[dict[str, _Handler]] = {
    "ticker": _ticker,
    "quote": _ticker,
    "book": _book,
    "trades": _trades,
    "deribit_price_index": _index,
    "instrument": _instrument,
    **{f: _ignored for f in IGNORED_FAMILIES},
}

FAMILIES: Final = frozenset(_HANDLERS)
"""Channel families (text before the first dot) ``parse_frame`` understands."""


def family_of(channel: str) -> str:
    i = channel.find(".")
    return channel if i < 0 else channel[:i]


# ---------------------------------------------------------------------------- entry point


_ticker_frame = msgspec.json.Decoder(wire.TickerFrame)
_book_frame = msgspec.json.Decoder(wire.BookFrame)
_trades_frame = msgspec.json.Decoder(wire.TradesFrame)
_index_frame = msgspec.json.Decoder(wire.IndexFrame)
_CHANNEL_KEY: Final = b'"channel":"'
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, _BadData)


def _fast(frame: bytes, recv_ts_us: int) -> Notification | None:
    """One-pass decoding of the common notifications, or ``None`` (use the general path)."""
    i = frame.find(_CHANNEL_KEY)
    if i < 0:
        return None
    j = i + 11
    try:
        if frame.startswith(b"ticker.", j):
            tf = _ticker_frame.decode(frame)
            if tf.method != "subscription":
                return None
            return Notification(tf.params.channel, [quote_from_wire(tf.params.data, recv_ts_us)])
        if frame.startswith(b"book.", j):
            bf = _book_frame.decode(frame)
            channel = bf.params.channel
            if bf.method != "subscription" or channel.count(".") != 2:
                return None
            b = bf.params.data
            snap = b.type == "snapshot" or (b.type is None and b.prev_change_id is None)
            ids = BookIds(b.instrument_name, b.timestamp * 1000, b.change_id, None if snap else b.prev_change_id,
                          snap)
            return Notification(channel, book_from_wire(b, recv_ts_us), ids)
        if frame.startswith(b"trades.", j):
            trf = _trades_frame.decode(frame)
            if trf.method != "subscription":
                return None
            return Notification(trf.params.channel, trades_from_wire(trf.params.data, recv_ts_us))
        if frame.startswith(b"deribit_price_index.", j):
            xf = _index_frame.decode(frame)
            if xf.method != "subscription":
                return None
            x = xf.params.data
            return Notification(xf.params.channel, [IndexTick(x.index_name, x.timestamp * 1000, recv_ts_us, x.price)])
    except _FAST_ERRORS:
        return None
    return None


def parse_frame(frame: bytes | str, recv_ts_us: int) -> Outcome:
    """Decode and normalize one received frame. Never raises.

    ``frame`` is the raw bytes as journaled; a ``str`` (a text frame decoded by the
    WebSocket library) is accepted and encoded to UTF-8 first.
    """
    if type(frame) is not bytes:
        frame = frame.encode() if isinstance(frame, str) else bytes(frame)
    fast = _fast(frame, recv_ts_us)
    if fast is not None:
        return fast
    return _parse_general(frame, recv_ts_us)


def _parse_general(frame: bytes, recv_ts_us: int) -> Outcome:
    """The two-pass route: every frame shape, every error classified."""
    try:
        env = _envelope_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        return Malformed(MalformedKind.UNEXPECTED_SHAPE, "", str(exc), _sample(frame))
    except msgspec.DecodeError as exc:
        return Malformed(MalformedKind.INVALID_JSON, "", str(exc), _sample(frame))
    method = env.method
    if method == "subscription":
        params = env.params
        if params is None or params.channel is None or not params.data:
            return Malformed(MalformedKind.UNEXPECTED_SHAPE, "", "subscription without channel/data", _sample(frame))
        channel = params.channel
        i = channel.find(".")
        family = channel if i < 0 else channel[:i]
        handler = _HANDLERS.get(family)
        if handler is None:
            return Malformed(MalformedKind.UNKNOWN_CHANNEL, "", f"channel {channel!r}", _sample(frame))
        try:
            return handler(params.data, recv_ts_us, channel)
        except (msgspec.ValidationError, msgspec.DecodeError, _BadData, TypeError, ValueError) as exc:
            return Malformed(MalformedKind.INVALID_DATA, family, f"{channel}: {exc}", _sample(frame))
    if method == "heartbeat":
        p = env.params
        return Heartbeat(p.type if p is not None and p.type is not None else "heartbeat")
    if method is None and (env.result or env.error is not None):
        return Response(env.id, env.result if env.result else None, env.error, env.usOut)
    return Malformed(MalformedKind.UNEXPECTED_SHAPE, "", f"method {method!r}", _sample(frame))


# ---------------------------------------------------------------------------- REST-shaped results


def _head(b: bytes | msgspec.Raw, size: int) -> bytes:
    return bytes(memoryview(b)[:size])


def _result_bytes(body: bytes | msgspec.Raw) -> bytes | msgspec.Raw:
    """``body`` itself, or the ``result`` of a whole JSON-RPC response."""
    if _head(body, 200).lstrip().startswith(b"{") and b'"result"' in _head(body, 1 << 30):
        env = _any_envelope_decoder.decode(body)
        if env.result:
            return env.result
    return body


def instruments_from_wire(
    items: list[wire.InstrumentWire], recv_ts_us: int, ts_us: int | None = None
) -> list[InstrumentEvent]:
    ts = recv_ts_us if ts_us is None else ts_us
    out: list[InstrumentEvent] = []
    for i in items:
        state = i.state
        if state is None:
            state = "inactive" if i.is_active is False else "open"
        out.append(
            InstrumentEvent(
                instrument=i.instrument_name,
                ts_us=ts,
                recv_ts_us=recv_ts_us,
                state=state,
                kind=i.kind,
                base_currency=i.base_currency,
                quote_currency=i.quote_currency,
                settlement_currency=i.settlement_currency,
                option_type=i.option_type,
                strike=i.strike,
                expiration_us=None if i.expiration_timestamp is None else i.expiration_timestamp * 1000,
                creation_us=None if i.creation_timestamp is None else i.creation_timestamp * 1000,
                tick_size=i.tick_size,
                contract_size=i.contract_size,
                min_trade_amount=i.min_trade_amount,
                settlement_period=i.settlement_period,
                instrument_id=i.instrument_id,
            )
        )
    return out


def parse_instruments(
    result: bytes | msgspec.Raw, recv_ts_us: int, ts_us: int | None = None
) -> list[InstrumentEvent] | Malformed:
    """``public/get_instruments`` result (or whole response) → one event per instrument.

    ``ts_us`` is the row time (the response's ``usOut`` when known); default the receive
    time. Never raises.
    """
    try:
        raw = _result_bytes(result)
        return instruments_from_wire(_instruments_decoder.decode(raw), recv_ts_us, ts_us)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return Malformed(MalformedKind.INVALID_DATA, "get_instruments", str(exc), _sample(bytes(result)))


class HistoryPage(msgspec.Struct, frozen=True, gc=False):
    trades: list[TradeTick]
    has_more: bool


def parse_history_trades(body: bytes | msgspec.Raw, recv_ts_us: int) -> HistoryPage | Malformed:
    """A ``get_last_trades_by_*`` response or result → backfilled trades (legs expanded)."""
    try:
        page = _history_decoder.decode(_result_bytes(body))
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return Malformed(MalformedKind.INVALID_DATA, "get_last_trades", str(exc), _sample(bytes(body)))
    trades = trades_from_wire(page.trades, recv_ts_us, TradeSource.BACKFILL)
    return HistoryPage([t for t in trades if isinstance(t, TradeTick)], page.has_more)


def events_of_response(response: Response, recv_ts_us: int) -> list[Event]:
    """Events in a response read without its request (replay): instrument lists and trade
    history pages; anything else (subscribe results, ``"ok"``, errors) gives ``[]``."""
    raw = response.result
    if raw is None:
        return []
    head = _head(raw, 64).lstrip()
    if head.startswith(b"[{") or head.startswith(b"[ {"):
        got = parse_instruments(raw, recv_ts_us, response.server_us)
        return list(got) if isinstance(got, list) else []
    if head.startswith(b"{") and b'"trades"' in _head(raw, 1 << 30):
        page = parse_history_trades(raw, recv_ts_us)
        return list(page.trades) if isinstance(page, HistoryPage) else []
    return []
