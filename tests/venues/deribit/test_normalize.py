"""The normalizer turns the real recorded Deribit frames into exact domain events."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.real import REST_CAPTURE, nautilus_frame
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
from tickarchive.ingest.journal.capture import CaptureRecord, read_capture
from tickarchive.venues.deribit import normalize as n


def _outcomes(ws_records: list[CaptureRecord]) -> list[tuple[CaptureRecord, n.Outcome]]:
    return [(r, n.parse_frame(r.frame, r.recv_ts_us)) for r in ws_records]


def _books(events: list[Event]) -> list[BookChange]:
    out = [e for e in events if isinstance(e, BookChange)]
    assert len(out) == len(events)
    return out


def test_real_capture_every_frame_understood(ws_records) -> None:
    kinds = Counter(type(o).__name__ for _, o in _outcomes(ws_records))
    assert kinds == {"Notification": 135, "Response": 1}
    events = [e for _, o in _outcomes(ws_records) if isinstance(o, n.Notification) for e in o.events]
    by_type = Counter(type(e).__name__ for e in events)
    # 149 levels + 3 markers of empty snapshot sides (book.py)
    assert by_type == {"QuoteTick": 89, "BookChange": 152}


def test_real_ticker_with_greeks_and_ivs(ws_records) -> None:
    _r, o = _outcomes(ws_records)[1]
    assert isinstance(o, n.Notification)
    assert o.channel == "ticker.ETH-30JUL21-2800-C.raw"
    assert o.events == [
        QuoteTick(
            instrument="ETH-30JUL21-2800-C",
            ts_us=1626993723632000,
            recv_ts_us=1626993723804855,
            bid_price=0.0015,
            bid_amount=4714.0,
            ask_price=0.0025,
            ask_amount=873.0,
            bid_iv=115.62,
            ask_iv=125.63,
            mark_iv=120.74,
            mark_price=0.001972,
            underlying_price=2003.61,
            underlying_index="ETH-30JUL21",
            index_price=2006.72,
            delta=0.03127,
            gamma=0.0002,
            vega=0.20072,
            theta=-1.64029,
            rho=0.01188,
            open_interest=12685.0,
            last_price=0.002,
            settlement_price=0.0,
            min_price=0.0001,
            max_price=0.025,
            interest_rate=0.0,
            volume_24h=869.0,
            estimated_delivery_price=2006.72,
            state="open",
            high_24h=0.0025,
            low_24h=0.0015,
            price_change_24h=0.0,
            channel_interval="raw",
        )
    ]


def test_real_ticker_with_both_sides_empty_gives_nulls(ws_records) -> None:
    _, o = _outcomes(ws_records)[2]
    assert isinstance(o, n.Notification)
    (q,) = o.events
    assert isinstance(q, QuoteTick)
    assert q.instrument == "ETH-27AUG21-4000-P"
    assert q.recv_ts_us == 1626993723804947  # 1626993723.8049479 truncated to µs
    assert (q.bid_price, q.bid_amount, q.bid_iv) == (None, None, None)
    assert (q.ask_price, q.ask_amount, q.ask_iv) == (None, None, None)
    assert q.mark_iv == 117.2
    assert q.delta == -0.95701
    assert q.volume_24h is None  # stats.volume: null
    assert q.settlement_price == 1.02


def test_real_book_snapshot_levels(ws_records) -> None:
    books = [o for _, o in _outcomes(ws_records) if isinstance(o, n.Notification) and o.channel.startswith("book.")]
    snap = _books(books[0].events)
    assert len(snap) == 16
    assert all(isinstance(e, BookChange) and e.is_snapshot and e.action is BookAction.SNAPSHOT for e in snap)
    assert snap[0] == BookChange(
        instrument="ETH-30JUL21-2800-C",
        ts_us=1626993723632000,
        recv_ts_us=1626993724 * 10**6 - 1_000_000 + 844026,
        change_id=13169025645,
        prev_change_id=None,
        is_snapshot=True,
        side=Side.BID,
        action=BookAction.SNAPSHOT,
        price=0.0015,
        amount=4714.0,
        channel_interval="raw",
    )
    assert [(e.side, e.price, e.amount) for e in snap[:4]] == [
        (Side.BID, 0.0015, 4714.0),
        (Side.BID, 0.001, 861.0),
        (Side.BID, 0.0005, 1.0),
        (Side.ASK, 0.0025, 873.0),
    ]
    assert snap[-1].price == 0.35
    # an empty snapshot (both sides empty) yields one 'empty' marker per side
    assert books[1].channel == "book.ETH-27AUG21-4000-P.raw"
    assert [(e.side, e.action, e.price, e.amount, e.is_snapshot) for e in _books(books[1].events)] == [
        (Side.BID, BookAction.EMPTY, 0.0, 0.0, True),
        (Side.ASK, BookAction.EMPTY, 0.0, 0.0, True),
    ]


def test_real_book_change_id_chain(ws_records) -> None:
    chain = [
        (e.change_id, e.prev_change_id, e.action, e.side, e.price, e.amount)
        for _, o in _outcomes(ws_records)
        if isinstance(o, n.Notification)
        for e in o.events
        if isinstance(e, BookChange) and e.instrument == "BTC-24SEP21-8000-P" and not e.is_snapshot
    ]
    assert chain[:2] == [
        (33195894355, 33195894164, BookAction.NEW, Side.ASK, 0.001, 2.6),
        (33195894358, 33195894355, BookAction.DELETE, Side.ASK, 0.001, 0.0),
    ]
    ids = [c[0] for c in chain]
    assert len(ids) == 30
    # unbroken: every prev_change_id is the previous change_id (not +1)
    assert [c[1] for c in chain[1:]] == ids[:-1]
    assert ids[2:4] == [33195894526, 33195894530]


def test_real_book_change_two_levels(ws_records) -> None:
    (a, b) = next(
        _books(o.events)
        for _, o in _outcomes(ws_records)
        if isinstance(o, n.Notification) and o.events and getattr(o.events[0], "change_id", 0) == 33195894765
    )
    assert (a.side, a.action, a.price, a.amount, a.prev_change_id) == (
        Side.BID,
        BookAction.CHANGE,
        0.232,
        4.6,
        33195894133,
    )
    assert (b.price, b.amount, b.ts_us) == (0.2325, 1.5, 1626993728374000)


def test_subscribe_response(ws_records) -> None:
    r, o = _outcomes(ws_records)[0]
    assert isinstance(o, n.Response)
    assert o.id == 0
    assert o.error is None
    assert o.server_us == 1626993723847561
    assert o.result is not None
    assert bytes(o.result).startswith(b'["trades.ETH-30JUL21-2800-C.raw"')
    assert n.events_of_response(o, r.recv_ts_us) == []


def test_trades_plain_and_string_ids() -> None:
    o = n.parse_frame(nautilus_frame("ws_trades.json"), 7)
    assert isinstance(o, n.Notification)
    assert o.channel == "trades.BTC-PERPETUAL.100ms"
    assert o.events == [
        TradeTick(
            instrument="BTC-PERPETUAL",
            ts_us=1765531356452000,
            recv_ts_us=7,
            trade_id="403691824",
            trade_seq=271252854,
            price=92294.5,
            amount=10.0,
            direction="sell",
            tick_direction=2,
            mark_price=92287.11,
            index_price=92276.75,
            contracts=1.0,
            combo_trade_id="43",
        ),
        TradeTick(
            instrument="BTC-PERPETUAL",
            ts_us=1765531356452000,
            recv_ts_us=7,
            trade_id="403691825",
            trade_seq=271252855,
            price=92288.5,
            amount=750.0,
            direction="sell",
            tick_direction=2,
            mark_price=92287.11,
            index_price=92276.75,
            contracts=75.0,
        ),
    ]


def test_combo_trade_and_its_legs() -> None:
    o = n.parse_frame(nautilus_frame("ws_trades_option_combo.json"), 9)
    assert isinstance(o, n.Notification)
    combo, leg1, leg2 = o.events
    assert isinstance(combo, TradeTick)
    assert isinstance(leg1, TradeTick)
    assert isinstance(leg2, TradeTick)
    assert (combo.instrument, combo.trade_id, combo.trade_seq, combo.price, combo.combo_id) == (
        "BTC-CS-19MAY26-70000_75000",
        "244365193",
        1,
        0.0639,
        None,
    )
    assert (leg1.instrument, leg1.trade_id, leg1.trade_seq, leg1.iv, leg1.price, leg1.direction) == (
        "BTC-19MAY26-75000-C",
        "244365195",
        8,
        41.01,
        0.0174,
        "buy",
    )
    assert (leg1.combo_id, leg1.combo_trade_id, leg1.ts_us) == (
        "BTC-CS-19MAY26-70000_75000",
        "244365193",
        1779118041757000,
    )
    assert (leg2.instrument, leg2.trade_seq, leg2.iv, leg2.price) == ("BTC-19MAY26-70000-C", 20, 83.39, 0.0813)


def test_perpetual_ticker_funding_fields() -> None:
    o = n.parse_frame(nautilus_frame("ws_ticker.json"), 1)
    assert isinstance(o, n.Notification)
    (q,) = o.events
    assert isinstance(q, QuoteTick)
    assert (q.bid_price, q.ask_price, q.bid_amount, q.ask_amount) == (92283.5, 92284.0, 117660.0, 186520.0)
    assert (q.funding_8h, q.current_funding, q.volume_24h) == (0.00001742, 0.0, 11897.27640428)
    assert (q.bid_iv, q.mark_iv, q.delta, q.underlying_index) == (None, None, None, None)


def test_quote_channel() -> None:
    o = n.parse_frame(nautilus_frame("ws_quote.json"), 1)
    assert isinstance(o, n.Notification)
    (q,) = o.events
    assert isinstance(q, QuoteTick)
    assert (q.instrument, q.ts_us, q.bid_price, q.ask_amount) == ("BTC-PERPETUAL", 1765541767174000, 92288.0, 99470.0)


def test_grouped_book_is_a_snapshot() -> None:
    o = n.parse_frame(nautilus_frame("ws_book_grouped_snapshot.json"), 1)
    assert isinstance(o, n.Notification)
    assert len(o.events) == 20
    first = o.events[0]
    assert isinstance(first, BookChange)
    assert (first.change_id, first.prev_change_id, first.is_snapshot, first.action) == (
        136725664747,
        None,
        True,
        BookAction.SNAPSHOT,
    )
    assert (first.side, first.price, first.amount) == (Side.BID, 89532.5, 254900.0)
    last = o.events[-1]
    assert isinstance(last, BookChange)
    assert (last.side, last.price, last.amount) == (Side.ASK, 89545.5, 29500.0)


def test_heartbeats() -> None:
    assert n.parse_frame(nautilus_frame("ws_test_request.json"), 1) == n.Heartbeat("test_request")
    assert n.parse_frame(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', 1) == n.Heartbeat(
        "heartbeat"
    )


def test_index_and_instrument_state_and_quirks() -> None:
    o = n.parse_frame(
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_price_index.eth_usd",'
        b'"data":{"timestamp":1626993723632,"price":2006.72,"index_name":"eth_usd"}}}',
        5,
    )
    assert isinstance(o, n.Notification)
    assert o.events == [IndexTick("eth_usd", 1626993723632000, 5, 2006.72)]
    o = n.parse_frame(
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"instrument.state.option.ETH",'
        b'"data":{"timestamp":1700000000123,"state":"brand_new_state","instrument_name":"ETH-1JAN27-4000-C",'
        b'"extra":{"x":1}}}}',
        5,
    )
    assert isinstance(o, n.Notification)
    assert o.events == [InstrumentEvent("ETH-1JAN27-4000-C", 1700000000123000, 5, "brand_new_state", kind="option")]
    # estimated_delivery_price "expired", numeric underlying_index, unknown fields, nulls
    o = n.parse_frame(
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.ETH-1JAN27-4000-C.100ms",'
        b'"data":{"timestamp":1,"instrument_name":"ETH-1JAN27-4000-C","estimated_delivery_price":"expired",'
        b'"underlying_index":2000.5,"best_bid_price":null,"best_bid_amount":3.0,"best_ask_price":0.5,'
        b'"best_ask_amount":2.0,"ask_iv":80.1,"bid_iv":0,"new_field":[1,2,{"a":null}],"greeks":null}}}',
        5,
    )
    assert isinstance(o, n.Notification)
    (q,) = o.events
    assert isinstance(q, QuoteTick)
    assert (q.estimated_delivery_price, q.underlying_index, q.bid_price, q.bid_amount) == (None, "2000.5", None, None)
    assert (q.ask_price, q.ask_amount, q.ask_iv, q.delta) == (0.5, 2.0, 80.1, None)
    # a known channel we do not store
    o = n.parse_frame(
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"platform_state",'
        b'"data":{"price_index":"sol_usdc","locked":true}}}',
        1,
    )
    assert o == n.Notification("platform_state", [])


@pytest.mark.parametrize(
    ("frame", "key"),
    [
        (b"not json at all", "invalid_json"),
        (b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.X.100ms"', "invalid_json"),
        (b"[1,2,3]", "unexpected_shape"),
        (b'{"jsonrpc":"2.0","method":"mystery"}', "unexpected_shape"),
        (b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"nosuch.X","data":{}}}', "unknown_channel"),
        (
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.X.100ms","data":{"a":1}}}',
            "invalid_data:ticker",
        ),
        (
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.100ms","data":{"type":"change",'
            b'"timestamp":1,"instrument_name":"X","change_id":2,"prev_change_id":1,"bids":[["zap",1.0,2.0]],"asks":[]}}}',
            "invalid_data:book",
        ),
        (
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.100ms","data":{"type":"change",'
            b'"timestamp":1,"instrument_name":"X","change_id":2,"prev_change_id":1,"bids":[[1.0]],"asks":[]}}}',
            "invalid_data:book",
        ),
        (
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.option.ETH.100ms","data":{}}}',
            "invalid_data:trades",
        ),
        (
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"instrument.creation.option.ETH",'
            b'"data":{}}}',
            "invalid_data:instrument",
        ),
    ],
)
def test_malformed_frames_never_raise(frame: bytes, key: str) -> None:
    o = n.parse_frame(frame, 1)
    assert isinstance(o, n.Malformed)
    assert o.key == key
    assert o.sample == frame[: n.SAMPLE_BYTES]
    assert o.detail


def test_get_instruments_rest_bodies_418_eth_options() -> None:
    _, records = read_capture(REST_CAPTURE)
    recs = [r for r in records if r.rest]
    assert len(recs) == 4
    eth = recs[1]
    o = n.parse_frame(eth.frame, eth.recv_ts_us)
    assert isinstance(o, n.Response)
    events = n.events_of_response(o, eth.recv_ts_us)
    assert len(events) == 426
    options = [e for e in events if isinstance(e, InstrumentEvent) and e.kind == "option"]
    assert len(options) == 418
    first = options[0]
    assert first == InstrumentEvent(
        instrument="ETH-23JUL21-2050-P",
        ts_us=1626993723450156,  # usOut of the response
        recv_ts_us=1626993723416907,
        state="open",  # no state field in 2021: derived from is_active
        kind="option",
        base_currency="ETH",
        quote_currency="ETH",
        settlement_currency=None,
        option_type="put",
        strike=2050.0,
        expiration_us=1627027200000000,
        creation_us=1626891240000000,
        tick_size=0.0005,
        contract_size=1.0,
        min_trade_amount=1.0,
        settlement_period="week",
        instrument_id=None,
    )
    assert Counter(e.option_type for e in options) == {"call": 209, "put": 209}


def test_get_instruments_modern_and_combos() -> None:
    got = n.parse_instruments(nautilus_frame("http_get_instruments.json"), 10)
    assert isinstance(got, list)
    assert [(e.instrument, e.kind, e.instrument_id, e.settlement_period) for e in got[:2]] == [
        ("BTC-PERPETUAL", "future", 124972, "perpetual"),
        ("BTC-27DEC24", "future", 234567, "month"),
    ]
    combos = n.parse_instruments(nautilus_frame("http_get_instruments_option_combo.json"), 10)
    assert isinstance(combos, list)
    assert len(combos) == 6
    assert (combos[1].instrument, combos[1].state, combos[1].creation_us) == (
        "BTC-CS-19MAY26-70000_75000",
        "open",
        1779115098000000,
    )
    bad = n.parse_instruments(b'{"result": 5}', 1)
    assert isinstance(bad, n.Malformed)
    assert bad.key == "invalid_data:get_instruments"


def test_history_trades_are_backfill() -> None:
    page = n.parse_history_trades(nautilus_frame("http_get_last_trades.json"), 3)
    assert isinstance(page, n.HistoryPage)
    assert page.has_more is True
    assert len(page.trades) == 10
    t = page.trades[0]
    assert (t.trade_id, t.trade_seq, t.price, t.source, t.ts_us) == (
        "ETH-284830839",
        203024587,
        2968.3,
        TradeSource.BACKFILL,
        1766332040636000,
    )
    assert [x.trade_seq for x in page.trades] == list(range(203024587, 203024597))
    combo = n.parse_history_trades(nautilus_frame("http_get_last_trades_option_combo.json"), 3)
    assert isinstance(combo, n.HistoryPage)
    assert combo.has_more is False
    assert [(x.instrument, x.trade_seq) for x in combo.trades] == [
        ("BTC-CS-19MAY26-70000_75000", 1),
        ("BTC-19MAY26-75000-C", 8),
        ("BTC-19MAY26-70000-C", 20),
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(frame: bytes) -> None:
    assert isinstance(n.parse_frame(frame, 1), n.Outcome)


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(
        [
            "ticker.X.100ms",
            "book.X.100ms",
            "book.X.none.10.100ms",
            "trades.option.ETH.100ms",
            "deribit_price_index.eth_usd",
            "instrument.state.any.any",
            "quote.X",
            "nosuch",
        ]
    ),
    _json,
)
def test_any_json_data_on_any_channel_never_raises(channel: str, data: object) -> None:
    frame = json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})
    out = n.parse_frame(frame.encode(), 1)
    assert isinstance(out, n.Notification | n.Malformed)
    assert n.parse_frame(frame, 1) == out  # a str frame is accepted too


def test_one_pass_and_general_routes_agree(ws_records: list[CaptureRecord]) -> None:
    from tickarchive.bench.deribit_frames import frames

    samples = [(r.recv_ts_us, r.frame) for r in ws_records] + list(frames(3000, seed=5))
    samples += [
        (1, nautilus_frame(name))
        for name in ("ws_trades.json", "ws_trades_option_combo.json", "ws_ticker.json", "ws_book_grouped_snapshot.json")
    ]
    fast_hits = 0
    for ts, frame in samples:
        fast = n._fast(frame, ts)
        general = n._parse_general(frame, ts)
        if fast is not None:
            fast_hits += 1
            assert fast == general
        assert n.parse_frame(frame, ts) == general
    assert fast_hits > 2900
