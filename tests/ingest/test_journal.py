"""The journal keeps every frame: append, rotate, checkpoint, recover a torn tail, export."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import tickarchive.ingest.journal.writer
from tests.real import WS_CAPTURE
from tickarchive.ingest.errors import JournalError, JournalFull, JournalLocked
from tickarchive.ingest.journal import CHECKPOINT_FILE, Journal, JournalReader
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.ingest.journal.files import Damage
from tickarchive.ingest.journal.format import (
    ENCODE_RECORDS_NATIVE,
    HEADER_SIZE,
    _encode_records_py,
    decode_at,
    encode_record,
)


def _fill(j: Journal, records) -> list[int]:
    return [j.append(r.frame, r.recv_ts_us, "c1" if i % 2 else "c0") for i, r in enumerate(records)]


def test_record_roundtrip_and_crc_covers_header() -> None:
    raw = encode_record(7, 1626993723804855, b"c1", b'{"a":1}')
    assert len(raw) == HEADER_SIZE + 2 + 7
    rec = decode_at(raw, 0, "s")
    assert (rec.seq, rec.recv_ts_us, rec.connection, rec.frame, rec.size) == (7, 1626993723804855, "c1", b'{"a":1}', 37)
    flipped = bytearray(raw)
    flipped[16] ^= 1  # recv_ts_us
    with pytest.raises(Exception, match="CRC mismatch"):
        decode_at(bytes(flipped), 0, "s")


def test_append_read_back_real_capture(tmp_path: Path, ws_records) -> None:
    with Journal.open(tmp_path) as j:
        seqs = _fill(j, ws_records)
        assert seqs == list(range(1, 137))
        j.sync()
        assert j.stats.fsyncs == 1
        assert j.stats.window_seconds_last >= 0.0
    got = list(JournalReader(tmp_path).read_from(0))
    assert [r.frame for r in got] == [r.frame for r in ws_records]
    assert [r.recv_ts_us for r in got][:2] == [1626993723804318, 1626993723804855]
    assert [r.connection for r in got][:3] == ["c0", "c1", "c0"]
    assert [r.seq for r in JournalReader(tmp_path).read_from(130)] == list(range(130, 137))


def test_append_many_writes_the_bytes_of_single_appends(tmp_path: Path, ws_records) -> None:
    """One writev for a connection's received frames: the same records, seqs and file
    bytes as appending them one by one (batches past IOV_MAX buffers included)."""
    frames = [(r.frame, r.recv_ts_us) for r in ws_records]
    with Journal.open(tmp_path / "one") as j:
        for f, t in frames:
            j.append(f, t, "c0")
        one_end, one_marks = j.backlog_bytes, list(j._marks)
    with Journal.open(tmp_path / "many") as j:
        assert j.append_many(frames[:1], "c0") == 1
        assert j.append_many(frames[1:100], "c0") == 2
        assert j.append_many(frames[100:], "c0") == 101
        assert j.last_seq == len(frames) == 136
        assert j.stats.appended_records == 136
        assert j.backlog_bytes == one_end
        assert list(j._marks) == one_marks
        with pytest.raises(JournalError, match="no frames"):
            j.append_many([], "c0")
    one = [p.read_bytes() for p in sorted((tmp_path / "one").glob("*.tjl"))]
    assert len(one) == 1
    assert one == [p.read_bytes() for p in sorted((tmp_path / "many").glob("*.tjl"))]
    got = list(JournalReader(tmp_path / "many").read_from(0))
    assert [(r.seq, r.frame, r.recv_ts_us) for r in got] == [(i + 1, f, t) for i, (f, t) in enumerate(frames)]
    big = [(b'{"n":%d}' % i, i) for i in range(700)]  # 2,100 buffers: three writev calls
    with Journal.open(tmp_path / "big") as j:
        assert j.append_many(big, "c7") == 1
    assert [r.frame for r in JournalReader(tmp_path / "big").read_from(0)] == [f for f, _ in big]


@pytest.mark.parametrize("path", ["native", "python"])
def test_append_many_both_encoders_write_the_same_file(
    tmp_path: Path, ws_records, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """``append_many`` through the native record encoder and through the Python one
    writes the bytes of single appends (the native one is built by ``make install``:
    its absence fails here rather than skipping)."""
    assert ENCODE_RECORDS_NATIVE is not None or os.environ.get("TICKARCHIVE_NATIVE") == "0"
    if path == "python":
        monkeypatch.setattr(tickarchive.ingest.journal.writer, "ENCODE_RECORDS_NATIVE", None)
    frames = [(r.frame, r.recv_ts_us) for r in ws_records]
    with Journal.open(tmp_path / "one") as j:
        for f, t in frames:
            j.append(f, t, "c3")
    with Journal.open(tmp_path / "many") as j:
        assert j.append_many(frames[:50], "c3") == 1
        assert j.append_many(tuple(frames[50:]), "c3") == 51  # any sequence
    assert (tmp_path / "one").joinpath(next(iter(os.listdir(tmp_path / "one")))).read_bytes() == (
        tmp_path / "many"
    ).joinpath(next(iter(os.listdir(tmp_path / "many")))).read_bytes()


@settings(max_examples=200, deadline=None)
@given(
    frames=hs.lists(hs.tuples(hs.binary(max_size=3000), hs.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=40),
    first=hs.integers(0, 2**64 - 1 - 64),
    conn=hs.binary(max_size=255),
)
def test_native_encode_records_is_byte_identical(frames: list[tuple[bytes, int]], first: int, conn: bytes) -> None:
    if ENCODE_RECORDS_NATIVE is None:
        assert os.environ.get("TICKARCHIVE_NATIVE") == "0"
        return
    assert ENCODE_RECORDS_NATIVE(frames, first, conn) == _encode_records_py(frames, first, conn)


def test_native_encode_records_rejects_what_it_cannot_write() -> None:
    if ENCODE_RECORDS_NATIVE is None:
        assert os.environ.get("TICKARCHIVE_NATIVE") == "0"
        return
    with pytest.raises(TypeError, match="bytes"):
        ENCODE_RECORDS_NATIVE([("str", 1)], 1, b"c0")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="tuples"):
        ENCODE_RECORDS_NATIVE([[b"x", 1]], 1, b"c0")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="255"):
        ENCODE_RECORDS_NATIVE([(b"x", 1)], 1, b"c" * 256)
    assert ENCODE_RECORDS_NATIVE([], 1, b"c0") == b""


def test_append_many_on_a_full_disk_writes_nothing(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    real_fd = os.dup(j._fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, j._fd)
    with pytest.raises(JournalFull, match="disk full"):
        j.append_many([(b'{"a":1}', 1), (b'{"a":2}', 2)], "c0")
    assert j.next_seq == 1
    os.dup2(real_fd, j._fd)
    os.close(full)
    os.close(real_fd)
    assert j.append_many([(b'{"a":1}', 1), (b'{"a":2}', 2)], "c0") == 1
    j.close()
    assert [r.frame for r in JournalReader(tmp_path).read_from(0)] == [b'{"a":1}', b'{"a":2}']


def test_rotation_checkpoint_and_archivable_segments(tmp_path: Path, ws_records) -> None:
    j = Journal.open(tmp_path, segment_bytes=8192)
    _fill(j, ws_records)
    segs = j.segments()
    assert len(segs) > 5
    assert sum(s.records for s in segs) == 136
    assert segs[0].first_seq == 1
    assert [s.first_seq for s in segs[1:]] == [s.last_seq + 1 for s in segs[:-1]]  # type: ignore[operator]
    assert [s.sealed for s in segs] == [True] * (len(segs) - 1) + [False]
    assert j.archivable_segments() == []
    assert j.backlog_records == 136
    cut = segs[2].last_seq
    assert cut is not None
    j.commit(cut)
    assert j.acked_seq == cut
    assert [p.name for p in j.archivable_segments()] == [s.name for s in segs[:3]]
    with pytest.raises(JournalError, match="refusing"):
        j.remove_segment(segs[4].path)
    j.remove_segment(segs[0].path)
    j.commit(3)  # behind the checkpoint: no-op
    assert j.acked_seq == cut
    with pytest.raises(JournalError, match="last appended record is 136"):
        j.commit(137)
    j.commit(136)
    assert (j.backlog_bytes, j.backlog_records) == (0, 0)
    j.close()
    assert JournalReader(tmp_path).acked_seq == 136
    assert (tmp_path / CHECKPOINT_FILE).exists()
    # reopen: the sequence continues, catch-up reads from the checkpoint
    with Journal.open(tmp_path, segment_bytes=8192) as j2:
        assert j2.recovery is None
        assert (j2.acked_seq, j2.next_seq) == (136, 137)
        assert j2.append(b'{"late":1}', 5, "c9") == 137
        assert [r.seq for r in j2.read_from(j2.acked_seq + 1)] == [137]
        assert j2.backlog_records == 1


def test_torn_tail_is_truncated_on_open(tmp_path: Path, ws_records) -> None:
    with Journal.open(tmp_path) as j:
        _fill(j, ws_records[:10])
    seg = next(tmp_path.glob("*.tjl"))
    whole = seg.stat().st_size
    partial = encode_record(11, 1, b"c0", ws_records[10].frame)[:100]
    with seg.open("ab") as f:
        f.write(partial)
    with Journal.open(tmp_path) as j:
        assert j.recovery is not None
        assert (j.recovery.kept_records, j.recovery.kept_bytes, j.recovery.cut_bytes) == (10, whole, 100)
        assert "runs past the end" in j.recovery.reason
        assert j.next_seq == 11
        assert j.append(ws_records[10].frame, ws_records[10].recv_ts_us, "c0") == 11
    assert seg.stat().st_size > whole
    assert JournalReader(tmp_path).verify().ok


def test_zero_filled_tail_and_bad_crc_tail_are_torn(tmp_path: Path, ws_records) -> None:
    with Journal.open(tmp_path) as j:
        _fill(j, ws_records[:3])
    seg = next(tmp_path.glob("*.tjl"))
    good = seg.stat().st_size
    with seg.open("ab") as f:
        f.write(b"\0" * 4096)  # file extended, data never written (crash before writeback)
    with Journal.open(tmp_path) as j:
        assert j.recovery is not None
        assert j.recovery.cut_bytes == 4096
        assert j.recovery.reason == "bad magic b'\\x00\\x00'"
    last = bytearray(encode_record(4, 2, b"c0", b'{"x":1}'))
    last[-1] ^= 0xFF
    with seg.open("ab") as f:
        f.write(bytes(last))
    with Journal.open(tmp_path) as j:
        assert j.recovery is not None
        assert "CRC mismatch" in j.recovery.reason
        assert seg.stat().st_size == good
        assert j.next_seq == 4


def test_damage_followed_by_good_records_is_kept_reported_and_skipped(tmp_path: Path, ws_records) -> None:
    with Journal.open(tmp_path) as j:
        _fill(j, ws_records[:5])
    seg = next(tmp_path.glob("*.tjl"))
    data = bytearray(seg.read_bytes())
    first_size = decode_at(bytes(data), 0, seg.name).size
    data[HEADER_SIZE + 10] ^= 0xFF  # inside the first record's payload
    seg.write_bytes(bytes(data))
    size = seg.stat().st_size
    seen: list[Damage] = []
    with Journal.open(tmp_path, on_damage=lambda _p, d: seen.append(d)) as j:
        assert seg.stat().st_size == size  # nothing cut: valid records follow
        assert j.recovery is not None
        assert j.recovery.cut_bytes == 0
        assert [(d.offset, d.size, d.tail) for d in j.recovery.damage] == [(0, first_size, False)]
        assert "CRC mismatch" in j.recovery.reason
        assert j.next_seq == 6
        assert [r.seq for r in j.read_from(0)] == [2, 3, 4, 5]
    assert [(d.offset, d.size) for d in seen] == [(0, first_size)]
    report = JournalReader(tmp_path).verify()
    assert not report.ok
    assert report.problems[0].startswith(f"{seg.name}: damaged region at offset 0, {first_size} bytes: CRC mismatch")
    assert report.records == 4


def test_a_flipped_length_field_costs_one_record_not_the_rest(tmp_path: Path, ws_records) -> None:
    """Finding 1 of issue #14: a flipped bit in the length field of record 30 of 100 made
    start-up treat everything after it as a torn tail and cut 71 records. Only that record
    is lost; it is reported with its offset and size and copied aside, and every later
    record, acknowledged or not, is read back."""
    frames = (ws_records * 2)[:100]
    with Journal.open(tmp_path, segment_bytes=1 << 30) as j:
        seqs = _fill(j, frames)
        j.commit(20)
    assert seqs == list(range(1, 101))
    seg = next(tmp_path.glob("*.tjl"))
    data = bytearray(seg.read_bytes())
    offsets = [r.offset for r in JournalReader(tmp_path).read_from(0)]
    at = offsets[29]  # record 30
    data[at + 5] ^= 0x10  # a bit of its length field: it now claims ~1 MB more than the file holds
    seg.write_bytes(bytes(data))
    quarantined: list[tuple[Path, Damage]] = []
    with Journal.open(tmp_path, on_damage=lambda p, d: quarantined.append((p, d))) as j:
        assert j.next_seq == 101
        got = [r.seq for r in j.read_from(21)]
        assert got == [s for s in range(21, 101) if s != 30]
        assert [r.frame for r in j.read_from(31)] == [f.frame for f in frames[30:]]
    ((path, damage),) = quarantined
    assert path == seg
    assert (damage.offset, damage.size, damage.tail) == (at, offsets[30] - at, False)
    assert damage.lost_seqs == (30, 30)
    assert JournalReader(tmp_path).verify().records == 99


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with Journal.open(tmp_path), pytest.raises(JournalLocked):
        Journal.open(tmp_path)


def test_disk_full_raises_journal_full_and_loses_nothing(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    assert j.append(b'{"a":1}', 1, "c0") == 1
    real_fd = os.dup(j._fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, j._fd)  # every write now fails with ENOSPC, as on a full disk
    with pytest.raises(JournalFull, match="disk full"):
        j.append(b'{"a":2}', 2, "c0")
    assert j.next_seq == 2  # nothing consumed: the driver retries the same frame
    os.dup2(real_fd, j._fd)
    os.close(full)
    os.close(real_fd)
    assert j.append(b'{"a":2}', 2, "c0") == 2
    j.close()
    assert [r.frame for r in JournalReader(tmp_path).read_from(0)] == [b'{"a":1}', b'{"a":2}']
    with Journal.open(tmp_path) as j2, pytest.raises(JournalFull, match="below the floor"):
        j2.check_free_space(1 << 62)


def test_export_is_the_replay_format(tmp_path: Path, ws_records) -> None:
    with Journal.open(tmp_path) as j:
        _fill(j, ws_records)
        j.append(b'{\n "pretty": true\n}', 1626993760000001, "c0")
    out = io.BytesIO()
    reader = JournalReader(tmp_path)
    assert reader.export(out) == 137
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(b"1626993723.804318: {")
    assert lines[-1] == b'1626993760.000001: {  "pretty": true }'
    # the export reads back as the same frames and times
    exported = tmp_path / "export.txt"
    exported.write_bytes(out.getvalue())
    _, records = read_capture(exported)
    back = list(records)
    assert [(r.recv_ts_us, r.frame) for r in back[:136]] == [(r.recv_ts_us, r.frame) for r in ws_records]
    # time window and connection filters
    window = io.BytesIO()
    assert reader.export(window, start_us=1626993723804855, end_us=1626993724000000, connection="c1") == 10
    _, original = read_capture(WS_CAPTURE)
    assert sum(1 for _ in original) == 136


def test_ls_reports_counts_times_and_acks(tmp_path: Path, ws_records) -> None:
    with Journal.open(tmp_path, segment_bytes=40_000) as j:
        _fill(j, ws_records)
        j.commit(40)
    segs = JournalReader(tmp_path).segments()
    assert [s.records for s in segs] == [s.records for s in segs if s.records]
    assert segs[0].first_ts_us == 1626993723804318
    assert segs[-1].last_ts_us == ws_records[-1].recv_ts_us
    assert segs[-1].last_seq == 136
    assert segs[0].acked is (segs[0].last_seq is not None and segs[0].last_seq <= 40)
    assert segs[-1].acked is False


_CHILD = """
import sys, time
from pathlib import Path
from tickarchive.ingest.journal import Journal
j = Journal.open(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    j.append(b'{"n":%d}' % i, 1_700_000_000_000_000 + i, "c0")
print("appended", j.last_seq, flush=True)
time.sleep(60)  # never fsynced, never closed: killed here
"""


def test_sigkill_after_append_loses_nothing(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), "2500"], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"appended 2500\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with Journal.open(tmp_path) as j:
        assert j.recovery is None
        assert j.last_seq == 2500
        frames = [r.frame for r in j.read_from(1)]
    assert frames[0] == b'{"n":0}'
    assert frames[-1] == b'{"n":2499}'
    assert len(frames) == 2500


def test_last_record_time_without_scanning_everything(tmp_path: Path, ws_records) -> None:
    from tickarchive.ingest.journal import JournalReader as Reader

    with Journal.open(tmp_path, segment_bytes=8192) as j:
        assert j.last_recv_ts_us is None
        _fill(j, ws_records)
        assert j.last_recv_ts_us == ws_records[-1].recv_ts_us
    # a crash right after rotation leaves an empty newest segment: the time comes from the one before
    (tmp_path / "00000000000000000137.tjl").touch()
    assert Reader(tmp_path).last_record_ts_us() == ws_records[-1].recv_ts_us
    with Journal.open(tmp_path, segment_bytes=8192) as j:
        assert j.last_recv_ts_us == ws_records[-1].recv_ts_us
        assert j.next_seq == 137
    empty = tmp_path / "empty"
    empty.mkdir()
    assert Reader(empty).last_record_ts_us() is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=hs.lists(hs.tuples(hs.integers(0, 10**9), hs.integers(0, 7)), min_size=1, max_size=4),
       torn=hs.integers(0, 300))
def test_any_damage_costs_only_the_records_it_touched(tmp_path_factory, ws_records, flips, torn) -> None:
    """Flip bits anywhere in a journal (and tear its tail): every record whose bytes were not
    touched is read back, in order, after a restart; every damaged region is reported."""
    d = tmp_path_factory.mktemp("j")
    frames = ws_records[:60]
    with Journal.open(d, segment_bytes=20_000) as j:  # several segments
        _fill(j, frames)
    segs = sorted(d.glob("*.tjl"))
    extents = {}  # seq -> (segment, start, end)
    for seg in segs:
        for rec in JournalReader(d).read_from(0):
            if rec.segment == seg.name:
                extents[rec.seq] = (seg.name, rec.offset, rec.offset + rec.size)
    touched: dict[str, set[int]] = {}
    for pos, bit in flips:
        seg = segs[pos % len(segs)]
        data = bytearray(seg.read_bytes())
        at = (pos // len(segs)) % len(data)
        data[at] ^= 1 << bit
        seg.write_bytes(bytes(data))
        touched.setdefault(seg.name, set()).add(at)
    last = segs[-1]
    if torn:
        size = last.stat().st_size
        with last.open("r+b") as f:
            f.truncate(max(0, size - torn))
        touched.setdefault(last.name, set()).update(range(max(0, size - torn), size))
    intact = [s for s, (name, a, b) in extents.items() if not any(a <= x < b for x in touched.get(name, ()))]
    with Journal.open(d, segment_bytes=20_000) as j:
        got = [r.seq for r in j.read_from(0)]
    assert set(intact) <= set(got)
    assert got == sorted(got)
    assert set(got) <= set(extents)
