"""Replay straight from a ``.tjz`` body into columns (native/src/tjz_columns.rs,
``tickarchive_native.TjzColumns``) against the text way it replaces (``TjzFrames``
rebuilding each frame's JSON, then ``deribit_columns`` parsing it): the same columns
byte for byte (every value, float bit, NULL, book id, ``ord``), the same frames left to
the reference parser with the same text, on the real captures, the simulator's market
and hypothesis-made frames (numbers of every spelling, strings with escapes)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.real import CRYPTO_MSG_PARSER, NAUTILUS, TARDIS, WS_CAPTURE, WS_CAPTURE_2021_04, jsonl_frames
from tickarchive.archive import journal_codec
from tickarchive.bench.replay import ReplaySpec, simulated_frames
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.ingest.journal.format import encode_record
from tickarchive.native_ext import EXT

pytestmark = pytest.mark.skipif(EXT is None, reason="the native extension is not built")

Frames = Sequence[tuple[bytes, int]]


def _body(frames: Frames) -> tuple[bytes, bytes]:
    segment = b"".join(encode_record(i + 1, ts, b"c0", f) for i, (f, ts) in enumerate(frames))
    return segment, journal_codec.encode_body(segment)


def _u64(b: bytes) -> list[int]:
    return list(memoryview(b).cast("Q"))


def compare(frames: Frames, batch: int = 1000) -> tuple[int, int]:
    """TjzColumns against TjzFrames + deribit_columns on a body of ``frames``: the number
    of frames taken into columns, and of those taken from their values (no text)."""
    assert EXT is not None
    segment, body = _body(frames)
    assert journal_codec.decode_body(body) == segment
    text, cols, plain = EXT.TjzFrames(body), EXT.TjzColumns(body), EXT.TjzColumns(body, columns=False)
    taken = 0
    while (want := text.read(batch)) is not None:
        got, all_text = cols.read(batch), plain.read(batch)
        assert got is not None
        assert all_text is not None
        buf, starts, ends, recv = want
        ref = EXT.deribit_columns(buf, starts, ends, recv)
        gbuf, gstarts, gends, grecv, gcols = got
        assert grecv == recv
        assert gcols == ref  # strings, every column buffer and bitmap, book ids, leftover
        left = set(memoryview(ref[4]).cast("I"))
        s, e, gs, ge = _u64(starts), _u64(ends), _u64(gstarts), _u64(gends)
        for i in range(len(s)):
            if i in left:
                assert gbuf[gs[i] : ge[i]] == buf[s[i] : e[i]]
            else:
                assert gs[i] == ge[i]
                taken += 1
        assert all_text[:4] == want  # the text way of TjzColumns is TjzFrames'
        assert set(memoryview(all_text[4][4]).cast("I")) == set(range(len(s)))
    assert cols.read(batch) is None
    assert plain.read(batch) is None
    assert (cols.damaged, cols.tail_bytes) == (text.damaged, text.tail_bytes)
    assert plain.direct == 0
    return taken, cols.direct


@pytest.mark.parametrize("capture", [WS_CAPTURE, WS_CAPTURE_2021_04], ids=lambda p: p.name)
def test_real_captures(capture: object) -> None:
    _, recs = read_capture(capture)  # type: ignore[arg-type]
    frames = [(r.frame, r.recv_ts_us) for r in recs]
    _taken, direct = compare(frames, batch=50)
    assert direct > 100


def test_real_fixture_frames() -> None:
    frames = [json.dumps(json.loads(p.read_text()), separators=(",", ":")).encode() for p in sorted(NAUTILUS.iterdir())]
    frames += jsonl_frames(TARDIS) + jsonl_frames(CRYPTO_MSG_PARSER)
    taken, direct = compare([(f, 1_700_000_000_000_000 + i) for i, f in enumerate(frames)])
    assert taken > direct > 10  # some are taken only after their text was rebuilt (19-digit numbers)


def test_simulated_market_goes_straight_into_columns() -> None:
    frames = [(f, ts) for _conn, f, ts in simulated_frames(ReplaySpec(frames=6000, instruments=60, connections=2))]
    _taken, direct = compare(frames)
    assert direct > 0.95 * len(frames)


def test_damaged_records_and_a_torn_tail_are_skipped_alike() -> None:
    assert EXT is not None
    _, recs = read_capture(WS_CAPTURE)
    records = [bytearray(encode_record(i + 1, r.recv_ts_us, b"c0", r.frame)) for i, r in enumerate(list(recs)[:60])]
    records[30][-5] ^= 0x01  # a frame byte: its CRC no longer matches
    body = journal_codec.encode_body(b"".join(records) + b"TJ\x01torn")
    text, cols = EXT.TjzFrames(body), EXT.TjzColumns(body)
    while (want := text.read(16)) is not None:
        got = cols.read(16)
        assert got is not None
        assert got[3] == want[3]
        assert got[4] == EXT.deribit_columns(*want)
    assert cols.read(16) is None
    assert (cols.damaged, cols.tail_bytes) == (text.damaged, text.tail_bytes)
    assert cols.damaged == 1
    assert cols.tail_bytes > 0


def test_a_damaged_body_is_refused() -> None:
    assert EXT is not None
    with pytest.raises(ValueError, match="journal archive body"):
        EXT.TjzColumns(b"\x05\x01")


# ---------------------------------------------------------------------------- numbers

NUMBER = st.one_of(
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "-0", "0.0", "-0.0", "-0.00", "-0e5", "1e400", "-1e400", "1e-400", "-1e-400",
                     "9007199254740993", "9007199254740993.0", "123456789012345678", "1234567890123456789",
                     "0.30000000000000004", "1e22", "1e23", "2.2250738585072011e-308", "4.9e-324", "1E5", "1e+5",
                     "8.16e-5", "-1e-05", "100000000000000000000000", "0.000000000000000000000001"]),
)


def _ticker(n: dict[str, str], inst: str = "BTC-PERPETUAL", state: str = "open") -> bytes:
    data = (
        f'{{"timestamp":{n["ts"]},"stats":{{"volume":{n["a"]},"high":{n["b"]}}},"state":"{state}",'
        f'"mark_price":{n["c"]},"instrument_name":"{inst}","greeks":{{"delta":{n["d"]},"theta":{n["e"]}}},'
        f'"best_bid_price":{n["f"]},"best_bid_amount":{n["g"]},"best_ask_price":{n["h"]},'
        f'"best_ask_amount":{n["i"]},"bid_iv":{n["j"]},"last_price":{n["k"]}}}'
    )
    head = f'{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"ticker.{inst}.100ms","data":'
    return f"{head}{data}}}}}".encode()


def _book(n: dict[str, str], inst: str = "BTC-PERPETUAL", action: str = "change") -> bytes:
    data = (
        f'{{"type":"change","timestamp":{n["ts"]},"prev_change_id":{n["a"]},"instrument_name":"{inst}",'
        f'"change_id":{n["b"]},"bids":[["{action}",{n["c"]},{n["d"]}],["new",{n["e"]},{n["f"]}]],'
        f'"asks":[["delete",{n["g"]},{n["h"]}]]}}'
    )
    head = f'{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.{inst}.raw","data":'
    return f"{head}{data}}}}}".encode()


KEYS = ["ts", *"abcdefghijk"]
FIELDS = st.fixed_dictionaries({k: NUMBER for k in KEYS})
# integer fields as the exchange sends them, so most frames are taken
INTS = st.integers(0, 2**62).map(str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELDS, INTS, INTS, INTS, st.booleans()), min_size=1, max_size=6))
@example([({k: "-0.0" for k in KEYS}, "1", "2", "3", False)])
@example([({k: "1e5" for k in KEYS}, "1700000000000", "7", "8", True)])
def test_any_numbers_come_out_as_the_parser_reads_them(
    rows: list[tuple[dict[str, str], str, str, str, bool]],
) -> None:
    """Frames of one skeleton in a row with different values (a plan is made once and
    used with each); integer fields with decimals or exponents are left to the text way."""
    frames = []
    for i, (n, ts, a, b, int_fields) in enumerate(rows):
        m = dict(n, ts=ts, a=a, b=b) if int_fields else n
        frames.append((_ticker(m), 10 + i))
        frames.append((_book(m), 20 + i))
    compare(frames)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.text(max_size=12), st.booleans())
def test_any_strings_come_out_as_the_parser_reads_them(inst: str, other: str, ascii_only: bool) -> None:
    """Escapes, control characters and non-ASCII text in the string values: the parser
    refuses escapes, so those frames take the text way."""
    enc = json.dumps(inst, ensure_ascii=ascii_only)[1:-1]
    enc2 = json.dumps(other, ensure_ascii=ascii_only)[1:-1]
    n = dict.fromkeys(KEYS, "1.5") | {"ts": "1700000000000", "a": "4", "b": "5"}
    frames = [
        (_ticker(n, inst=enc, state=enc2), 1),
        (_ticker(n, inst="BTC-PERPETUAL", state=enc2), 2),
        (_book(n, inst=enc, action=enc2), 3),
        (_book(n, inst=enc2), 4),
    ]
    segment, body = _body(frames)
    assume(journal_codec.decode_body(body) == segment)
    compare(frames)


@settings(max_examples=2000, deadline=None)
@given(st.integers(-(10**18) + 1, 10**18 - 1), st.integers(0, 40), st.one_of(st.none(), st.integers(-400, 400)))
@example(9007199254740993, 0, None)
@example(-123456789012345678, 19, -300)
@example(1, 1, 400)
def test_a_number_hole_is_the_nearest_double_to_its_text(value: int, scale: int, exp: int | None) -> None:
    """(value, scale) with scale - 1 decimals, optionally times 10**exp: the correctly
    rounded double of that decimal text (Python's float() rounds correctly), None when
    it overflows (the parser refuses)."""
    assert EXT is not None
    digits = str(abs(value))
    if scale:
        d = scale - 1
        digits = digits.rjust(d + 1, "0")
        digits = digits[: len(digits) - d] + "." + digits[len(digits) - d :]
    text = ("-" if value < 0 else "") + digits + ("" if exp is None else f"e{exp}")
    want = float(text)
    got = EXT.tjz_number_f64(value, scale, exp)
    if math.isinf(want):
        assert got is None
    else:
        assert got is not None
        assert got.hex() == want.hex()
        assert math.copysign(1, got) == math.copysign(1, want)


@pytest.mark.parametrize(
    "spelling",
    ["-0.0", "-0", "0", "1e5", "1E5", "-2e-3", "8.16e-5", "-1e-05", "123456789012345678", "-0.00000000000000001",
     "9007199254740993", "0.30000000000000004", "5e-324", "1.7976931348623157e308", "-0e5", "-0.0e-0", "1e+5",
     "1.742e-05", "2E+007", "1e-0000000000000000000001", "1e-400"],
)
def test_exact_spellings_are_taken_from_their_values(spelling: str) -> None:
    """Negative zeros, exponents (signed, leading zeros, underflowing to zero), 18 digits,
    integers past 2**53, subnormals: decoded from (value, scale) and the exponent without
    their text, to the same bits."""
    n = dict.fromkeys(KEYS, spelling) | {"ts": "1700000000000", "a": "4", "b": "5", "g": "3", "i": "2"}
    frames = [(_ticker(n), 1), (_book(n), 2), (_ticker(n), 3)]
    taken, direct = compare(frames)
    assert taken == direct == 3


@pytest.mark.parametrize(
    "spelling", ["1e400", "1e0400", "-1e999", "1234567890123456789", "-12345678901234567890.5", "1.5"]
)
def test_spellings_the_values_cannot_say_take_the_text_way(spelling: str) -> None:
    """Overflow (the parser refuses the frame), 19 digits (part of the text is in the
    skeleton), decimals in an integer field: never decoded from the values."""
    n = dict.fromkeys(KEYS, "1.25") | {"ts": "1700000000000", "a": "4", "b": "5", "c": spelling}
    if spelling == "1.5":
        n["b"] = spelling  # the book's change_id
    frames = [(_book(n), 1), (_book(n), 2)]
    _taken, direct = compare(frames)
    assert direct == 0
