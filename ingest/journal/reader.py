"""``JournalReader``: the read-only side of a journal directory (no lock, no repair):
``segments``, ``read_from``, ``verify``, ``export``. The ``journal`` CLI commands use it, so
they can run next to a live collector (docs/journal.md)."""

from __future__ import annotations

import bisect
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import BinaryIO

from tickarchive.ingest.errors import JournalCorrupt, JournalError
from tickarchive.ingest.journal.capture import format_line
from tickarchive.ingest.journal.files import (
    SegmentInfo,
    VerifyReport,
    list_segments,
    map_segment,
    read_checkpoint,
)
from tickarchive.ingest.journal.format import (
    HEADER,
    HEADER_SIZE,
    BadRecord,
    Record,
    decode_at,
    first_seq_of,
    peek_seq,
)

# ---------------------------------------------------------------------------- reader


class JournalReader:
    """Read-only access to a journal directory (safe next to a running writer)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise JournalError(f"journal directory {self.directory} does not exist")

    @property
    def acked_seq(self) -> int:
        """Highest record seq acknowledged by QuestDB (0 = none)."""
        return read_checkpoint(self.directory)

    def segment_paths(self) -> list[Path]:
        return list_segments(self.directory)

    def segments(self) -> list[SegmentInfo]:
        """Every segment with its record count, seq and time range (header scan)."""
        paths = self.segment_paths()
        acked = self.acked_seq
        out = []
        for i, path in enumerate(paths):
            buf = map_segment(path)
            records = 0
            first = last = first_ts = last_ts = None
            size = 0
            if buf is not None:
                with buf:
                    size = len(buf)
                    offset = 0
                    while offset + HEADER_SIZE <= size:
                        _m, _v, conn_len, length, seq, ts, _c = HEADER.unpack_from(buf, offset)
                        step = HEADER_SIZE + conn_len + length
                        if _m != b"TJ" or offset + step > size:
                            break
                        if first is None:
                            first, first_ts = seq, ts
                        last, last_ts = seq, ts
                        records += 1
                        offset += step
            sealed = i < len(paths) - 1
            out.append(
                SegmentInfo(
                    name=path.name,
                    path=path,
                    records=records,
                    first_seq=first,
                    last_seq=last,
                    first_ts_us=first_ts,
                    last_ts_us=last_ts,
                    bytes=size,
                    sealed=sealed,
                    acked=last is None or last <= acked,
                )
            )
        return out

    def last_record_ts_us(self) -> int | None:
        """Receive time of the newest whole record (``None``: empty journal). Scans only
        the newest non-empty segment, so it is cheap on a large journal (start-up
        ``downtime`` gaps)."""
        for path in reversed(self.segment_paths()):
            buf = map_segment(path)
            if buf is None:
                continue
            with buf:
                last: int | None = None
                offset = 0
                size = len(buf)
                while offset + HEADER_SIZE <= size:
                    magic, _v, conn_len, length, _seq, ts, _c = HEADER.unpack_from(buf, offset)
                    step = HEADER_SIZE + conn_len + length
                    if magic != b"TJ" or offset + step > size:
                        break
                    last = ts
                    offset += step
                if last is not None:
                    return last
        return None

    def _read_pass(self, start_seq: int) -> Iterator[Record]:
        paths = self.segment_paths()
        firsts = [first_seq_of(p.name) for p in paths]
        i = max(bisect.bisect_right(firsts, start_seq) - 1, 0)
        for j in range(i, len(paths)):
            path = paths[j]
            last_segment = j == len(paths) - 1
            buf = map_segment(path)
            if buf is None:
                continue
            with buf:
                offset = 0
                size = len(buf)
                while offset < size:
                    if offset + HEADER_SIZE <= size and buf[offset : offset + 2] == b"TJ":
                        seq, step = peek_seq(buf, offset)
                        if seq < start_seq and offset + step <= size:
                            offset += step
                            continue
                    try:
                        rec = decode_at(buf, offset, path.name)
                    except BadRecord as bad:
                        if last_segment and bad.torn:
                            return  # a record being written right now, or a torn tail
                        raise JournalCorrupt(f"{path}: record at offset {offset}: {bad.reason}") from None
                    offset += rec.size
                    yield rec

    def read_from(self, seq: int = 0) -> Generator[Record, None, None]:
        """Records with ``record.seq >= seq``, in order, CRC-checked, up to the current end
        (segments rotated while iterating are followed)."""
        next_seq = seq
        while True:
            progressed = False
            for rec in self._read_pass(next_seq):
                if rec.seq < next_seq:
                    continue
                progressed = True
                next_seq = rec.seq + 1
                yield rec
            if not progressed:
                return

    def verify(self) -> VerifyReport:
        """Check every record of every segment: magic, version, length, CRC, seq order."""
        report = VerifyReport()
        prev_last: int | None = None
        paths = self.segment_paths()
        for i, path in enumerate(paths):
            report.segments += 1
            buf = map_segment(path)
            if buf is None:
                continue
            with buf:
                report.bytes += len(buf)
                offset = 0
                expected = first_seq_of(path.name)
                while offset < len(buf):
                    try:
                        rec = decode_at(buf, offset, path.name)
                    except BadRecord as bad:
                        where = "torn tail" if bad.torn and i == len(paths) - 1 else "corrupt record"
                        report.problems.append(f"{path.name}: {where} at offset {offset}: {bad.reason}")
                        break
                    if rec.seq != expected:
                        report.problems.append(
                            f"{path.name}: record at offset {offset} has seq {rec.seq}, expected {expected}"
                        )
                    expected = rec.seq + 1
                    offset += rec.size
                    report.records += 1
                if prev_last is not None and first_seq_of(path.name) != prev_last + 1:
                    report.problems.append(
                        f"{path.name}: starts at seq {first_seq_of(path.name)}, previous segment ended at {prev_last}"
                    )
                prev_last = expected - 1
        return report

    def export(
        self,
        out: BinaryIO,
        start_us: int | None = None,
        end_us: int | None = None,
        connection: str | None = None,
        from_seq: int = 0,
    ) -> int:
        """Write records received in ``[start_us, end_us)`` (optionally of one connection)
        in the replay format (``<unix seconds>: <frame>``); return how many."""
        n = 0
        for rec in self.read_from(from_seq):
            ts = rec.recv_ts_us
            if start_us is not None and ts < start_us:
                continue
            if end_us is not None and ts >= end_us:
                continue
            if connection is not None and rec.connection != connection:
                continue
            out.write(format_line(ts, rec.frame))
            n += 1
        return n
