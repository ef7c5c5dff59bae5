"""Channel encoders: model events -> Deribit JSON frames (bytes) + send-log records (pure).

Field names, JSON types and the nulls follow the real captures in
``tests/fixtures/deribit/real`` (``tests/loadtest/test_fidelity.py`` holds them to it):

* option tickers: the 2021 ``.raw`` field set plus ``stats.volume_usd``; ``stats`` values
  all null for an option that did not trade in 24 h, ``last_price`` null for one that
  never traded, ``settlement_price`` absent for one listed since the last settlement,
  empty sides as 0.0 price/amount/IV; an expired option: ``state: "closed"``,
  ``estimated_delivery_price: "expired"``, ``delivery_price``, zero greeks;
* futures: the 2022 field set, the perpetual with ``funding_8h``, ``current_funding``,
  ``interest_value`` and ``stats.volume_notional`` (2025);
* option combos: the 2022 combo field set (``implied_bid``/``implied_ask``,
  ``combo_state``, ``underlying_index: "index_price"``).

Each encoder returns the ``data`` object's bytes; ``notification`` wraps them for one
channel without re-encoding. Ticker ``data`` ends with ``"timestamp"`` so the rest is
cached per state (``ticker_body``). Send-log records are plain tuples whose first item is
the archive table they map to and whose remaining items are that table's identity keys
(see ``loadtest.sim.sendlog``).
"""

from __future__ import annotations

from typing import Any

import orjson

from tickarchive.loadtest.sim import quoting
from tickarchive.loadtest.sim.derivs import ComboState, FutureState
from tickarchive.loadtest.sim.events import BookEvent
from tickarchive.loadtest.sim.quoting import OptionState
from tickarchive.loadtest.sim.ticks import fround

Record = tuple[Any, ...]

QUOTES = "quotes"
TRADES = "trades"
BOOK = "book_changes"
INDEX = "index_ticks"
STATES = "instruments"

HEARTBEAT_TEST_REQUEST = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'

_dumps = orjson.dumps
_prefixes: dict[str, bytes] = {}
_NULL_STATS = {"volume_usd": None, "volume": None, "price_change": None, "low": None, "high": None}


def notification_head(channel: str) -> bytes:
    """``{"jsonrpc":"2.0","method":"subscription","params":{"channel":...,"data":``."""
    prefix = _prefixes.get(channel)
    if prefix is None:
        if len(_prefixes) > 100_000:
            _prefixes.clear()
        prefix = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":' + orjson.dumps(channel) + b',"data":'
        _prefixes[channel] = prefix
    return prefix


def notification(channel: str, data: bytes) -> bytes:
    """``{"jsonrpc":"2.0","method":"subscription","params":{"channel":...,"data":...}}``."""
    return notification_head(channel) + data + b"}}"


# ---------------------------------------------------------------------------- tickers


def option_stats(st: Any, index_price: float) -> dict[str, Any]:
    """``stats``: null values when nothing traded in 24 h."""
    if not st.volume:
        return _NULL_STATS
    last = st.last_price or 0.0
    return {
        "volume_usd": fround(st.volume * last * index_price, 100.0, 2),
        "volume": st.volume,
        "price_change": fround((last - st.open_price) / st.open_price * 100.0, 1e4, 4) if st.open_price else 0.0,
        "low": st.low,
        "high": st.high,
    }


def option_ticker_dict(st: OptionState, index_price: float, mark_digits: int = 8) -> dict[str, Any]:
    """An option ticker's ``data`` without its timestamp (the model's numbers as sent)."""
    inst = st.inst
    val = st.val
    mark = fround(val.price_coin, 10.0**mark_digits, mark_digits)
    bid, bid_amount, ask, ask_amount = st.top
    d: dict[str, Any] = {
        "underlying_price": st.forward,
        "underlying_index": inst.expiry.underlying_index,
        "stats": option_stats(st, index_price),
        "state": "closed" if st.expired else "open",
    }
    if st.settlement_price is not None:
        d["settlement_price"] = st.settlement_price
    d |= {
        "open_interest": st.open_interest,
        "min_price": max(0.0001, fround(mark - 0.05 - mark * 0.5, 1e4, 4)),
        "max_price": fround(mark + 0.05 + mark * 0.5, 1e4, 4),
        "mark_price": mark,
        "mark_iv": st.mark_iv,
        "last_price": st.last_price,
        "interest_rate": 0.0,
        "instrument_name": inst.name,
        "index_price": index_price,
    }
    if st.expired:
        d["greeks"] = {"vega": 0.0, "theta": 0.0, "rho": 0.0, "gamma": 0.0, "delta": 0.0}
        d["estimated_delivery_price"] = "expired"
        d["delivery_price"] = st.delivery_price
    else:
        d["greeks"] = {
            "vega": fround(val.vega, 1e5, 5),
            "theta": fround(val.theta, 1e5, 5),
            "rho": fround(val.rho, 1e5, 5),
            "gamma": fround(val.gamma, 1e5, 5),
            "delta": fround(val.delta, 1e5, 5),
        }
        d["estimated_delivery_price"] = index_price
    d |= {
        "bid_iv": quoting.iv_of(st, bid, True) if st.bids else 0.0,
        "best_bid_price": bid,
        "best_bid_amount": bid_amount,
        "best_ask_price": ask,
        "best_ask_amount": ask_amount,
        "ask_iv": quoting.iv_of(st, ask, False) if st.asks else 0.0,
    }
    return d


def future_ticker_dict(st: FutureState, index_price: float) -> dict[str, Any]:
    inst = st.inst
    mark = round(st.mark, 2)
    last = st.last_price
    d: dict[str, Any] = {
        "stats": {
            "volume_usd": fround(st.volume * index_price, 1.0, 0),
            "volume": st.volume,
            "price_change": fround(((last or mark) - st.open_price) / st.open_price * 100.0, 1e4, 4),
            "low": st.low,
            "high": st.high,
        },
        "state": "open",
        "settlement_price": st.settlement_price,
        "open_interest": st.open_interest,
        "min_price": round(mark * 0.97, 2),
        "max_price": round(mark * 1.03, 2),
        "mark_price": mark,
        "last_price": last,
        "instrument_name": inst.name,
        "index_price": index_price,
        "estimated_delivery_price": index_price,
        "best_bid_price": st.top[0],
        "best_bid_amount": st.top[1],
        "best_ask_price": st.top[2],
        "best_ask_amount": st.top[3],
    }
    if inst.perpetual:
        d["stats"]["volume_notional"] = d["stats"]["volume_usd"]
        d["funding_8h"] = st.funding_8h
        d["current_funding"] = 0.0
        d["interest_value"] = st.interest_value
    return d


def combo_ticker_dict(st: ComboState, index_price: float) -> dict[str, Any]:
    inst = st.inst
    implied_bid, implied_ask = st.implied()
    g = st.greeks
    mark = fround(st.mark, 1e4, 4)
    d: dict[str, Any] = {
        "underlying_price": index_price,
        "underlying_index": "index_price",
        "stats": option_stats(st, index_price),
        "state": "open",
    }
    if st.settlement_price is not None:
        d["settlement_price"] = st.settlement_price
    d |= {
        "open_interest": st.open_interest,
        "min_price": fround(mark - 0.05 - abs(mark) * 0.5, 1e4, 4),
        "max_price": fround(mark + 0.05 + abs(mark) * 0.5, 1e4, 4),
        "mark_price": mark,
        "mark_iv": st.mark_iv,
        "last_price": st.last_price,
        "interest_rate": 0.0,
        "instrument_name": inst.name,
        "index_price": index_price,
        "implied_bid": 0.0 if implied_bid is None else implied_bid,
        "implied_ask": 0.0 if implied_ask is None else implied_ask,
        "greeks": {
            "vega": fround(g[2], 1e5, 5),
            "theta": fround(g[3], 1e5, 5),
            "rho": fround(g[4], 1e5, 5),
            "gamma": fround(g[1], 1e5, 5),
            "delta": fround(g[0], 1e5, 5),
        },
        "estimated_delivery_price": index_price,
        "combo_state": "active",
        "bid_iv": 0.0,
        "best_bid_price": st.top[0],
        "best_bid_amount": st.top[1],
        "best_ask_price": st.top[2],
        "best_ask_amount": st.top[3],
        "ask_iv": 0.0,
    }
    return d


def ticker_dict(model: Any, st: Any) -> dict[str, Any]:
    m = model.currencies[st.cur]
    index = m.index_price
    if type(st) is OptionState:
        return option_ticker_dict(st, index, m.mark_digits)
    if type(st) is FutureState:
        return future_ticker_dict(st, index)
    return combo_ticker_dict(st, index)


def ticker_body(model: Any, st: Any) -> bytes:
    """A ticker's ``data`` up to and including ``"timestamp":`` (the value and the closing
    brace follow); cached per state until its numbers change."""
    if type(st) is OptionState:
        model.ensure_priced(st)
        key: tuple[Any, ...] = (
            st.val_version,
            st.trade_seq,
            st.volume,
            st.top,
            st.expired,
            st.settlement_price,
            model.currencies[st.cur].index_price,
        )
        if st.tbody_key == key:
            return st.tbody
        body = _dumps(ticker_dict(model, st))[:-1] + b',"timestamp":'
        st.tbody = body
        st.tbody_key = key
        return body
    return _dumps(ticker_dict(model, st))[:-1] + b',"timestamp":'


def ticker_data(model: Any, st: Any, ts_ms: int) -> bytes:
    """A ticker's ``data`` object."""
    return ticker_body(model, st) + b"%d}" % ts_ms


def ticker_frame(model: Any, st: Any, channel: str, ts_ms: int) -> bytes:
    """The whole notification on ``channel``."""
    return notification_head(channel) + ticker_body(model, st) + b"%d}}}" % ts_ms


def ticker_record(channel: str, st: Any, ts_ms: int) -> Record:
    return (QUOTES, channel, st.inst.name, ts_ms * 1000)


# ---------------------------------------------------------------------------- books


def _book_change_fields(ev: BookEvent) -> bytes:
    """``"timestamp":...,"prev_change_id":...,"change_id":...,"bids":[...],"asks":[...]}``."""
    fields = {
        "timestamp": ev.ts_ms,
        "prev_change_id": ev.prev_change_id,
        "change_id": ev.change_id,
        "bids": ev.bids,
        "asks": ev.asks,
    }
    return orjson.dumps(fields)[1:]


def _change_head(name: str) -> bytes:
    return b'{"type":"change","instrument_name":' + orjson.dumps(name) + b","


def book_change_data(ev: BookEvent) -> bytes:
    return _change_head(ev.state.inst.name) + _book_change_fields(ev)


_book_heads: dict[str, bytes] = {}


def book_change_frame(channel: str, ev: BookEvent) -> bytes:
    """The whole notification on ``channel``."""
    head = _book_heads.get(channel)
    if head is None:
        if len(_book_heads) > 100_000:
            _book_heads.clear()
        head = notification_head(channel) + _change_head(ev.state.inst.name)
        _book_heads[channel] = head
    return head + _book_change_fields(ev) + b"}}"


def book_change_record(channel: str, ev: BookEvent) -> Record:
    return (
        BOOK,
        channel,
        ev.state.inst.name,
        ev.change_id,
        ev.prev_change_id,
        len(ev.bids) + len(ev.asks),
        False,
        ev.ts_ms * 1000,
    )


def book_snapshot(st: Any, now_ms: int) -> tuple[bytes, int]:
    """The snapshot sent right after a book subscription, and its timestamp (ms): the
    time of the book's last change (or ``now_ms`` if it never changed). A never-quoted
    book is ``{"change_id":0,"bids":[],"asks":[]}``, as on Deribit."""
    if not st.book_ts_ms:
        st.book_ts_ms = now_ms
    data = {
        "type": "snapshot",
        "timestamp": st.book_ts_ms,
        "instrument_name": st.inst.name,
        "change_id": st.change_id,
        "bids": [["new", p, st.bids[p]] for p in sorted(st.bids, reverse=True)],
        "asks": [["new", p, st.asks[p]] for p in sorted(st.asks)],
    }
    return orjson.dumps(data), st.book_ts_ms


def book_snapshot_record(channel: str, st: Any, ts_ms: int) -> Record:
    """A snapshot's record: its rows are its levels, and one ``empty`` marker per side it
    shows empty (what the collector stores)."""
    rows = max(len(st.bids), 1) + max(len(st.asks), 1)
    return (BOOK, channel, st.inst.name, st.change_id, None, rows, True, ts_ms * 1000)


# ---------------------------------------------------------------------------- the rest


def trades_data(trades: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(trades)


def trades_record(channel: str, trades: list[dict[str, Any]]) -> Record:
    keys = tuple((t["instrument_name"], t["trade_id"], t["trade_seq"], t["timestamp"] * 1000) for t in trades)
    return (TRADES, channel, keys)


def index_data(index_name: str, price: float, ts_ms: int) -> bytes:
    return orjson.dumps({"timestamp": ts_ms, "price": price, "index_name": index_name})


def index_record(channel: str, index_name: str, ts_ms: int) -> Record:
    return (INDEX, channel, index_name, ts_ms * 1000)


def state_data(instrument: str, state: str, ts_ms: int) -> bytes:
    return orjson.dumps({"timestamp": ts_ms, "state": state, "instrument_name": instrument})


def state_record(channel: str, instrument: str, state: str, ts_ms: int) -> Record:
    return (STATES, channel, instrument, state, ts_ms * 1000)


def platform_state_data(locked: bool, index_name: str) -> bytes:
    return orjson.dumps({"price_index": index_name, "locked": locked})


def response(request_id: Any, result: Any, us_in: int, us_out: int, testnet: bool) -> bytes:
    return orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "result": result,
            "usIn": us_in,
            "usOut": us_out,
            "usDiff": us_out - us_in,
            "testnet": testnet,
        }
    )


def error_response(
    request_id: Any, code: int, message: str, data: Any, us_in: int, us_out: int, testnet: bool
) -> bytes:
    error: dict[str, Any] = {"message": message, "code": code}
    if data is not None:
        error["data"] = data
    return orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": error,
            "usIn": us_in,
            "usOut": us_out,
            "usDiff": us_out - us_in,
            "testnet": testnet,
        }
    )
