"""The native fast path (``tickarchive.venues.deribit.native``, crate ``native/``) gives exactly what the
reference path gives: for every ticker/book frame it accepts, the ILP bytes of the
events ``parse_frame`` makes of it (``IlpEncoder(2)``, row by row), the same row count,
instrument, exchange time, channel and ``BookIds``. Where it returns ``None`` the caller
uses the reference path; for the ordinary shapes (real captures, simulators) it must not.

These tests fail (not skip) when the extension is missing, unless ``TICKARCHIVE_NATIVE=0``
(then only the fallback is checked).
"""

from __future__ import annotations

import json
import os
import struct
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.real import (
    CRYPTO_MSG_PARSER,
    NAUTILUS,
    TARDIS,
    WS_CAPTURE_APRIL,
    capture_lines,
    jsonl_frames,
    nautilus_frame,
)
from tickarchive.domain import EncodedRows
from tickarchive.store.ilp import IlpEncoder
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.venues.deribit import native
from tickarchive.venues.deribit.normalize import Notification, parse_frame
from tickarchive.venues.deribit.sequence import BookIds

SWITCHED_OFF = os.environ.get("TICKARCHIVE_NATIVE") == "0"
native_on = pytest.mark.skipif(SWITCHED_OFF, reason="TICKARCHIVE_NATIVE=0: native fast path switched off")


# ---------------------------------------------------------------------------- helpers


def reference(frame: bytes, recv_ts_us: int) -> tuple[Any, dict[str, tuple[bytes, int]]]:
    """``parse_frame`` and the protocol-v2 bytes of its events (row path), per table."""
    o = parse_frame(frame, recv_ts_us)
    enc = IlpEncoder(2, batch_min_rows=10**9)
    enc.add_all(o.events if isinstance(o, Notification) else [])
    return o, {t: (bytes(b), n) for t, (b, n) in enc.take().items()}


def _via_tuple(frame: bytes, recv_ts_us: int) -> Notification | None:
    import tickarchive_native

    return native._with_tuple(tickarchive_native.encode_frame)(frame, recv_ts_us)


def check(frame: bytes, recv_ts_us: int) -> Notification | None:
    """The native result for ``frame``, after asserting it equals the reference (when
    the native path gives one). Never lets the native path raise."""
    got = native.fast_notification(frame, recv_ts_us)
    if not SWITCHED_OFF:  # the extension's own wrapper == the documented Python one over encode_frame
        assert got == _via_tuple(frame, recv_ts_us)
    if got is None:
        return None
    try:
        o, tables = reference(frame, recv_ts_us)
    except Exception as exc:  # the reference path cannot encode it: native must not either
        raise AssertionError(f"native accepted a frame the reference path fails on ({exc!r}): {frame!r}") from exc
    assert isinstance(o, Notification), (o, frame)
    assert got.channel == o.channel
    assert got.book == o.book
    if got.events:
        (e,) = got.events
        assert type(e) is EncodedRows
        assert e.rows == len(o.events) > 0
        assert tables == {e.table: (e.payload, e.rows)}, frame
        first = o.events[0]
        assert (e.instrument, e.ts_us) == (first.instrument, first.ts_us)  # type: ignore[union-attr]
        if e.table == "quotes":
            assert got.book is None
        else:
            assert got.book == BookIds(e.instrument, e.ts_us, *_ids(got.book))
    else:
        assert o.events == []
        assert tables == {}
        assert got.book is not None
    return got


def _ids(b: BookIds | None) -> tuple[int, int | None, bool]:
    assert b is not None
    return b.change_id, b.prev_change_id, b.is_snapshot


def _is_ticker_or_book(frame: bytes) -> bool:
    o = parse_frame(frame, 1)
    return isinstance(o, Notification) and (
        o.channel.startswith("ticker.") or (o.channel.startswith("book.") and o.channel.count(".") == 2)
    )


# ---------------------------------------------------------------------------- availability


def test_extension_present_unless_switched_off() -> None:
    if SWITCHED_OFF:
        assert not native.ENABLED
        frame = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.raw","data":{}}}'
        assert native.fast_notification(frame, 1) is None
    else:
        assert native.AVAILABLE, "tickarchive_native is not installed: make install builds it (native/)"
        assert native.ENABLED


@native_on
def test_raw_tuple_shape() -> None:
    import tickarchive_native

    frame = (
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X-1.raw","data":'
        b'{"type":"change","timestamp":5,"instrument_name":"X-1","change_id":9,"prev_change_id":7,'
        b'"bids":[["delete",1.5,0.0]],"asks":[]}}}'
    )
    t = tickarchive_native.encode_frame(frame, 12)
    assert t is not None
    assert t[:2] == ("book.X-1.raw", "book_changes")
    assert t[3:] == (1, "X-1", 5000, 9, 7, False)
    assert t[2] == (
        b"book_changes,instrument=X-1,side=bid,action=delete,channel_interval=raw recv_ts=12t,change_id=9i,"
        b"prev_change_id=7i,"
        b"is_snapshot=f,price==\x10" + struct.pack("<d", 1.5) + b",amount==\x10" + struct.pack("<d", 0.0) + b" 5000t\n"
    )
    empty = frame.replace(b'[["delete",1.5,0.0]]', b"[]")
    assert tickarchive_native.encode_frame(empty, 12) == (
        "book.X-1.raw",
        "book_changes",
        b"",
        0,
        "X-1",
        5000,
        9,
        7,
        False,
    )
    n = native.fast_notification(empty, 12)
    assert n is not None
    assert n.events == []
    assert n.book == BookIds("X-1", 5000, 9, 7, False)


@native_on
def test_odd_arguments_give_none_never_raise(ws_records) -> None:
    import tickarchive_native

    frame = next(r.frame for r in ws_records if r.frame.startswith(b'{"jsonrpc":"2.0","method":"subscription"'))
    assert native.fast_notification(frame, 1) is not None
    for f, ts in [
        (frame.decode(), 1),
        (bytearray(frame), 1),
        (memoryview(frame), 1),
        (None, 1),
        (frame, -1),
        (frame, 2**63),
        (frame, 1.0),
        (frame, None),
    ]:
        assert native.fast_notification(f, ts) is None  # type: ignore[arg-type]
        assert tickarchive_native.encode_frame(f, ts) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- (a) real captures


@native_on
def test_real_capture_every_ticker_and_book_frame(ws_records) -> None:
    seen = 0
    for r in ws_records:
        if not _is_ticker_or_book(r.frame):
            assert check(r.frame, r.recv_ts_us) is None
            continue
        got = check(r.frame, r.recv_ts_us)
        assert got is not None, r.frame
        seen += 1
    assert seen == 135  # 89 tickers + 46 books


@native_on
def test_every_other_real_ticker_and_book_frame() -> None:
    """The 2021-04 capture, the tardis and crypto-msg-parser messages: options, futures,
    perpetuals, combos, an expired option, a change_id-0 snapshot, bid_iv 0.0 on real bids."""
    seen = 0
    frames = [(int(ts * 1e6), f) for ts, f in capture_lines(WS_CAPTURE_APRIL)]
    frames += [(1_700_000_000_000_000, f) for path in (TARDIS, CRYPTO_MSG_PARSER) for f in jsonl_frames(path)]
    for recv, frame in frames:
        got = check(frame, recv)
        if _is_ticker_or_book(frame):
            assert got is not None, frame
            seen += 1
        else:
            assert got is None, frame
    assert seen == 92 + 56 + 14 + 8  # April tickers and books, tardis, crypto-msg-parser


@native_on
def test_nautilus_fixtures() -> None:
    accepted = []
    for path in sorted(NAUTILUS.glob("ws_*.json")):
        frame = nautilus_frame(path.name)
        got = check(frame, 1_700_000_000_000_000)
        if _is_ticker_or_book(frame):
            assert got is not None, path.name
            accepted.append(path.name)
        else:
            assert got is None, path.name
    assert accepted == ["ws_ticker.json"]  # the book fixture is a grouped book (Python path)


# ---------------------------------------------------------------------------- (b) simulators


@native_on
def test_synthetic_bench_frames() -> None:
    from tickarchive.bench.deribit_frames import frames

    n = 0
    for ts, frame in frames(4000, seed=3):
        got = check(frame, ts)
        if _is_ticker_or_book(frame):
            assert got is not None, frame
            n += 1
        else:
            assert got is None
    assert n > 3000


@native_on
def test_loadtest_simulator_frames(tmp_path) -> None:
    from tickarchive.loadtest.sim import SimConfig
    from tickarchive.loadtest.sim import encode as enc
    from tickarchive.loadtest.sim.connection import with_unknown_field
    from tickarchive.loadtest.sim.market import BookEvent, MarketModel, TickerEvent

    cfg = SimConfig(
        seed=11,
        start_ms=1_795_000_000_000,
        instruments=80,
        rate_per_s=5000.0,
        trades_per_s=40.0,
        heartbeat_scale=0.02,
        sendlog_dir=tmp_path / "sendlog",
        currencies=("ETH", "BTC"),
        kinds=("option", "future", "option_combo"),
    )
    model = MarketModel(cfg, 1_795_000_000_000)
    frames: list[bytes] = []
    now = 1_795_000_000_000
    states = list(model.states.values())
    for st_ in states[:40] + states[-30:]:  # options; futures, perpetuals, combos
        data, _ = enc.book_snapshot(st_, now)
        frames.append(enc.notification(f"book.{st_.inst.name}.100ms", data))
    while len(frames) < 3000:
        now += cfg.tick_ms
        for ev in model.step(now):
            if isinstance(ev, TickerEvent):
                ch = f"ticker.{ev.state.inst.name}.100ms"
                frames.append(enc.notification(ch, enc.ticker_data(model, ev.state, ev.ts_ms)))
            elif isinstance(ev, BookEvent):
                frames.append(enc.book_change_frame(f"book.{ev.state.inst.name}.100ms", ev))
    frames += [with_unknown_field(f) for f in frames[:300]]
    kinds = {b"ticker": 0, b"book": 0}
    for i, frame in enumerate(frames):
        assert _is_ticker_or_book(frame)
        got = check(frame, now * 1000 + i)
        assert got is not None, frame
        kinds[frame.split(b'"channel":"', 1)[1].split(b".", 1)[0]] += 1
    assert min(kinds.values()) > 100, kinds


# ---------------------------------------------------------------------------- (c) generated payloads


class RawJson(str):
    """JSON text put into a frame as is (numbers msgspec and ``json`` disagree on: ``-0``, ``1e400``)."""


def dump(v: Any, ascii_only: bool) -> str:
    if isinstance(v, RawJson):
        return str(v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(x, ascii_only)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dump(x, ascii_only) for x in v) + "]"
    return json.dumps(v, ensure_ascii=ascii_only)


# Two regimes: ``clean`` draws values a real feed could send (every number shape, nulls,
# zeros, empty sides, odd but escape-free names), which the native path should take;
# otherwise anything goes (wrong types, missing fields, escapes, out-of-range numbers).
odd_numbers = st.sampled_from(
    [
        "-0",
        "-0.0",
        "0",
        "0.0",
        "-0e0",
        "1e-400",
        "-1e-400",
        "1E5",
        "1.5e+3",
        "18446744073709551616",
        "9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "0.30000000000000004441",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "1.7976931348623157e308",
        "9007199254740993",
        "0.1000000000000000055511151231257827021181583404541015625",
        "4.9406564584124654e-324",
    ]
).map(RawJson)
out_of_range = st.sampled_from(["1e400", "-1e400", "1" + "0" * 400, "1.7976931348623159e308"]).map(RawJson)
digit_numbers = st.builds(
    lambda sign, i, f, e: RawJson(f"{sign}{i}{'.' + f if f else ''}{'e' + str(e) if e is not None else ''}"),
    st.sampled_from(["", "-"]),
    st.from_regex(r"\A(0|[1-9][0-9]{0,25})\Z"),
    st.from_regex(r"\A[0-9]{0,25}\Z"),
    st.none() | st.integers(-330, 300),
)
floats = st.floats(allow_nan=False, allow_infinity=False)
clean_numbers = st.one_of(
    floats, st.integers(-(2**70), 2**70), st.sampled_from([0, 0.0, -0.0, 1, 5e-324]), odd_numbers, digit_numbers
)
wrong = st.one_of(st.text(max_size=5), st.booleans(), st.just([]), st.just({}), st.just([1.0]), out_of_range)
clean_names = st.one_of(
    st.sampled_from(["ETH-30JUL21-2800-C", "BTC-PERPETUAL", "a b,c=d", "", "é€😀", "\u2028", "x=", ",", " "]),
    st.text(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters='\\"'), max_size=12),
)
any_names = st.one_of(clean_names, st.text(max_size=12), st.sampled_from(["x\\y", 'q"t', "n\nl", "\x00"]))
clean_ints = st.one_of(st.integers(0, 2**40), st.integers(-(2**63), 2**63 - 1))
any_ints = st.one_of(clean_ints, st.integers(-(2**64), 2**65), st.sampled_from([RawJson("-0"), 1.0, "1", None]))

TICKER_FLOATS = (
    "best_bid_price",
    "best_bid_amount",
    "best_ask_price",
    "best_ask_amount",
    "bid_iv",
    "ask_iv",
    "mark_iv",
    "mark_price",
    "underlying_price",
    "index_price",
    "open_interest",
    "last_price",
    "settlement_price",
    "min_price",
    "max_price",
    "interest_rate",
    "current_funding",
    "funding_8h",
    "interest_value",
    "delivery_price",
    "implied_bid",
    "implied_ask",
)
STATS = ("volume", "volume_usd", "high", "low", "price_change", "volume_notional")


class Gen:
    """The value strategies of one regime."""

    def __init__(self, clean: bool) -> None:
        self.clean = clean
        self.names = clean_names if clean else any_names
        self.ints = clean_ints if clean else any_ints
        self.number = clean_numbers if clean else st.one_of(clean_numbers, wrong)
        self.maybe_number = st.one_of(st.none(), self.number, self.number)

    def required(self, draw: st.DrawFn) -> bool:
        return self.clean or draw(st.integers(0, 8)) > 0


@st.composite
def ticker_data(draw: st.DrawFn, g: Gen) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if g.required(draw):
        d["instrument_name"] = draw(g.names)
    if g.required(draw):
        d["timestamp"] = draw(g.ints)
    for f in draw(st.lists(st.sampled_from(TICKER_FLOATS), unique=True)):
        d[f] = draw(g.maybe_number)
    for f in ("bid_iv", "ask_iv", "best_bid_amount", "best_ask_price"):  # empty sides
        if draw(st.booleans()):
            d[f] = draw(st.sampled_from([0, 0.0, -0.0, RawJson("-0"), None, 1.5, 3]))
    group = st.one_of(st.none(), st.just({})) if g.clean else st.one_of(st.none(), wrong)
    if draw(st.booleans()):
        greek = st.sampled_from(["delta", "gamma", "vega", "theta", "rho", "other"])
        d["greeks"] = draw(st.one_of(group, st.dictionaries(greek, g.maybe_number)))
    if draw(st.booleans()):
        d["stats"] = draw(st.one_of(group, st.dictionaries(st.sampled_from([*STATS, "other"]), g.maybe_number)))
    if draw(st.booleans()):  # "undefined" (seen on a real SOL option)
        d["last_price"] = draw(st.one_of(st.just("undefined"), g.maybe_number, g.names))
    if draw(st.booleans()):
        d["combo_state"] = draw(st.one_of(st.none(), g.names) if g.clean else st.one_of(g.names, g.number))
    if draw(st.booleans()):
        d["underlying_index"] = draw(st.one_of(st.none(), g.names) if g.clean else st.one_of(g.names, g.number))
    if draw(st.booleans()):
        d["estimated_delivery_price"] = draw(st.one_of(st.none(), st.just("expired"), g.names, g.number))
    if draw(st.booleans()):
        d["state"] = draw(st.one_of(st.none(), g.names) if g.clean else st.one_of(g.names, g.number))
    for k in draw(st.lists(st.sampled_from(["extra", "volume", "type", "bids"]), unique=True)):  # unknown fields
        d[k] = draw(st.one_of(g.maybe_number, g.names, st.just({"a": [1, {"b": None}]}), st.just([[1e400]])))
    return dict(draw(st.permutations(list(d.items())))) if draw(st.booleans()) else d


@st.composite
def book_level(draw: st.DrawFn, g: Gen) -> Any:
    actions = ["new", "change", "delete"] if g.clean else ["new", "change", "delete", "snapshot", "", "NEW"]
    if g.clean or draw(st.integers(0, 4)):
        return [draw(st.sampled_from(actions)), draw(g.number), draw(g.number)]
    return draw(st.one_of(st.lists(st.one_of(st.sampled_from(actions), g.number), max_size=4), st.just({"a": 1})))


@st.composite
def book_data(draw: st.DrawFn, g: Gen) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in (("instrument_name", g.names), ("timestamp", g.ints), ("change_id", g.ints)):
        if g.required(draw):
            d[k] = draw(v)
    if draw(st.integers(0, 3)):
        d["prev_change_id"] = draw(st.one_of(st.none(), g.ints))
    if draw(st.integers(0, 3)):
        kinds = st.sampled_from(["snapshot", "change"]) if g.clean else st.sampled_from(["snapshot", "change", "x", 1])
        d["type"] = draw(st.one_of(st.none(), kinds))
    for side in ("bids", "asks"):
        if g.required(draw):
            levels = st.lists(book_level(g), max_size=4)
            d[side] = draw(levels if g.clean else st.one_of(levels, st.none(), wrong))
    if draw(st.booleans()):
        d["extra"] = draw(st.one_of(g.names, g.number))
    return dict(draw(st.permutations(list(d.items())))) if draw(st.booleans()) else d


@st.composite
def frames_of(draw: st.DrawFn, family: str) -> tuple[bool, bytes]:
    """``(clean, frame)``."""
    clean = draw(st.integers(0, 3)) > 0
    g = Gen(clean)
    data = draw(ticker_data(g) if family == "ticker" else book_data(g))
    inst = draw(g.names)
    interval = draw(st.sampled_from([".100ms", ".raw", ".agg2"] if clean else ["", ".1.10.100ms", ".x.y", ".raw"]))
    channel = f"{family}.{inst}{interval}"
    if not clean and draw(st.booleans()):
        channel = draw(st.sampled_from(["ticker", "book.a.b", "trades.x", "book.a.b.c"]))
    method = "subscription" if clean else draw(st.sampled_from(["subscription", "heartbeat", "Subscription"]))
    frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": {"channel": channel, "data": data}}
    if draw(st.integers(0, 5)) == 0:
        frame["id"] = draw(st.one_of(st.integers(), st.text(max_size=3), st.just([1])))
    if draw(st.integers(0, 8)) == 0:
        frame["params"]["extra"] = 1
    if draw(st.booleans()):
        frame = dict(draw(st.permutations(list(frame.items()))))
    text = dump(frame, ascii_only=not clean and draw(st.booleans()))
    if not clean and draw(st.integers(0, 6)) == 0:
        text = text.replace(":", ": ").replace(",", ", ")
    return clean, text.encode("utf-8", "surrogatepass")


SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
recv = st.one_of(st.just(1_626_993_723_804_855), st.integers(0, 2**63 - 1))


def _generated(clean_frame: tuple[bool, bytes], recv_ts_us: int) -> None:
    clean, frame = clean_frame
    got = check(frame, recv_ts_us)
    event(f"{'clean' if clean else 'chaos'}: {'native' if got is not None else 'python'}")


@native_on
@SETTINGS
@given(frame=frames_of("ticker"), recv_ts_us=recv)
def test_generated_tickers(frame: tuple[bool, bytes], recv_ts_us: int) -> None:
    _generated(frame, recv_ts_us)


@native_on
@SETTINGS
@given(frame=frames_of("book"), recv_ts_us=recv)
def test_generated_books(frame: tuple[bool, bytes], recv_ts_us: int) -> None:
    _generated(frame, recv_ts_us)


plain_number = st.one_of(st.none(), floats, st.integers(-(10**15), 10**15))


@native_on
@settings(max_examples=300, deadline=None)
@given(
    values=st.fixed_dictionaries({}, optional={f: plain_number for f in TICKER_FLOATS}),
    greeks=st.none() | st.fixed_dictionaries({}, optional={g: plain_number for g in ("delta", "vega", "rho")}),
    stats=st.none() | st.fixed_dictionaries({}, optional={k: plain_number for k in STATS}),
    edp=st.one_of(plain_number, st.just("expired")),
    last=st.one_of(plain_number, st.just("undefined")),
)
def test_ordinary_tickers_are_taken(values: dict[str, Any], greeks: Any, stats: Any, edp: Any, last: Any) -> None:
    """With the required fields and plain values, a ticker is never left to Python."""
    data = {
        "instrument_name": "ETH-1JAN30-1000-C",
        "timestamp": 1_700_000_000_000,
        "state": "open",
        "underlying_index": "SYN.ETH-1JAN30",
        "greeks": greeks,
        "stats": stats,
        "estimated_delivery_price": edp,
        **values,
        "last_price": last,
        "combo_state": "active",
    }
    frame = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": "ticker.ETH-1JAN30-1000-C.100ms", "data": data},
        },
        separators=(",", ":"),
    ).encode()
    assert check(frame, 1_700_000_000_000_123) is not None, frame


JSON_TOKENS = st.sampled_from(
    [
        "0",
        "01",
        "-0",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "1E-2",
        "12.5e3",
        "tru",
        "true",
        "false",
        "null",
        "nul",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        '"a"',
        '"\x01"',
        '"\\n"',
        '"\xff"',
        " ",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\u00a0",
        "NaN",
        "Infinity",
        "[1,]",
        "{,}",
        '{"a"}',
        '{"a":}',
        '{"a":1}',
        "[[[]]]",
        "[1,2]",
        "1e400",
    ]
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), floats, st.integers(), st.text(max_size=4)),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=8,
).map(lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")))
BASE_TICKER = (
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.X-1.raw","data":{"instrument_name":"X-1",'
    b'"timestamp":1626993723632,"best_bid_price":0.0015,"best_bid_amount":4714.0,"mark_iv":120.74,"x":@}}}'
)
BASE_BOOK = (
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X-1.raw","data":{"type":"change",'
    b'"timestamp":5,"instrument_name":"X-1","change_id":9,"prev_change_id":7,"bids":[["new",1.5,2]],"asks":[],"x":@}}}'
)


@native_on
@settings(max_examples=1500, deadline=None)
@given(
    tokens=st.one_of(st.lists(JSON_TOKENS, min_size=1, max_size=6).map("".join), json_values),
    where=st.sampled_from(["value", "envelope", "ws"]),
)
def test_json_grammar_of_skipped_values(tokens: str, where: str) -> None:
    """Whatever JSON text an unknown field holds, the native path is exactly as strict as msgspec
    (or stricter, then Python decides)."""
    text = tokens.encode("utf-8", "surrogatepass")
    for base in (BASE_TICKER, BASE_BOOK):
        if where == "value":
            frame = base.replace(b"@", text)
        elif where == "envelope":
            frame = base.replace(b',"x":@', b"").replace(b'{"jsonrpc"', b'{"y":' + text + b',"jsonrpc"')
        else:
            frame = (
                base.replace(b"@", b"1")
                .replace(b'"mark_iv":', b'"mark_iv":' + text[:2])
                .replace(b'"change_id":', b'"change_id":' + text[:1])
            )
        got = check(frame, 1)
        event(f"{where}: {'native' if got is not None else 'python'}")


# ---------------------------------------------------------------------------- (d) garbage


def test_truncated_and_mutated_real_frames_never_raise(ws_records) -> None:
    import random

    rng = random.Random(5)
    for r in ws_records:
        f = r.frame
        for cut in range(0, len(f), 7):
            check(f[:cut], r.recv_ts_us)
        for _ in range(40):
            b = bytearray(f)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] = rng.choice(b'{}[]":,0123456789.-eE ntfx\\\x00\xff')
            check(bytes(b), r.recv_ts_us)


@settings(max_examples=1000, deadline=None)
@given(frame=st.binary(max_size=300))
def test_garbage_never_raises(frame: bytes) -> None:
    check(frame, 1)
    check(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.' + frame, 1)
    check(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.' + frame, 1)


# ---------------------------------------------------------------------------- real QuestDB


@native_on
def test_payload_accepted_by_questdb(questdb_clean: QuestDBHandle, ws_records) -> None:
    body = bytearray()
    rows = {"quotes": 0, "book_changes": 0}
    for r in ws_records:
        got = native.fast_notification(r.frame, r.recv_ts_us)
        if got is not None:
            for e in got.events:
                assert isinstance(e, EncodedRows)
                body += e.payload
                rows[e.table] += e.rows
    # 149 levels + 3 'empty' markers (one empty snapshot, one snapshot with no asks)
    assert rows == {"quotes": 89, "book_changes": 152}
    req = urllib.request.Request(f"{questdb_clean.http_url}/write", data=bytes(body), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204
    questdb_clean.wait_for_rows("quotes", 89)
    questdb_clean.wait_for_rows("book_changes", 152)

    def exec_(sql: str) -> list[list[Any]]:
        url = f"{questdb_clean.http_url}/exec?" + urllib.parse.urlencode({"query": sql})
        with urllib.request.urlopen(url, timeout=30) as resp:
            return json.loads(resp.read())["dataset"]  # type: ignore[no-any-return]

    deadline = time.monotonic() + 30
    while True:
        row = exec_(
            "SELECT ts, recv_ts, bid_price, bid_amount, bid_iv, ask_iv, mark_iv, delta, gamma, vega, theta, rho,"
            " underlying_index, estimated_delivery_price, volume_24h, state, high_24h, low_24h, price_change_24h,"
            " channel_interval FROM quotes"
            " WHERE instrument = 'ETH-30JUL21-2800-C' ORDER BY ts LIMIT 1"
        )
        if row or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row == [
        [
            "2021-07-22T22:42:03.632000Z",
            "2021-07-22T22:42:03.804855Z",
            0.0015,
            4714.0,
            115.62,
            125.63,
            120.74,
            0.03127,
            0.0002,
            0.20072,
            -1.64029,
            0.01188,
            "ETH-30JUL21",
            2006.72,
            869.0,
            "open",
            0.0025,
            0.0015,
            0.0,
            "raw",
        ]
    ]
    assert exec_(
        "SELECT bid_price, bid_amount, bid_iv, ask_price, mark_iv FROM quotes"
        " WHERE instrument = 'ETH-27AUG21-4000-P' ORDER BY ts LIMIT 1"
    ) == [[None, None, None, None, 117.2]]
    assert exec_(
        "SELECT change_id, prev_change_id, action, side, price, amount FROM book_changes"
        " WHERE instrument = 'BTC-24SEP21-8000-P' AND NOT is_snapshot ORDER BY ts, change_id LIMIT 2"
    ) == [
        [33195894355, 33195894164, "new", "ask", 0.001, 2.6],
        [33195894358, 33195894355, "delete", "ask", 0.001, 0.0],
    ]
    assert (
        exec_("SELECT count(), sum(amount) FROM book_changes WHERE instrument = 'ETH-30JUL21-2800-C' AND is_snapshot")[
            0
        ][0]
        == 16
    )
    # an empty snapshot is in the table: one marker per side
    assert exec_(
        "SELECT change_id, side, action, price, amount, channel_interval FROM book_changes"
        " WHERE instrument = 'ETH-27AUG21-4000-P' AND is_snapshot ORDER BY side"
    ) == [[13167318455, "ask", "empty", 0.0, 0.0, "raw"], [13167318455, "bid", "empty", 0.0, 0.0, "raw"]]


def test_the_classes_the_native_parser_builds_are_checked_against_its_field_order() -> None:
    """The extension builds ``Notification``, ``EncodedRows`` and ``BookIds`` with positional
    arguments: a class whose fields were reordered (or renamed) is refused at registration."""
    import msgspec

    ext = native.native_ext.EXT
    assert ext is not None

    class EncodedRowsReordered(msgspec.Struct):
        payload: bytes
        table: str
        rows: int
        instrument: str
        ts_us: int

    with pytest.raises(TypeError, match=r'EncodedRowsReordered has fields \["payload", "table"'):
        ext.set_types(Notification, EncodedRowsReordered, BookIds)
    with pytest.raises(AttributeError):  # not a msgspec struct at all
        ext.set_types(Notification, EncodedRows, dict)
    ext.set_types(Notification, EncodedRows, BookIds)  # the real ones pass
