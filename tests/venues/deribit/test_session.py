"""The sans-I/O session, driven with literal frames (no sockets, no clocks)."""

from __future__ import annotations

import json
import random
from typing import Any

import msgspec

from tests.real import REST_CAPTURE
from tickarchive.domain import ALL_INSTRUMENTS, BookChange, Gap, GapKind, GapStatus, QuoteTick, TradeTick
from tickarchive.ingest.backfill import MARGIN_US, window_of_gap
from tickarchive.pacing import Backoff, TokenBucket
from tickarchive.venue import (
    GapDetected,
    InstrumentsReceived,
    Malformed,
    ReconnectRequired,
    Rejected,
    RpcFailed,
    Subscribed,
    Unsubscribed,
)
from tickarchive.venues.deribit.session import DeribitSession, SessionConfig, instrument_of_channel

S = 1_000_000  # µs per second
T0 = 1_700_000_000 * S


def _gap(o: object) -> Gap:
    assert isinstance(o, GapDetected)
    return o.gap


def _change_id(o: object) -> int:
    assert isinstance(o, BookChange)
    return o.change_id


def _reason(o: object) -> str:
    assert isinstance(o, ReconnectRequired)
    return o.reason


def _sent(frames: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(f) for f in frames]


def _result(rid: int, result) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "result": result, "usIn": 1, "usOut": 2}).encode()


def _book(inst: str, change_id: int, prev: int | None, ts_ms: int, snapshot: bool = False) -> bytes:
    data: dict[str, Any] = {"timestamp": ts_ms, "instrument_name": inst, "change_id": change_id}
    if snapshot:
        data |= {"type": "snapshot", "bids": [["new", 0.01, 5.0]], "asks": []}
    else:
        data |= {"type": "change", "prev_change_id": prev, "bids": [["change", 0.01, 4.0]], "asks": []}
    return json.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": f"book.{inst}.100ms", "data": data}}
    ).encode()


def _trades(*trades: tuple[str, int, int]) -> bytes:
    data = [
        {
            "trade_id": f"ETH-{seq}",
            "trade_seq": seq,
            "instrument_name": inst,
            "timestamp": ts_ms,
            "price": 0.05,
            "amount": 1.0,
            "direction": "buy",
            "tick_direction": 0,
            "index_price": 2000.0,
            "mark_price": 0.05,
        }
        for inst, seq, ts_ms in trades
    ]
    return json.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "trades.option.ETH.100ms", "data": data}}
    ).encode()


def _ticker(inst: str, ts_ms: int) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {
                "channel": f"ticker.{inst}.100ms",
                "data": {
                    "timestamp": ts_ms,
                    "instrument_name": inst,
                    "best_bid_price": 0.01,
                    "best_bid_amount": 2.0,
                    "best_ask_price": 0.02,
                    "best_ask_amount": 3.0,
                    "mark_iv": 60.5,
                },
            },
        }
    ).encode()


CHANNELS = ["book.ETH-A.100ms", "ticker.ETH-A.100ms", "book.ETH-B.100ms", "trades.option.ETH.100ms"]


def _connected(channels=CHANNELS, per_request: int = 250, limiter=None) -> DeribitSession:
    s = DeribitSession(SessionConfig("c3", channels_per_request=per_request), subscribe_limiter=limiter)
    s.subscribe(channels)
    s.connection_made(T0)
    return s


def _confirm_all(s: DeribitSession, now: int) -> list[Any]:
    out = []
    for msg in _sent(s.data_to_send(now)):
        if msg["method"] == "public/subscribe":
            out += s.receive_frame(_result(msg["id"], msg["params"]["channels"]), now)
    return out


def test_connect_sends_heartbeat_then_subscribe_batches_with_increasing_ids() -> None:
    s = _connected(per_request=2)
    sent = _sent(s.data_to_send(T0))
    assert [(m["id"], m["method"]) for m in sent] == [
        (1, "public/set_heartbeat"),
        (2, "public/subscribe"),
        (3, "public/subscribe"),
    ]
    assert sent[0]["params"] == {"interval": 10}
    assert sent[1]["params"]["channels"] == ["book.ETH-A.100ms", "book.ETH-B.100ms"]
    assert sent[2]["params"]["channels"] == ["ticker.ETH-A.100ms", "trades.option.ETH.100ms"]
    assert s.data_to_send(T0) == []
    assert s.receive_frame(_result(1, "ok"), T0) == []
    # the exchange answers with the channels in another order: compared as sets
    out = s.receive_frame(_result(3, ["trades.option.ETH.100ms", "ticker.ETH-A.100ms"]), T0)
    assert out == [Subscribed(("ticker.ETH-A.100ms", "trades.option.ETH.100ms"))]
    assert s.subscribed_channels == {"ticker.ETH-A.100ms", "trades.option.ETH.100ms"}


def test_refused_channels_become_rejected_gaps_and_resolve_later() -> None:
    s = _connected()
    (_hb, sub) = _sent(s.data_to_send(T0))
    out = s.receive_frame(
        _result(sub["id"], ["ticker.ETH-A.100ms", "book.ETH-A.100ms", "trades.option.ETH.100ms"]), T0 + 5
    )
    assert out[0] == Subscribed(("book.ETH-A.100ms", "ticker.ETH-A.100ms", "trades.option.ETH.100ms"))
    assert out[1] == Rejected(("book.ETH-B.100ms",), "not in the subscribe result")
    gap = _gap(out[2])
    assert (gap.kind, gap.instrument, gap.start_us, gap.end_us, gap.status, gap.connection) == (
        GapKind.REJECTED,
        "ETH-B",
        T0 + 5,
        None,
        GapStatus.OPEN,
        "c3",
    )
    # an error response refuses the whole batch
    s.unsubscribe(["book.ETH-B.100ms"])
    s.subscribe(["book.ETH-C.100ms", "book.ETH-B.100ms"])
    unsub, sub2 = _sent(s.data_to_send(T0 + 10))
    assert unsub["method"] == "public/unsubscribe"
    err = json.dumps(
        {"jsonrpc": "2.0", "id": sub2["id"], "error": {"code": -32600, "message": "request entity too large"}}
    ).encode()
    out = s.receive_frame(err, T0 + 11)
    assert out[0] == Rejected(("book.ETH-C.100ms", "book.ETH-B.100ms"), "error -32600: request entity too large")
    assert [_gap(g).instrument for g in out[1:]] == ["ETH-C"]  # ETH-B's gap is still open, not duplicated
    # a later grant closes the rejected gap
    s.subscribe(["book.ETH-Z.100ms"])
    s.unsubscribe(["book.ETH-Z.100ms"])
    s.data_to_send(T0 + 12)
    s2 = s  # re-request ETH-C explicitly
    s2.unsubscribe(["book.ETH-C.100ms"])
    s2.subscribe(["book.ETH-C.100ms"])
    frames = _sent(s2.data_to_send(T0 + 20))
    sub3 = frames[-1]
    out = s2.receive_frame(_result(sub3["id"], ["book.ETH-C.100ms"]), T0 + 21)
    assert out[0] == Subscribed(("book.ETH-C.100ms",))
    closed = _gap(out[1])
    assert (closed.kind, closed.instrument, closed.start_us, closed.end_us, closed.status) == (
        GapKind.REJECTED,
        "ETH-C",
        T0 + 11,
        T0 + 21,
        GapStatus.RESOLVED,
    )


def test_test_request_is_answered_and_heartbeats_routed() -> None:
    s = _connected()
    s.data_to_send(T0)
    assert s.receive_frame(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}', T0) == []
    (reply,) = _sent(s.data_to_send(T0))
    assert reply["method"] == "public/test"
    assert s.receive_frame(_result(reply["id"], {"version": "1.2.26"}), T0) == []
    assert s.receive_frame(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', T0) == []
    assert s.data_to_send(T0) == []


def test_book_chain_break_resubscribes_only_that_book() -> None:
    s = _connected()
    _confirm_all(s, T0)
    out = s.receive_frame(_book("ETH-A", 100, None, 1000, snapshot=True), T0 + 1)
    assert [type(e) for e in out] == [BookChange, BookChange]  # a level and the empty asks' marker
    out = s.receive_frame(_book("ETH-B", 7, None, 1000, snapshot=True), T0 + 1)
    assert _change_id(s.receive_frame(_book("ETH-A", 250, 100, 1001), T0 + 2)[0]) == 250  # ids are not +1
    assert s.data_to_send(T0 + 2) == []
    out = s.receive_frame(_book("ETH-A", 400, 333, 1005), T0 + 3)  # 251..333 missed
    assert isinstance(out[0], BookChange)  # the data itself is kept
    gap = _gap(out[1])
    assert (gap.kind, gap.instrument, gap.start_us, gap.end_us, gap.status) == (
        GapKind.BOOK_SEQ,
        "ETH-A",
        1_001_000,
        None,
        GapStatus.OPEN,
    )
    assert gap.cause == "book prev_change_id 333 != last change_id 250"
    sent = _sent(s.data_to_send(T0 + 3))
    assert [(m["method"], m["params"]["channels"]) for m in sent] == [
        ("public/unsubscribe", ["book.ETH-A.100ms"]),
        ("public/subscribe", ["book.ETH-A.100ms"]),
    ]
    # in-flight changes before the new snapshot continue the chain from the break: no
    # gap while they link up, ETH-B is untouched
    assert len(s.receive_frame(_book("ETH-A", 500, 400, 1006), T0 + 4)) == 1
    assert len(s.receive_frame(_book("ETH-B", 9, 7, 1006), T0 + 4)) == 1
    # ...and a second break before the snapshot is a second gap, without a second resubscribe
    out = s.receive_frame(_book("ETH-A", 620, 555, 1007), T0 + 4)
    second = _gap(out[1])
    assert (second.start_us, second.end_us, second.cause) == (
        1_006_000,
        None,
        "book prev_change_id 555 != last change_id 500",
    )
    assert s.data_to_send(T0 + 4) == []
    assert s.receive_frame(_result(sent[0]["id"], ["book.ETH-A.100ms"]), T0 + 5) == [
        Unsubscribed(("book.ETH-A.100ms",))
    ]
    assert s.receive_frame(_result(sent[1]["id"], ["book.ETH-A.100ms"]), T0 + 5) == [Subscribed(("book.ETH-A.100ms",))]
    out = s.receive_frame(_book("ETH-A", 900, None, 1010, snapshot=True), T0 + 6)
    closed = [_gap(o) for o in out[2:]]
    assert [(g.start_us, g.end_us, g.status) for g in closed] == [
        (1_001_000, 1_010_000, GapStatus.UNRECOVERABLE),
        (1_006_000, 1_010_000, GapStatus.UNRECOVERABLE),
    ]
    assert _change_id(s.receive_frame(_book("ETH-A", 901, 900, 1011), T0 + 7)[-1]) == 901
    assert s.books.last_change_id("ETH-A") == 901


def test_trade_seq_gap_with_bounds_and_duplicates() -> None:
    s = _connected()
    _confirm_all(s, T0)
    out = s.receive_frame(_trades(("ETH-A", 41, 5000), ("ETH-B", 7, 5000)), T0)
    assert [type(e) for e in out] == [TradeTick, TradeTick]
    out = s.receive_frame(_trades(("ETH-A", 44, 6000), ("ETH-A", 44, 6000), ("ETH-B", 8, 6000)), T0 + 1)
    gaps = [o for o in out if isinstance(o, GapDetected)]
    assert len(gaps) == 1
    g = gaps[0]
    assert (g.first_missing_seq, g.last_missing_seq) == (42, 43)
    assert (g.gap.kind, g.gap.instrument, g.gap.start_us, g.gap.end_us, g.gap.status) == (
        GapKind.TRADE_SEQ,
        "ETH-A",
        5_000_000,
        6_000_000,
        GapStatus.OPEN,
    )
    assert s.trades.duplicates == 1


def test_reconnect_gap_keeps_trade_seq_and_resets_books() -> None:
    s = _connected()
    _confirm_all(s, T0)
    s.receive_frame(_book("ETH-A", 100, None, 1000, snapshot=True), T0 + 1 * S)
    # the last frame read was sent 300 ms before it was received: frames still in the
    # socket when it dies carry exchange ts from there on, so the gap starts there
    s.receive_frame(_trades(("ETH-A", 10, (T0 + 2 * S - 300_000) // 1000)), T0 + 2 * S)
    (opened,) = s.connection_lost(T0 + 3 * S)
    assert isinstance(opened, GapDetected)
    assert (opened.gap.kind, opened.gap.instrument, opened.gap.start_us, opened.gap.end_us) == (
        GapKind.DISCONNECT,
        ALL_INSTRUMENTS,
        T0 + 2 * S - 300_000,
        None,
    )
    assert s.connection_lost(T0 + 4 * S) == []  # twice: still one gap
    assert s.subscribed_channels == frozenset()
    s.connection_made(T0 + 10 * S)
    sent = _sent(s.data_to_send(T0 + 10 * S))
    assert [m["method"] for m in sent] == ["public/set_heartbeat", "public/subscribe"]
    assert sent[0]["id"] > 1  # ids keep increasing across connections
    assert sorted(sent[1]["params"]["channels"]) == sorted(CHANNELS)
    s.receive_frame(_result(sent[1]["id"], CHANNELS), T0 + 10 * S)
    # the book restarts from a new snapshot with no book_seq gap
    out = s.receive_frame(_book("ETH-A", 5000, None, 9000, snapshot=True), T0 + 11 * S)
    closed = [o for o in out if isinstance(o, GapDetected)]
    assert len(closed) == 1
    assert (closed[0].gap.start_us, closed[0].gap.end_us, closed[0].gap.kind) == (
        T0 + 2 * S - 300_000,
        T0 + 11 * S,
        GapKind.DISCONNECT,
    )
    # the backfill re-fetches from the gap start (minus its margin), so a trade at the
    # exchange ts of the last frame read is inside the window
    window = window_of_gap(closed[0].gap)
    assert (window.instrument, window.start_us, window.end_us) == (
        ALL_INSTRUMENTS,
        T0 + 2 * S - 300_000 - MARGIN_US,
        T0 + 11 * S + MARGIN_US,
    )
    # trade_seq tracking survived: 11..12 were missed while disconnected
    out = s.receive_frame(_trades(("ETH-A", 13, (T0 + 11 * S) // 1000)), T0 + 12 * S)
    (tg,) = [o for o in out if isinstance(o, GapDetected)]
    assert (tg.first_missing_seq, tg.last_missing_seq, tg.gap.start_us, tg.gap.end_us) == (
        11,
        12,
        T0 + 2 * S - 300_000,
        T0 + 11 * S,
    )


def test_disconnect_gap_starts_at_the_receive_time_when_the_exchange_ts_is_later() -> None:
    # clocks disagree the other way (exchange ts after our receive time): the receive
    # time is the earlier bound and stays the gap start
    s = _connected()
    _confirm_all(s, T0)
    s.receive_frame(_ticker("ETH-A", (T0 + 2 * S + 5_000) // 1000), T0 + 2 * S)
    (opened,) = s.connection_lost(T0 + 3 * S)
    assert (_gap(opened).kind, _gap(opened).start_us) == (GapKind.DISCONNECT, T0 + 2 * S)


def test_disconnect_gap_start_uses_the_last_data_notification_not_heartbeats_or_replies() -> None:
    s = _connected()
    _confirm_all(s, T0)
    s.receive_frame(_ticker("ETH-A", (T0 + S - 250_000) // 1000), T0 + 1 * S)
    s.receive_frame(_ticker("ETH-A", (T0 + 2 * S - 700_000) // 1000), T0 + 2 * S)
    # a heartbeat read later moves neither the receive nor the exchange bound
    s.receive_frame(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', T0 + 5 * S)
    (opened,) = s.connection_lost(T0 + 6 * S)
    assert _gap(opened).start_us == T0 + 2 * S - 700_000


def test_stale_connection_requires_reconnect_and_becomes_stale_gap() -> None:
    s = _connected()
    _confirm_all(s, T0)
    s.receive_frame(_ticker("ETH-A", (T0 + S - 40_000) // 1000), T0 + 1 * S)
    assert s.poll(T0 + 15 * S) == []
    # heartbeats keep the socket open but carry no data
    s.receive_frame(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', T0 + 12 * S)
    out = s.poll(T0 + 16 * S + 1)
    assert out == [ReconnectRequired("no data for 15.0 s while subscribed")]
    assert s.poll(T0 + 17 * S) == []  # said once
    (g,) = s.connection_lost(T0 + 17 * S)
    assert isinstance(g, GapDetected)
    # the stale gap starts at the exchange ts of the last ticker (40 ms before its receipt)
    assert (g.gap.kind, g.gap.start_us, g.gap.cause) == (GapKind.STALE, T0 + S - 40_000, _reason(out[0]))
    # not subscribed yet: no staleness before the subscription is confirmed
    s.connection_made(T0 + 20 * S)
    s.data_to_send(T0 + 20 * S)
    assert s.poll(T0 + 60 * S) == []


def test_liquid_instrument_silence_is_a_stale_gap() -> None:
    s = _connected()
    s.mark_liquid(["ETH-A"])
    _confirm_all(s, T0)
    s.receive_frame(_ticker("ETH-A", 1000), T0 + 1 * S)
    for t in range(2, 12):
        s.receive_frame(_ticker("ETH-B", 1000 + t), T0 + t * S)  # the connection is alive
    (g,) = s.poll(T0 + 11 * S + 1)
    assert isinstance(g, GapDetected)
    assert (g.gap.kind, g.gap.instrument, g.gap.start_us, g.gap.end_us) == (GapKind.STALE, "ETH-A", T0 + S, None)
    assert s.poll(T0 + 12 * S) == []
    out = s.receive_frame(_ticker("ETH-A", 20000), T0 + 13 * S)
    assert isinstance(out[0], QuoteTick)
    closed = _gap(out[1])
    assert (closed.start_us, closed.end_us, closed.status) == (T0 + S, T0 + 13 * S, GapStatus.UNRECOVERABLE)


def test_subscribe_calls_are_paced_by_the_shared_limiter() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=2, now_us=T0)
    a = _connected(per_request=1, limiter=bucket)
    b = _connected(per_request=1, limiter=bucket)
    assert [m["method"] for m in _sent(a.data_to_send(T0))] == [
        "public/set_heartbeat",
        "public/subscribe",
        "public/subscribe",
    ]
    assert [m["method"] for m in _sent(b.data_to_send(T0))] == ["public/set_heartbeat"]
    assert b.next_send_us(T0) == T0 + 500_001
    assert len(b.data_to_send(T0 + 500_001)) == 1
    assert len(a.data_to_send(T0 + 1_000_002)) == 1


def test_get_instruments_request_and_answer() -> None:
    s = _connected([])
    rid = s.request_instruments("ETH", "option")
    sent = _sent(s.data_to_send(T0))
    assert sent[-1] == {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "public/get_instruments",
        "params": {"currency": "ETH", "expired": False, "kind": "option"},
    }
    body = REST_CAPTURE.read_bytes().splitlines()[1].split(b": ", 1)[1]
    env = json.loads(body)
    env["id"] = rid
    (got,) = s.receive_frame(json.dumps(env).encode(), T0 + 5)
    assert isinstance(got, InstrumentsReceived)
    assert (got.request_id, got.currency, got.kind) == (rid, "ETH", "option")
    assert sum(1 for i in got.instruments if i.kind == "option") == 418


def test_errors_unknown_ids_and_malformed_frames() -> None:
    s = _connected([])
    s.data_to_send(T0)
    rid = s.request_instruments("ETH")
    s.data_to_send(T0)
    err = json.dumps({"jsonrpc": "2.0", "id": rid, "error": {"code": 10028, "message": "too_many_requests"}})
    assert s.receive_frame(err.encode(), T0) == [
        RpcFailed(rid, "public/get_instruments", 10028, "too_many_requests"),
        ReconnectRequired("public/get_instruments refused: too_many_requests (10028)"),
    ]
    assert s.receive_frame(_result(999, "ok"), T0) == [RpcFailed(999, "?", 0, "response to an unknown request id")]
    (bad,) = s.receive_frame(
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.X.100ms","data":{"timestamp":"soon"}}}',
        T0,
    )
    assert isinstance(bad, Malformed)
    assert bad.key == "invalid_data:ticker"
    assert s.frames == 3


def test_instrument_of_channel() -> None:
    assert instrument_of_channel("ticker.ETH-30JUL21-2800-C.100ms") == "ETH-30JUL21-2800-C"
    assert instrument_of_channel("book.BTC-PERPETUAL.none.10.100ms") == "BTC-PERPETUAL"
    assert instrument_of_channel("trades.ETH-30JUL21-2800-C.raw") == "ETH-30JUL21-2800-C"
    assert instrument_of_channel("trades.option.ETH.100ms") is None
    assert instrument_of_channel("deribit_price_index.eth_usd") is None


def test_backoff_is_capped_jittered_and_resets() -> None:
    b = Backoff(0.5, 30.0, random.Random(7))
    delays = [b.next_delay_s() for _ in range(10)]
    ceilings = [min(30.0, 0.5 * 2**i) for i in range(10)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 30.0
    assert len({round(d, 6) for d in delays}) == 10
    b.reset()
    assert 0.25 <= b.next_delay_s() <= 0.5
    # two connections with different seeds do not come back in lock-step
    c = Backoff(0.5, 30.0, random.Random(8))
    assert [round(c.next_delay_s(), 3) for _ in range(3)] != [round(d, 3) for d in delays[:3]]


def test_token_bucket() -> None:
    tb = TokenBucket(rate_per_s=3.0, burst=10, now_us=0)
    assert sum(tb.try_acquire(0) for _ in range(12)) == 10
    assert tb.wait_us(0) == 333_334
    assert not tb.try_acquire(333_000)
    assert tb.try_acquire(334_000)
    assert msgspec.json.encode(Subscribed(("a",))) == b'{"channels":["a"]}'


def test_backoff_delays_generator_matches_backoff() -> None:
    from itertools import islice

    from tickarchive.pacing import backoff_delays

    got = list(islice(backoff_delays(1.0, 8.0, random.Random(3)), 6))
    b = Backoff(1.0, 8.0, random.Random(3))
    assert got == [b.next_delay_s() for _ in range(6)]
    assert all(4.0 <= d <= 8.0 for d in got[3:])


def test_forget_instrument_drops_its_state() -> None:
    s = _connected()
    s.mark_liquid(["ETH-A"])
    _confirm_all(s, T0)
    s.receive_frame(_trades(("ETH-A", 41, 5000)), T0)
    s.receive_frame(_book("ETH-A", 100, None, 1000, snapshot=True), T0)
    s.forget_instrument("ETH-A")
    assert s.trades.last_seq("ETH-A") is None
    assert s.books.last_change_id("ETH-A") is None
    assert s.poll(T0 + 60 * S) == [ReconnectRequired("no data for 60.0 s while subscribed")]


def test_gap_keys_stay_unique() -> None:
    s = _connected(["ticker.ETH-A.100ms", "book.ETH-A.100ms", "trades.option.ETH.100ms"])
    (_hb, sub) = _sent(s.data_to_send(T0))
    out = s.receive_frame(_result(sub["id"], []), T0 + 7)
    keys = [(g.start_us, g.instrument, g.kind) for g in (_gap(o) for o in out[1:])]
    assert keys == [
        (T0 + 7, "ETH-A", GapKind.REJECTED),  # book.ETH-A.100ms
        (T0 + 8, "ETH-A", GapKind.REJECTED),  # ticker.ETH-A.100ms
        (T0 + 9, "trades.option.ETH.100ms", GapKind.REJECTED),
    ]
    # two trade_seq gaps after trades of the same millisecond do not share a key
    s.receive_frame(_trades(("ETH-A", 1, 5000)), T0)
    out = s.receive_frame(_trades(("ETH-A", 3, 5000), ("ETH-A", 6, 5000)), T0)
    starts = [_gap(o).start_us for o in out if isinstance(o, GapDetected)]
    assert starts == [5_000_000, 5_000_001]
