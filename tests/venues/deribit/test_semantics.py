"""Book and quote semantics found wrong on real captures (issue #15), each on real frames.

* a duplicated book notification is a duplicate, not a ``book_seq`` gap;
* after a book gap the chain is still checked, so a second break is a second gap (in a
  replay no snapshot ever comes);
* an empty snapshot is in the table (one ``empty`` marker per side), so a book rebuilt
  from ``book_changes`` is reset by it;
* ``bid_iv``/``ask_iv`` 0.0 on a non-empty side is Deribit's "no IV": NULL;
* ``stats.high``/``low``/``price_change``/``volume_usd``, the perpetual's
  ``interest_value``, the expired option's ``delivery_price``, the combo fields and the
  channel interval are stored.

The native fast path must give the same rows for each frame (tests/venues/deribit/test_native.py
``check``), so every frame here also goes through it.
"""

from __future__ import annotations

import json
from typing import Any

from tests.real import (
    CRYPTO_MSG_PARSER,
    NAUTILUS,
    TARDIS,
    WS_CAPTURE,
    WS_CAPTURE_APRIL,
    capture_lines,
    jsonl_frame,
    nautilus_frame,
)
from tickarchive.domain import BookAction, BookChange, ComboLeg, GapKind, GapStatus, QuoteTick, Side
from tickarchive.venue import GapDetected
from tickarchive.venues.deribit import normalize as n
from tickarchive.venues.deribit.adapter import ReplayDecoder
from tickarchive.venues.deribit.session import DeribitSession, SessionConfig

from .test_native import check

S = 1_000_000


def _book_frames(path: Any, instrument: str) -> list[tuple[int, bytes]]:
    """``(recv_ts_us, frame)`` of every book notification of ``instrument`` in a capture."""
    return [
        (int(ts * S), frame)
        for ts, frame in capture_lines(path)
        if f'"channel":"book.{instrument}.'.encode() in frame
    ]


def _quote(frame: bytes, recv_ts_us: int = 1) -> QuoteTick:
    o = n.parse_frame(frame, recv_ts_us)
    assert isinstance(o, n.Notification), o
    (q,) = o.events
    assert isinstance(q, QuoteTick)
    check(frame, recv_ts_us)  # the native path gives the same row
    return q


# ---------------------------------------------------------------------------- book chains

BUSY = "BTC-30APR21-54000-C"
"""22 book messages (a snapshot and 21 changes) with an unbroken prev_change_id chain."""


def test_the_real_chain_is_unbroken() -> None:
    frames = _book_frames(WS_CAPTURE_APRIL, BUSY)
    assert len(frames) == 22
    dec = ReplayDecoder("replay")
    assert [g for ts, f in frames for g in dec.decode(f, ts).gaps] == []


def test_a_duplicated_book_notification_is_a_duplicate_not_a_gap() -> None:
    frames = _book_frames(WS_CAPTURE_APRIL, BUSY)
    doubled = [*frames[:8], frames[7], *frames[8:]]  # message 8 delivered twice
    dec = ReplayDecoder("replay")
    assert [g for ts, f in doubled for g in dec.decode(f, ts).gaps] == []
    assert dec._books.duplicates == 1

    s = DeribitSession(SessionConfig("c0"))
    s.subscribe([f"book.{BUSY}.raw"])
    s.connection_made(frames[0][0])
    outs = [o for ts, f in doubled for o in s.receive_frame(f, ts)]
    assert [o for o in outs if isinstance(o, GapDetected)] == []
    assert s.books.duplicates == 1


def test_a_second_break_after_a_gap_is_a_second_gap() -> None:
    frames = _book_frames(WS_CAPTURE_APRIL, BUSY)
    kept = [f for i, f in enumerate(frames) if i not in (5, 14)]  # two changes lost, far apart
    dec = ReplayDecoder("replay")  # a replay: no snapshot ever comes after a break
    gaps = [g for ts, f in kept for g in dec.decode(f, ts).gaps]
    data = [json.loads(f)["params"]["data"] for _ts, f in frames]
    assert [(g.kind, g.instrument, g.start_us, g.end_us, g.status) for g in gaps] == [
        (GapKind.BOOK_SEQ, BUSY, data[4]["timestamp"] * 1000, None, GapStatus.OPEN),
        (GapKind.BOOK_SEQ, BUSY, data[13]["timestamp"] * 1000, None, GapStatus.OPEN),
    ]
    cause = f"book prev_change_id {data[15]['prev_change_id']} != last change_id {data[13]['change_id']}"
    assert gaps[1].cause == cause

    # live: the first break asks for a snapshot once; the second is reported too
    s = DeribitSession(SessionConfig("c0"))
    s.subscribe([f"book.{BUSY}.raw"])
    s.connection_made(frames[0][0])
    s.data_to_send(frames[0][0])
    outs = [o for ts, f in kept for o in s.receive_frame(f, ts)]
    assert [o.gap.start_us for o in outs if isinstance(o, GapDetected)] == [g.start_us for g in gaps]
    sent = [json.loads(f)["method"] for f in s.data_to_send(frames[-1][0])]
    assert sent == ["public/unsubscribe", "public/subscribe"]


# ---------------------------------------------------------------------------- empty snapshots


def _rebuild(rows: list[BookChange]) -> dict[str, dict[float, float]]:
    """A book rebuilt from ``book_changes`` rows the documented way: rows in (ts,
    change_id) order; the rows of a snapshot reset the book, ``empty`` rows add nothing;
    other rows set (amount 0: remove) their level."""
    book: dict[str, dict[float, float]] = {"bid": {}, "ask": {}}
    reset_at: int | None = None
    for r in rows:
        if r.is_snapshot and reset_at != r.change_id:
            book = {"bid": {}, "ask": {}}
            reset_at = r.change_id
        if r.action is BookAction.EMPTY:
            continue
        if r.amount == 0.0:
            book[r.side.value].pop(r.price, None)
        else:
            book[r.side.value][r.price] = r.amount
    return book


def test_a_never_quoted_book_snapshot_is_in_the_table() -> None:
    ((ts, frame),) = _book_frames(WS_CAPTURE_APRIL, "ETH-7MAY21-2100-C")
    assert json.loads(frame)["params"]["data"] | {} == {
        "type": "snapshot",
        "timestamp": 1618677844534,
        "instrument_name": "ETH-7MAY21-2100-C",
        "change_id": 0,
        "bids": [],
        "asks": [],
    }
    o = n.parse_frame(frame, ts)
    assert isinstance(o, n.Notification)
    assert [(e.side, e.action, e.change_id, e.price, e.amount, e.is_snapshot) for e in o.events] == [  # type: ignore[union-attr]
        (Side.BID, BookAction.EMPTY, 0, 0.0, 0.0, True),
        (Side.ASK, BookAction.EMPTY, 0, 0.0, 0.0, True),
    ]
    check(frame, ts)


def test_an_empty_resubscribe_snapshot_resets_the_rebuilt_book() -> None:
    """The real empty snapshot of ETH-27AUG21-4000-P, after levels of that book (made up:
    the capture holds only its snapshot): rebuilt from the rows, the book is empty."""
    ((ts, empty),) = _book_frames(WS_CAPTURE, "ETH-27AUG21-4000-P")
    earlier = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {
                "channel": "book.ETH-27AUG21-4000-P.raw",
                "data": {
                    "type": "snapshot",
                    "timestamp": 1626993000000,
                    "instrument_name": "ETH-27AUG21-4000-P",
                    "change_id": 13167000000,
                    "bids": [["new", 0.95, 3.0]],
                    "asks": [["new", 1.05, 2.0]],
                },
            },
        }
    ).encode()
    rows = []
    for f in (earlier, empty):
        o = n.parse_frame(f, ts)
        assert isinstance(o, n.Notification)
        rows += [e for e in o.events if isinstance(e, BookChange)]
    assert _rebuild(rows[:2]) == {"bid": {0.95: 3.0}, "ask": {1.05: 2.0}}
    assert _rebuild(rows) == {"bid": {}, "ask": {}}  # without the markers it kept both levels


def test_rebuilding_a_real_chain_from_rows_matches_the_frames() -> None:
    frames = _book_frames(WS_CAPTURE_APRIL, BUSY)
    rows: list[BookChange] = []
    direct: dict[str, dict[float, float]] = {"bid": {}, "ask": {}}
    for ts, f in frames:
        o = n.parse_frame(f, ts)
        assert isinstance(o, n.Notification)
        rows += [e for e in o.events if isinstance(e, BookChange)]
        d = json.loads(f)["params"]["data"]
        for side, levels in (("bid", d["bids"]), ("ask", d["asks"])):
            for _action, price, amount in levels:
                if amount:
                    direct[side][price] = amount
                else:
                    direct[side].pop(price, None)
        check(f, ts)
    assert _rebuild(rows) == direct


# ---------------------------------------------------------------------------- tickers


def test_bid_iv_zero_on_a_real_bid_is_null() -> None:
    """BTC-25JUN21-28000-C (deep in the money): a real bid of 0.562 with bid_iv 0.0."""
    frame = next(
        f
        for _ts, f in capture_lines(WS_CAPTURE_APRIL)
        if b'"channel":"ticker.BTC-25JUN21-28000-C.raw"' in f and b'"bid_iv":0.0' in f
    )
    d = json.loads(frame)["params"]["data"]
    assert (d["best_bid_price"], d["best_bid_amount"], d["bid_iv"]) == (0.562, 10.0, 0.0)
    q = _quote(frame)
    assert (q.bid_price, q.bid_amount, q.bid_iv) == (0.562, 10.0, None)
    assert q.ask_iv == d["ask_iv"] != 0.0


def test_every_zero_iv_of_the_real_captures_is_null_and_every_other_kept() -> None:
    seen = 0
    for path in (WS_CAPTURE_APRIL, WS_CAPTURE):
        for ts, frame in capture_lines(path):
            if b'"channel":"ticker.' not in frame[:90]:
                continue
            d = json.loads(frame)["params"]["data"]
            q = _quote(frame, int(ts * S))
            for side, got in (("bid", q.bid_iv), ("ask", q.ask_iv)):
                if not d[f"best_{side}_amount"] or d[f"{side}_iv"] == 0.0:
                    assert got is None
                else:
                    assert got == d[f"{side}_iv"]
            seen += 1
    assert seen == 92 + 89


def test_combo_tickers_keep_their_quotes_and_fields() -> None:
    spread = _quote(jsonl_frame(TARDIS, "ticker.BTC-FS-30SEP22_PERP.raw"))
    assert (spread.bid_price, spread.bid_amount, spread.ask_price) == (-7.0, 300000.0, -5.0)  # negative bid kept
    assert (spread.implied_bid, spread.implied_ask, spread.combo_state) == (8.5, 10.5, "active")
    assert spread.volume_usd_24h is None
    assert spread.last_price == -13.5
    csr = _quote(jsonl_frame(TARDIS, "ticker.BTC-CSR12-16SEP22-21000_23000.raw"))
    assert (csr.bid_price, csr.bid_iv, csr.ask_price, csr.ask_iv) == (0.003, None, 0.008, None)
    assert (csr.mark_iv, csr.underlying_index, csr.implied_bid) == (-74.2, "index_price", 0.004)
    assert csr.last_price is None
    assert csr.high_24h is None


def test_expired_option_ticker() -> None:
    q = _quote(jsonl_frame(TARDIS, "ticker.BTC-8JUN20-8750-P.raw"))
    assert (q.state, q.estimated_delivery_price, q.delivery_price, q.mark_price) == ("closed", None, 9728.65, 0.0)
    assert (q.ask_iv, q.bid_price, q.ask_price) == (None, None, None)  # ask_iv 500.0 on an empty side
    assert (q.high_24h, q.low_24h, q.price_change_24h, q.volume_24h) == (0.0005, 0.0005, 0.0, 2.5)
    assert q.channel_interval == "raw"


def test_future_and_perpetual_tickers_store_stats_and_interest() -> None:
    fut = _quote(jsonl_frame(CRYPTO_MSG_PARSER, "ticker.BTC-30SEP22.100ms"))
    assert (fut.high_24h, fut.low_24h, fut.price_change_24h) == (32248.0, 29592.5, -5.5392)
    assert (fut.volume_24h, fut.volume_usd_24h, fut.channel_interval) == (754.95506101, 23223070.0, "100ms")
    assert fut.funding_8h is None
    assert fut.interest_value is None
    perp = _quote(nautilus_frame("ws_ticker.json"))
    raw = json.loads((NAUTILUS / "ws_ticker.json").read_text())["params"]["data"]
    assert perp.interest_value == raw["interest_value"]
    assert perp.volume_notional_24h == raw["stats"]["volume_notional"]
    assert (perp.funding_8h, perp.current_funding) == (raw["funding_8h"], raw["current_funding"])
    assert perp.channel_interval == "100ms"


def test_last_price_undefined_is_null() -> None:
    """``last_price: "undefined"`` was seen on SOL-29APR22-95-C (a capture we may not copy:
    no licence); the same string put into a real ticker."""
    frame = jsonl_frame(CRYPTO_MSG_PARSER, "ticker.BTC-30SEP22-60000-C.100ms")
    assert b'"last_price":0.009' in frame
    q = _quote(frame.replace(b'"last_price":0.009', b'"last_price":"undefined"'))
    assert q.last_price is None
    assert q.mark_iv == 67.7


def test_the_channel_interval_is_on_every_quote_and_book_row() -> None:
    for path in (WS_CAPTURE_APRIL, WS_CAPTURE):
        for ts, frame in capture_lines(path):
            o = n.parse_frame(frame, int(ts * S))
            if isinstance(o, n.Notification) and o.channel.startswith(("ticker.", "book.")):
                assert {e.channel_interval for e in o.events} <= {"raw"}  # type: ignore[union-attr]
    grouped = n.parse_frame(jsonl_frame(CRYPTO_MSG_PARSER, "book.BTC-PERPETUAL.none.20.100ms"), 1)
    assert isinstance(grouped, n.Notification)
    assert {e.channel_interval for e in grouped.events} == {"100ms"}  # type: ignore[union-attr]
    quote = n.parse_frame(jsonl_frame(CRYPTO_MSG_PARSER, "quote.BTC-PERPETUAL"), 1)
    assert isinstance(quote, n.Notification)
    assert [e.channel_interval for e in quote.events] == [None]  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- combos


def test_get_combos_gives_the_legs() -> None:
    body = (NAUTILUS / "http_get_combos.json").read_bytes()
    legs = n.parse_combos(body, 5, 7)
    assert isinstance(legs, list)
    payload = json.loads(body)["result"]
    assert len(legs) == sum(len(c["legs"]) for c in payload)
    assert legs[:2] == [
        ComboLeg("BTC-BOX-25DEC26-58000_60000", 7, 5, "BTC-25DEC26-58000-C", 1.0, "active", 584639),
        ComboLeg("BTC-BOX-25DEC26-58000_60000", 7, 5, "BTC-25DEC26-58000-P", -1.0, "active", 584639),
    ]
    # a get_combos answer read without its request (replay, catch-up) gives the same rows
    o = n.parse_frame(body, 5)
    assert isinstance(o, n.Response)
    assert n.events_of_response(o, 5) == [
        ComboLeg(c.combo, o.server_us or 5, 5, c.instrument, c.amount, c.state, c.combo_instrument_id) for c in legs
    ]


# ---------------------------------------------------------------------------- combo legs


def test_a_combo_trades_legs_arriving_first_are_no_trade_seq_gap() -> None:
    """The real combo trade BTC-CS-19MAY26-70000_75000 carries its legs (leg trade_seq 8
    and 20). On the combo's channel it can arrive before the legs' own streams deliver
    their earlier trades: that is no gap; a real jump on a leg's own stream still is."""
    combo = nautilus_frame("ws_trades_option_combo.json")
    legs = json.loads(combo)["params"]["data"][0]["legs"]
    s = DeribitSession(SessionConfig("c0"))
    for leg in legs:  # the legs' streams so far: two trades before the combo's
        s.trades.seed(leg["instrument_name"], leg["trade_seq"] - 2, 1)
    outs = s.receive_frame(combo, 10)
    assert [o for o in outs if isinstance(o, GapDetected)] == []
    own = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {
            "channel": "trades.option.BTC.100ms",
            "data": [{**leg, "trade_seq": leg["trade_seq"] - 1, "trade_id": f"x{i}"} for i, leg in enumerate(legs)]
            + legs,
        },
    }
    outs = s.receive_frame(json.dumps(own).encode(), 11)
    assert [o for o in outs if isinstance(o, GapDetected)] == []
    own["params"]["data"] = [{**legs[0], "trade_seq": legs[0]["trade_seq"] + 2, "trade_id": "y"}]
    (gap,) = [o for o in s.receive_frame(json.dumps(own).encode(), 12) if isinstance(o, GapDetected)]
    assert (gap.first_missing_seq, gap.last_missing_seq) == (legs[0]["trade_seq"] + 1, legs[0]["trade_seq"] + 1)
    # the same through the replay decoder
    dec = ReplayDecoder("replay")
    for leg in legs:
        dec._trades.seed(leg["instrument_name"], leg["trade_seq"] - 2, 1)
    assert dec.decode(combo, 10).gaps == []
