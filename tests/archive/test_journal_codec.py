"""The journal archive's segment codec (archive/journal_codec.py, native/src/tjz.rs): every
segment comes back byte for byte, the native body equals the reference body, and real
frames shrink to a fraction of what plain zstd makes of them."""

from __future__ import annotations

import struct

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.real import WS_CAPTURE, WS_CAPTURE_2021_04
from tickarchive import native_ext
from tickarchive.archive import journal_codec as jc
from tickarchive.archive.errors import IntegrityError
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.ingest.journal.format import encode_record

NATIVE = native_ext.EXT


def segment_of(frames: list[tuple[int, bytes]], conn: bytes = b"c0", first_seq: int = 1) -> bytes:
    return b"".join(encode_record(first_seq + i, ts, conn, f) for i, (ts, f) in enumerate(frames))


def capture_segment(path: object) -> tuple[bytes, int]:
    _, records = read_capture(path)  # type: ignore[arg-type]
    frames = [(r.recv_ts_us, r.frame) for r in records]
    return segment_of(frames), len(frames)


def roundtrip(segment: bytes) -> bytes:
    data = jc.encode(segment, level=3)
    assert jc.decode(data) == segment
    return data


@pytest.mark.parametrize("capture", [WS_CAPTURE, WS_CAPTURE_2021_04], ids=["2021-07-22", "2021-04-17"])
def test_real_capture_comes_back_exactly_and_smaller(capture: object) -> None:
    segment, frames = capture_segment(capture)
    data = jc.encode(segment, level=19)
    assert data[4] == jc.STRUCTURED
    assert jc.decode(data) == segment
    plain = len(zstandard.ZstdCompressor(level=9).compress(segment))
    # the whole capture (a few seconds, 10 channels) is mostly first occurrences, and still:
    assert len(data) < 0.6 * plain, (len(data) / frames, plain / frames)


@pytest.mark.parametrize("capture", [WS_CAPTURE, WS_CAPTURE_2021_04], ids=["2021-07-22", "2021-04-17"])
def test_reference_and_native_bodies_are_identical(capture: object) -> None:
    assert NATIVE is not None, "the native extension is not built (make install)"
    segment, _ = capture_segment(capture)
    body = jc.encode_body_py(segment)
    assert NATIVE.tjz_encode_body(segment) == body
    assert NATIVE.tjz_decode_body(body) == segment
    assert jc.decode_body_py(body) == segment


def test_numbers_keep_their_spelling() -> None:
    texts = [
        b"0", b"-0", b"-0.0", b"0.0", b"0.10", b"1.5e-05", b"1E+3", b"12345678901234567890", b"123456789012345678",
        b"-123456789012345678", b"00", b"1.", b".5", b"-", b"--1", b"0.0001", b"3000.0", b"-2.44258", b"1e5",
    ]  # fmt: skip
    frames = [(1_700_000_000_000_000 + i, b'{"x":' + t + b',"y":[' + t + b"," + t + b"]}") for i, t in enumerate(texts)]
    segment = segment_of(frames)
    roundtrip(segment)
    assert jc.decode_body_py(jc.encode_body_py(segment)) == segment
    if NATIVE is not None:
        assert NATIVE.tjz_encode_body(segment) == jc.encode_body_py(segment)


def test_damaged_segments_come_back_exactly() -> None:
    segment, _ = capture_segment(WS_CAPTURE)
    # a record whose CRC does not match, in the middle
    rec = bytearray(encode_record(999, 5, b"c1", b'{"a":1.25}'))
    rec[24] ^= 0xFF
    whole = segment_of([(1, b'{"a":1}')] * 3) + bytes(rec) + segment
    data = roundtrip(whole)
    assert data[4] == jc.STRUCTURED
    recs, tail = jc.split_records(whole)
    assert [r.crc_ok for r in recs[2:5]] == [True, False, True]
    assert tail == b""
    # a torn tail, garbage, an empty segment, a record of another version
    roundtrip(segment + b"TJ\x01\x00\xff\xff")
    roundtrip(b"")
    roundtrip(b"\x00\x01\x02 not a journal at all")
    other = bytearray(encode_record(1, 1, b"c0", b"{}"))
    other[2] = 2
    roundtrip(segment_of([(1, b"{}")]) + bytes(other))


def test_a_corrupt_file_is_refused() -> None:
    segment, _ = capture_segment(WS_CAPTURE)
    data = bytearray(jc.encode(segment, level=3))
    with pytest.raises(IntegrityError):
        jc.decode(b"XYZ" + bytes(data[3:]))
    with pytest.raises(IntegrityError):
        jc.decode(bytes(data[:5]) + b"not zstd")
    data[len(data) // 2] ^= 0x55  # the zstd frame's checksum catches this
    with pytest.raises(IntegrityError):
        jc.decode(bytes(data))


def test_a_body_that_lies_is_refused() -> None:
    segment, _ = capture_segment(WS_CAPTURE)
    body = bytearray(jc.encode_body_py(segment))
    for cut in (1, len(body) // 3, len(body) - 1):
        bad = bytes(body[:cut])
        with pytest.raises((IntegrityError, ValueError)):
            jc.decode_body_py(bad)
        if NATIVE is not None:
            with pytest.raises(ValueError, match="journal archive body"):
                NATIVE.tjz_decode_body(bad)


json_like = st.recursive(
    st.one_of(
        st.integers(-(10**20), 10**20).map(lambda i: str(i).encode()),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(f).encode()),
        st.decimals(allow_nan=False, allow_infinity=False, places=6).map(lambda d: str(d).encode()),
        st.text(max_size=12).map(lambda s: b'"' + s.encode("utf-8", "surrogatepass") + b'"'),
        st.sampled_from([b"null", b"true", b'"ETH-25DEC26-3000-C"', b'"\\"q\\\\"']),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(lambda xs: b"[" + b",".join(xs) + b"]"),
        st.dictionaries(st.sampled_from(["a", "b", "channel", "data", "price", "\x01k"]), inner, max_size=5).map(
            lambda d: b"{" + b",".join(b'"' + k.encode() + b'":' + v for k, v in d.items()) + b"}"
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**62),
            st.one_of(json_like, st.binary(max_size=40)),
            st.sampled_from([b"c0", b"c1", b"rest", b""]),
        ),
        max_size=25,
    ),
    st.binary(max_size=8),
)
def test_any_records_come_back_exactly(records: list[tuple[int, bytes, bytes]], tail: bytes) -> None:
    segment = b"".join(encode_record(100 + i, ts, conn, f) for i, (ts, f, conn) in enumerate(records)) + tail
    body = jc.encode_body_py(segment)
    assert jc.decode_body_py(body) == segment
    if NATIVE is not None:
        assert NATIVE.tjz_encode_body(segment) == body
        assert NATIVE.tjz_decode_body(body) == segment
    assert jc.decode(jc.encode(segment, level=1)) == segment


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_come_back_exactly(data: bytes) -> None:
    assert jc.decode(jc.encode(data, level=1)) == data
    if NATIVE is not None:
        assert NATIVE.tjz_decode_body(NATIVE.tjz_encode_body(data)) == data


def test_sequence_gaps_and_time_going_backwards() -> None:
    frames = [(ts, b'{"params":{"channel":"ticker.X","data":{"t":%d}}}' % ts) for ts in (10, 5, 2**62, 0, 7)]
    seqs = (5, 4, 9, 2**63, 1)
    records = b"".join(encode_record(seq, ts, b"c0", f) for seq, (ts, f) in zip(seqs, frames, strict=True))
    roundtrip(records)
    assert struct.unpack_from("<Q", records, 8)[0] == 5
