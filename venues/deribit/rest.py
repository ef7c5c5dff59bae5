"""REST-shaped results (pure): ``get_instruments``, ``get_combos``, trade history, and the
events a response holds when read without its request (replay). None of them raises.

* ``get_instruments``: ``state`` is taken from the wire when present, else derived from
  ``is_active`` (``open`` / ``inactive``); ``ts`` is the server's ``usOut`` when the
  caller has it, else the receive time. Unknown states are kept as text.
* ``get_combos`` (or ``get_combo_details``): one ``ComboLeg`` per leg, ``ts`` as above.
* history (``get_last_trades_by_*``): ``TradeTick``s with ``source=BACKFILL``, combo
  legs expanded, and the page's ``has_more``.
"""

from __future__ import annotations

import msgspec

from tickarchive.domain import ComboLeg, Event, InstrumentEvent, TradeSource, TradeTick
from tickarchive.venue import SAMPLE_BYTES, Malformed, MalformedKind
from tickarchive.venues.deribit import wire
from tickarchive.venues.deribit.outcome import Response
from tickarchive.venues.deribit.trades import trades_from_wire

_instruments_decoder = msgspec.json.Decoder(list[wire.InstrumentWire])
_combos_decoder = msgspec.json.Decoder(list[wire.ComboWire])
_combo_decoder = msgspec.json.Decoder(wire.ComboWire)
_history_decoder = msgspec.json.Decoder(wire.HistoryTradesWire)
_any_envelope_decoder = msgspec.json.Decoder(wire.Envelope)


def _sample(frame: bytes) -> bytes:
    return bytes(frame[:SAMPLE_BYTES])


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


def combos_from_wire(combos: list[wire.ComboWire], recv_ts_us: int, ts_us: int | None = None) -> list[ComboLeg]:
    ts = recv_ts_us if ts_us is None else ts_us
    return [
        ComboLeg(c.id, ts, recv_ts_us, leg.instrument_name, leg.amount, c.state, c.instrument_id)
        for c in combos
        for leg in c.legs
    ]


def parse_combos(result: bytes | msgspec.Raw, recv_ts_us: int, ts_us: int | None = None) -> list[ComboLeg] | Malformed:
    """``public/get_combos`` (a list) or ``public/get_combo_details`` (one combo) result,
    or a whole response → one ``ComboLeg`` per leg. Never raises."""
    try:
        raw = _result_bytes(result)
        if _head(raw, 64).lstrip().startswith(b"{"):
            return combos_from_wire([_combo_decoder.decode(raw)], recv_ts_us, ts_us)
        return combos_from_wire(_combos_decoder.decode(raw), recv_ts_us, ts_us)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return Malformed(MalformedKind.INVALID_DATA, "get_combos", str(exc), _sample(bytes(result)))


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
    """Events in a response read without its request (replay): instrument lists, combo
    lists and trade history pages; anything else (subscribe results, ``"ok"``, errors)
    gives ``[]``."""
    raw = response.result
    if raw is None:
        return []
    head = _head(raw, 64).lstrip()
    if head.startswith(b"[") and head[1:].lstrip().startswith(b"{"):
        whole = _head(raw, 1 << 30)
        if b'"legs"' in whole and b'"instrument_name"' in whole and b'"kind"' not in whole:
            combos = parse_combos(raw, recv_ts_us, response.server_us)
            return list(combos) if isinstance(combos, list) else []
        got = parse_instruments(raw, recv_ts_us, response.server_us)
        return list(got) if isinstance(got, list) else []
    if head.startswith(b"{") and b'"trades"' in _head(raw, 1 << 30):
        page = parse_history_trades(raw, recv_ts_us)
        return list(page.trades) if isinstance(page, HistoryPage) else []
    return []
