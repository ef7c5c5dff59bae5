"""Channel encoders: model events -> Deribit JSON frames (bytes) + send-log records (pure).

Field names, order and JSON types follow the real captures in
``tests/fixtures/deribit/real`` (``tests/loadtest/test_fidelity.py`` holds them to it).
Each encoder returns the ``data`` object's bytes; ``notification`` wraps them for one
channel without re-encoding, so a frame fanned out to several channels is encoded once.

Send-log records are plain tuples whose first item is the archive table they map to
(``tickarchive.tables``) and whose remaining items are the identity keys of that table
(see ``loadtest.sim.sendlog``).
"""

from __future__ import annotations

from typing import Any

import orjson

from tickarchive.loadtest.sim.config import INDEX_NAME
from tickarchive.loadtest.sim.market import BookEvent, MarketModel, OptionState, fround

Record = tuple[Any, ...]

QUOTES = "quotes"
TRADES = "trades"
BOOK = "book_changes"
INDEX = "index_ticks"
STATES = "instruments"

HEARTBEAT_TEST_REQUEST = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'

_dumps = orjson.dumps
_prefixes: dict[str, bytes] = {}


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


def _literal(value: Any) -> bytes:
    """``value`` as JSON, safe inside a ``%`` template."""
    return orjson.dumps(value).replace(b"%", b"%%")


def _static_template(st: OptionState) -> bytes:
    """The ``%b`` template of ``_ticker_static`` with the per-instrument constants filled in."""
    inst = st.inst
    return (
        b'{"underlying_price":%b,"underlying_index":'
        + _literal(inst.expiry.underlying_index)
        + b',"state":'
        + _literal(inst.state)
        + b',"settlement_price":'
        + _literal(round(st.open_price, 8))
        + b',"min_price":%b,"max_price":%b,"mark_price":%b,"mark_iv":%b,"interest_rate":0.0,"instrument_name":'
        + _literal(inst.name)
        + b',"index_price":%b,"greeks":{"vega":%b,"theta":%b,"rho":%b,"gamma":%b,"delta":%b},'
        b'"estimated_delivery_price":%b,'
    )


def _ticker_static(model: MarketModel, st: OptionState) -> bytes:
    """The ticker fields that only change on a reprice, encoded once, without the closing
    brace: ``ticker_data`` appends the fields that change between reprices.

    The per-instrument constants sit in a template built once (``_static_template``);
    the numbers are encoded by one ``orjson.dumps`` of a tuple (the same float
    formatting as in an object; a JSON number never contains a comma) and split."""
    val = st.val
    inst = st.inst
    key = (inst.state, st.open_price)
    if st.tstatic_key != key:
        st.tstatic_key = key
        st.tstatic_tpl = _static_template(st)
    mark = fround(val.price_coin, 1e8, 8)
    index = model.index_price
    numbers = _dumps(
        (
            st.forward,
            max(0.0001, fround(mark - 0.05 - mark * 0.5, 1e4, 4)),
            fround(mark + 0.05 + mark * 0.5, 1e4, 4),
            mark,
            st.mark_iv,
            index,
            fround(val.vega, 1e5, 5),
            fround(val.theta, 1e5, 5),
            fround(val.rho, 1e5, 5),
            fround(val.gamma, 1e5, 5),
            fround(val.delta, 1e5, 5),
            index,
        )
    )
    return st.tstatic_tpl % tuple(numbers[1:-1].split(b","))


_DYNAMIC = (
    b'"stats":%b,"open_interest":%b,"last_price":%b,"bid_iv":%b,"best_bid_price":%b,"best_bid_amount":%b,'
    b'"best_ask_price":%b,"best_ask_amount":%b,"ask_iv":%b,"timestamp":'
)
"""The fields of a ticker that change between reprices, then the timestamp's key."""


def ticker_body(model: MarketModel, st: OptionState) -> bytes:
    """A ticker's ``data`` up to and including ``"timestamp":`` (the value and the closing
    brace follow). Rebuilt only when the reprice, the top of the book or the trade stats
    change; the timestamp comes last so the rest is shared between frames. Key order
    differs from Deribit's (which is not stable either); names and types match."""
    version = model.spot_version
    if st.val_version != version:
        model.ensure_priced(st)
    top = st.top
    if st.tbody_version == version and st.tbody_seq == st.trade_seq and st.tbody_top == top:
        return st.tbody
    if st.tcache is None or st.tcache_version != version:
        st.tcache = _ticker_static(model, st)
        st.tcache_version = version
    last = st.last_price if st.last_price is not None else 0.0
    stats_key = (st.trade_seq, version)
    if st.stats_key != stats_key:
        st.stats_key = stats_key
        st.stats = {
            "volume_usd": round(st.volume * last * model.index_price, 2),
            "volume": st.volume,
            "price_change": round((last - st.open_price) / st.open_price * 100.0, 4) if st.open_price else 0.0,
            "low": st.low,
            "high": st.high,
        }
        st.stats_json = _dumps(st.stats)
    bid, bid_amount, ask, ask_amount = top
    bid_iv = ask_iv = 0.0
    if st.bids:
        key = (bid, version)
        if st.bid_iv_key != key:
            st.bid_iv_key = key
            st.bid_iv = model.iv_of(st, bid)
        bid_iv = st.bid_iv
    if st.asks:
        key = (ask, version)
        if st.ask_iv_key != key:
            st.ask_iv_key = key
            st.ask_iv = model.iv_of(st, ask)
        ask_iv = st.ask_iv
    numbers = _dumps((st.open_interest, last, bid_iv, bid, bid_amount, ask, ask_amount, ask_iv))
    body = st.tcache + _DYNAMIC % (st.stats_json, *numbers[1:-1].split(b","))
    st.tbody = body
    st.tbody_version = version
    st.tbody_seq = st.trade_seq
    st.tbody_top = top
    if not st.thead:
        st.thead = notification_head(st.inst.ticker_100[0])
    st.tframe = st.thead + body
    return body


def ticker_data(model: MarketModel, st: OptionState, ts_ms: int) -> bytes:
    """A ticker's ``data`` object."""
    return ticker_body(model, st) + b"%d}" % ts_ms


def ticker_frame(model: MarketModel, st: OptionState, channel: str, tail: bytes) -> bytes:
    """The whole notification on ``channel``; ``tail`` is ``step_tail(ts_ms)``."""
    body = ticker_body(model, st)
    if channel == st.inst.ticker_100[0]:
        return st.tframe + tail
    return notification_head(channel) + body + tail


def step_tail(ts_ms: int) -> bytes:
    """What closes a notification whose ``data`` ends with ``"timestamp":``."""
    return b"%d}}}" % ts_ms


def ticker_record(channel: str, st: OptionState, ts_ms: int) -> Record:
    return (QUOTES, channel, st.inst.name, ts_ms * 1000)


def _book_change_fields(ev: BookEvent, ts_ms: int) -> bytes:
    """``"timestamp":...,"prev_change_id":...,"change_id":...,"bids":[...],"asks":[...]}``."""
    fields = {
        "timestamp": ts_ms,
        "prev_change_id": ev.prev_change_id,
        "change_id": ev.change_id,
        "bids": ev.bids,
        "asks": ev.asks,
    }
    return orjson.dumps(fields)[1:]


def _change_head(name: str) -> bytes:
    return b'{"type":"change","instrument_name":' + orjson.dumps(name) + b","


def book_change_data(ev: BookEvent, ts_ms: int) -> bytes:
    return _change_head(ev.state.inst.name) + _book_change_fields(ev, ts_ms)


_book_heads: dict[str, bytes] = {}


def book_change_frame(channel: str, ev: BookEvent, ts_ms: int) -> bytes:
    """The whole notification on ``channel``."""
    head = _book_heads.get(channel)
    if head is None:
        if len(_book_heads) > 100_000:
            _book_heads.clear()
        head = notification_head(channel) + _change_head(ev.state.inst.name)
        _book_heads[channel] = head
    return head + _book_change_fields(ev, ts_ms) + b"}}"


def book_change_record(channel: str, ev: BookEvent, ts_ms: int) -> Record:
    return (
        BOOK,
        channel,
        ev.state.inst.name,
        ev.change_id,
        ev.prev_change_id,
        len(ev.bids) + len(ev.asks),
        False,
        ts_ms * 1000,
    )


def book_snapshot(st: OptionState, now_ms: int) -> tuple[bytes, int]:
    """The snapshot sent right after a book subscription, and its timestamp (ms): the
    time of the book's last change (or ``now_ms`` if it never changed)."""
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


def book_snapshot_record(channel: str, st: OptionState, ts_ms: int) -> Record:
    return (BOOK, channel, st.inst.name, st.change_id, None, len(st.bids) + len(st.asks), True, ts_ms * 1000)


def trades_data(trades: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(trades)


def trades_record(channel: str, trades: list[dict[str, Any]]) -> Record:
    keys = tuple((t["instrument_name"], t["trade_id"], t["trade_seq"], t["timestamp"] * 1000) for t in trades)
    return (TRADES, channel, keys)


def index_data(price: float, ts_ms: int) -> bytes:
    return orjson.dumps({"timestamp": ts_ms, "price": price, "index_name": INDEX_NAME})


def index_record(channel: str, ts_ms: int) -> Record:
    return (INDEX, channel, INDEX_NAME, ts_ms * 1000)


def state_data(instrument: str, state: str, ts_ms: int) -> bytes:
    return orjson.dumps({"timestamp": ts_ms, "state": state, "instrument_name": instrument})


def state_record(channel: str, instrument: str, state: str, ts_ms: int) -> Record:
    return (STATES, channel, instrument, state, ts_ms * 1000)


def platform_state_data(locked: bool) -> bytes:
    return orjson.dumps({"price_index": INDEX_NAME, "locked": locked})


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
