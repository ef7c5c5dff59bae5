"""Replay's inputs (ingest/replay_input.py): the native line and record scanners give what
the Python readers give, and a capture replays to the same tables from a replay-format
file, a journal segment and a journal archive file."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.real import REST_CAPTURE, WS_CAPTURE, WS_CAPTURE_2021_04
from tickarchive import native_ext
from tickarchive.archive import journal_codec
from tickarchive.ingest import replay_input
from tickarchive.ingest.journal.capture import Capture, iter_lines, read_capture
from tickarchive.ingest.journal.format import encode_record
from tickarchive.ingest.replay import ParquetSink, replay_files
from tickarchive.ingest.replay_input import InputStats, read_batches
from tickarchive.settings import Settings
from tickarchive.venues import deribit

NATIVE = native_ext.EXT
DERIBIT = deribit.build(Settings())


def python_lines(data: bytes) -> tuple[list[tuple[int, bytes]], Capture]:
    cap = Capture(Path("x"))
    return [(r.recv_ts_us, r.frame) for r in iter_lines(io.BytesIO(data), cap)], cap


def native_lines(data: bytes, chunk: int) -> tuple[list[tuple[int, bytes]], InputStats]:
    """``replay_lines`` fed ``chunk`` bytes at a time, as ``read_batches`` does."""
    assert NATIVE is not None
    out: list[tuple[int, bytes]] = []
    stats = InputStats(Path("x"))
    carry, last, line_no, at = b"", 0, 1, 0
    while True:
        piece = data[at : at + chunk]
        at += len(piece)
        final = not piece
        buf = carry + piece
        starts, ends, recv, used, last, lines, skipped, bad, bad_lines = NATIVE.replay_lines(buf, last, line_no, final)
        line_no += lines
        stats.bytes_read += used
        stats.skipped += skipped
        stats.unreadable += bad
        stats.unreadable_lines.extend(bad_lines)
        s, e, r = (memoryview(x).cast(c) for x, c in ((starts, "Q"), (ends, "Q"), (recv, "q")))
        out.extend((r[i], buf[s[i] : e[i]]) for i in range(len(s)))
        carry = buf[used:]
        if final:
            return out, stats


def assert_same_lines(data: bytes, chunk: int = 1 << 20) -> None:
    want, cap = python_lines(data)
    got, stats = native_lines(data, chunk)
    assert got == want
    assert (stats.skipped, stats.unreadable, stats.unreadable_lines[:20], stats.bytes_read) == (
        cap.skipped,
        cap.unreadable,
        cap.unreadable_lines,
        cap.bytes_read,
    )


@pytest.mark.parametrize("path", [WS_CAPTURE, WS_CAPTURE_2021_04, REST_CAPTURE], ids=lambda p: p.name)
@pytest.mark.parametrize("chunk", [97, 1 << 20])
def test_native_lines_equal_iter_lines_on_captures(path: Path, chunk: int) -> None:
    assert NATIVE is not None, "the native extension is not built (make install)"
    assert_same_lines(path.read_bytes(), chunk)


line = st.one_of(
    st.sampled_from(
        [
            b"",
            b"   ",
            b"\r",
            b'{"a":1}',
            b"[1,2]",
            b"configuration: {}",
            b"1626993723.804318: {}",
            b"1626993723: {}",
            b"1626993723.: x",
            b"-5.5: y",
            b" 12.5 : z",
            b"1.2.3: bad",
            b"12a: bad",
            b"wss://x <-> 1626993723.4",
            b"wss://x <- 1626993723.5: {}",
            b"wss://x -> 1626993723.6: {}",
            b"wss://x -> bad: {}",
            b"https://y -> 1626993724",
            b"garbage",
            b"a b c: d",
        ]
    ),
    st.binary(max_size=30),
    st.tuples(st.integers(0, 10**12), st.integers(0, 10**7), st.binary(max_size=10)).map(
        lambda t: b"%d.%d: %s" % t
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(line, max_size=20), st.sampled_from([b"\n", b"\r\n"]), st.booleans(), st.integers(1, 50))
def test_native_lines_equal_iter_lines_on_anything(lines: list[bytes], eol: bytes, last_eol: bool, chunk: int) -> None:
    assert NATIVE is not None, "the native extension is not built (make install)"
    data = eol.join(lines) + (eol if last_eol else b"")
    assert_same_lines(data, chunk)


def _segment(frames: list[tuple[int, bytes]]) -> bytes:
    return b"".join(encode_record(i + 1, ts, b"c0", f) for i, (ts, f) in enumerate(frames))


def test_journal_frames_native_equals_python_and_counts_damage() -> None:
    _, recs = read_capture(WS_CAPTURE)
    frames = [(r.recv_ts_us, r.frame) for r in recs]
    seg = bytearray(_segment(frames))
    seg[28 + 2 + 5] ^= 0x20  # a byte of the first record's frame: its CRC fails
    seg += b"TJ\x01\x02torn"
    want = replay_input._segment_frames(bytes(seg))
    assert NATIVE is not None
    assert NATIVE.journal_frames(bytes(seg)) == want
    _, _, _, records, damaged, stop = want
    assert (records, damaged, len(seg) - stop) == (len(frames) - 1, 1, 8)


def test_a_capture_replays_the_same_from_text_segment_and_archive(tmp_path: Path) -> None:
    _, recs = read_capture(WS_CAPTURE)
    frames = [(r.recv_ts_us, r.frame) for r in recs]
    seg = _segment(frames)
    (tmp_path / "00000000000000000001.tjl").write_bytes(seg)
    (tmp_path / "00000000000000000001.tjz").write_bytes(journal_codec.encode(seg, 3))
    outputs = {}
    for name, path in (
        ("text", WS_CAPTURE),
        ("segment", tmp_path / "00000000000000000001.tjl"),
        ("archive", tmp_path / "00000000000000000001.tjz"),
    ):
        stats = replay_files([path], ParquetSink(tmp_path / name), DERIBIT)
        assert stats.frames == 136
        assert not stats.damaged
        outputs[name] = {p.name: pq.read_table(p) for p in (tmp_path / name).glob("*.parquet")}
    for name in ("segment", "archive"):
        assert outputs[name].keys() == outputs["text"].keys()
        for k, v in outputs["text"].items():
            assert outputs[name][k].equals(v), (name, k)


def test_batches_of_a_damaged_archive_file(tmp_path: Path) -> None:
    _, recs = read_capture(WS_CAPTURE)
    rec = bytearray(encode_record(500, 1, b"c0", b'{"x":1}'))
    rec[24] ^= 1
    seg = _segment([(r.recv_ts_us, r.frame) for r in recs]) + bytes(rec) + b"TJ"
    path = tmp_path / "a.tjz"
    path.write_bytes(journal_codec.encode(seg, 3))
    stats = InputStats(path)
    n = sum(len(b) for b in read_batches(path, stats, batch_frames=50))
    assert (n, stats.frames, stats.damaged_records, stats.torn_bytes) == (136, 136, 1, 2)
    assert "1 journal record(s) failing their CRC; 2 bytes after the last whole record" in stats.describe_damage()
