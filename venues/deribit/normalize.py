"""Pure parsers: one raw Deribit frame (bytes) + its receive time → domain events.

Public entry points (none of them raises on bad input):

``parse_frame(frame, recv_ts_us) -> Outcome``
    The hot path. ``Outcome`` (``outcome.py``) is one of

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

``parse_instruments``, ``parse_combos``, ``parse_history_trades``, ``events_of_response``
    REST-shaped results (``rest.py``).

Module layout: ``ticker`` (ticker/quote payloads), ``book`` (book payloads and their
change ids), ``trades`` (trades, combo legs), ``rest`` (REST results), ``outcome`` (the
result types); this module routes a frame to them.

Speed: ``ticker``, ``book.{instrument}.{interval}``, ``trades`` and
``deribit_price_index`` notifications are decoded in one pass into typed structs
(``wire.*Frame``) after a cheap look at the bytes for ``"channel":"<family>.``;
everything else, and anything that does not validate on that path, goes through the
general two-pass route (envelope with raw ``data``, then the family decoder), which is
also the one that classifies errors. Both routes give identical results.

Mapping decisions (docs/collector.md, docs/data-dictionary.md): times are Deribit
milliseconds × 1000 = ``ts_us``, ``recv_ts_us`` is passed in; tickers, books and trades
as their modules say; ``deribit_price_index.*`` → ``IndexTick``;
``instrument.state.{kind}.{currency}`` → ``InstrumentEvent`` (``kind`` from the channel
unless it is ``any``). Unknown fields are ignored; unknown instrument states are
accepted as text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from tickarchive.domain import IndexTick, InstrumentEvent
from tickarchive.venue import SAMPLE_BYTES, Malformed, MalformedKind
from tickarchive.venues.deribit import wire
from tickarchive.venues.deribit.book import BadBookData, book_from_wire, book_ids, grouped_book_from_wire
from tickarchive.venues.deribit.outcome import IGNORED_FAMILIES, Heartbeat, Notification, Outcome, Response
from tickarchive.venues.deribit.rest import (
    HistoryPage,
    events_of_response,
    instruments_from_wire,
    parse_combos,
    parse_history_trades,
    parse_instruments,
)
from tickarchive.venues.deribit.sequence import BookIds
from tickarchive.venues.deribit.ticker import interval_of, quote_from_wire
from tickarchive.venues.deribit.trades import trade_from_wire, trades_from_wire

__all__ = [
    "FAMILIES",
    "IGNORED_FAMILIES",
    "Heartbeat",
    "HistoryPage",
    "Notification",
    "Outcome",
    "Response",
    "book_from_wire",
    "events_of_response",
    "family_of",
    "grouped_book_from_wire",
    "instruments_from_wire",
    "parse_combos",
    "parse_frame",
    "parse_history_trades",
    "parse_instruments",
    "quote_from_wire",
    "trade_from_wire",
    "trades_from_wire",
]


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


# ---------------------------------------------------------------------------- families


def _ticker(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    return Notification(channel, [quote_from_wire(_ticker_decoder.decode(data), recv_ts_us, interval_of(channel))])


def _trades(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    return Notification(channel, trades_from_wire(_trades_decoder.decode(data), recv_ts_us))


def _book(data: bytes, recv_ts_us: int, channel: str) -> Notification:
    interval = interval_of(channel)
    if channel.count(".") == 2:  # book.{instrument}.{interval}
        b = _book_decoder.decode(data)
        return Notification(channel, book_from_wire(b, recv_ts_us, interval), book_ids(b))
    g = _grouped_book_decoder.decode(data)
    events = grouped_book_from_wire(g, recv_ts_us, interval)
    return Notification(channel, events, BookIds(g.instrument_name, g.timestamp * 1000, g.change_id, None, True))


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
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, _BadData, BadBookData)


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
            ch = tf.params.channel
            return Notification(ch, [quote_from_wire(tf.params.data, recv_ts_us, interval_of(ch))])
        if frame.startswith(b"book.", j):
            bf = _book_frame.decode(frame)
            channel = bf.params.channel
            if bf.method != "subscription" or channel.count(".") != 2:
                return None
            b = bf.params.data
            return Notification(channel, book_from_wire(b, recv_ts_us, interval_of(channel)), book_ids(b))
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
