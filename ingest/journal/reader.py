"""``JournalReader``: the read-only side of a journal directory (no lock, no repair):
``segments``, ``read_from``, ``verify``, ``export``. The ``journal`` CLI commands use it, so
they can run next to a live collector (docs/journal.md).

Damage never stops a reader: a record that fails its checks is skipped by resynchronising
on the next valid record (``files.scan``), and the damaged region is handed to
``on_damage`` (the collector quarantines it and counts it) once per reader. The only bytes
passed over silently are the newest segment's incomplete tail: a record being written
right now, or a torn tail the writer cuts at its next start.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import BinaryIO

from tickarchive.ingest.errors import JournalError
from tickarchive.ingest.journal.capture import format_line
from tickarchive.ingest.journal.files import (
    Damage,
    Entry,
    SegmentInfo,
    VerifyReport,
    list_segments,
    map_segment,
    read_checkpoint,
    scan,
    walk,
)
from tickarchive.ingest.journal.format import BadRecord, Record, decode_at, first_seq_of

OnDamage = Callable[[Path, Damage], None]
"""Called with the segment's path and the damaged region it holds."""


class JournalReader:
    """Read-only access to a journal directory (safe next to a running writer)."""

    def __init__(self, directory: Path, on_damage: OnDamage | None = None) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise JournalError(f"journal directory {self.directory} does not exist")
        self._on_damage = on_damage
        self._reported: set[tuple[str, int]] = set()

    @property
    def acked_seq(self) -> int:
        """Highest record seq acknowledged by QuestDB (0 = none)."""
        return read_checkpoint(self.directory)

    def segment_paths(self) -> list[Path]:
        return list_segments(self.directory)

    def already_reported(self, damage: Damage) -> None:
        """Damage someone else reported (the writer, at open): not reported again."""
        self._reported.add((damage.segment, damage.offset))

    def _damaged(self, path: Path, damage: Damage) -> None:
        key = (damage.segment, damage.offset)
        if key in self._reported:
            return
        self._reported.add(key)
        if self._on_damage is not None:
            self._on_damage(path, damage)

    def segments(self) -> list[SegmentInfo]:
        """Every segment with its record count, seq and time range (header scan; damaged
        regions are stepped over, not counted)."""
        paths = self.segment_paths()
        acked = self.acked_seq
        return [self.segment_info(path, i < len(paths) - 1, acked) for i, path in enumerate(paths)]

    def segment_info(self, path: Path, sealed: bool, acked_seq: int) -> SegmentInfo:
        """One segment's record count, seq and time range (a header scan of that file)."""
        buf = map_segment(path)
        records = 0
        first = last = first_ts = last_ts = None
        size = 0
        if buf is not None:
            with buf:
                size = len(buf)
                for item in walk(buf, path.name, first_seq_of(path.name)):
                    if isinstance(item, Damage):
                        continue
                    if first is None:
                        first, first_ts = item.seq, item.recv_ts_us
                    last, last_ts = item.seq, item.recv_ts_us
                    records += 1
        return SegmentInfo(
            name=path.name,
            path=path,
            records=records,
            first_seq=first,
            last_seq=last,
            first_ts_us=first_ts,
            last_ts_us=last_ts,
            bytes=size,
            sealed=sealed,
            acked=last is None or last <= acked_seq,
        )

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
                for item in walk(buf, path.name, first_seq_of(path.name)):
                    if isinstance(item, Entry):
                        last = item.recv_ts_us
                if last is not None:
                    return last
        return None

    def replay_start(self, seq: int, window_us: int) -> int:
        """The first seq to read back so that every record received within ``window_us``
        before record ``seq`` is read again (``seq + 1`` when the window is 0 or nothing of
        the journal is that old: records before the oldest segment are gone). A header
        walk of the segments back from ``seq``; cheap next to reading them back."""
        if window_us <= 0 or seq <= 0:
            return seq + 1
        paths = self.segment_paths()
        firsts = [first_seq_of(p.name) for p in paths]
        i = bisect.bisect_right(firsts, seq) - 1
        if i < 0:
            return seq + 1
        at: int | None = None  # receive time of record seq
        start = seq + 1
        for j in range(i, -1, -1):
            buf = map_segment(paths[j])
            if buf is None:
                continue
            with buf:
                entries = [e for e in walk(buf, paths[j].name, firsts[j]) if isinstance(e, Entry) and e.seq <= seq]
            if not entries:
                continue
            if at is None:
                at = entries[-1].recv_ts_us
            since = at - window_us
            inside = [e.seq for e in entries if e.recv_ts_us >= since]
            if inside:
                start = min(start, inside[0])
            if entries[0].recv_ts_us < since:
                break  # the window starts in this segment
        return start

    def last_per_connection(self) -> dict[str, Record]:
        """The newest whole record of each connection found in the newest non-empty segment
        (start-up: where each connection's data ended before a crash)."""
        for path in reversed(self.segment_paths()):
            buf = map_segment(path)
            if buf is None:
                continue
            with buf:
                last: dict[str, Record] = {}
                for item in scan(buf, path.name, 0, first_seq_of(path.name) - 1):
                    if isinstance(item, Record):
                        last[item.connection] = item
                if last:
                    return last
        return {}

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
                items: Iterator[Entry | Damage] = walk(buf, path.name, firsts[j])
                for item in items:
                    if isinstance(item, Damage):
                        if item.tail and last_segment:
                            return  # a record being written right now, or a torn tail
                        self._damaged(path, item)
                        continue
                    if item.seq < start_seq:
                        continue
                    try:
                        rec = decode_at(buf, item.offset, path.name)
                    except BadRecord:
                        # the header held together, the payload does not: check every
                        # record from here on, resynchronising past the damage
                        for checked in scan(buf, path.name, item.offset, item.seq - 1):
                            if isinstance(checked, Damage):
                                if checked.tail and last_segment:
                                    return
                                self._damaged(path, checked)
                            elif checked.seq >= start_seq:
                                yield checked
                        break
                    yield rec

    def read_from(self, seq: int = 0) -> Generator[Record, None, None]:
        """Records with ``record.seq >= seq``, in order, CRC-checked, up to the current end
        (segments rotated while iterating are followed; damaged regions are skipped and
        reported to ``on_damage``)."""
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
        """Check every record of every segment (magic, version, length, CRC, seq order)
        and report every damaged region with its offset, size and the seqs it held."""
        report = VerifyReport()
        prev_last: int | None = None
        paths = self.segment_paths()
        for i, path in enumerate(paths):
            report.segments += 1
            buf = map_segment(path)
            if buf is None:
                continue
            newest = i == len(paths) - 1
            with buf:
                report.bytes += len(buf)
                expected = first_seq_of(path.name)
                for item in scan(buf, path.name, 0, first_seq_of(path.name) - 1):
                    if isinstance(item, Damage):
                        where = "torn tail" if item.tail and newest else "damaged region"
                        lost = item.lost_seqs
                        held = f", records {lost[0]}..{lost[1]} lost" if lost else ""
                        report.problems.append(
                            f"{path.name}: {where} at offset {item.offset}, {item.size} bytes: {item.reason}{held}"
                        )
                        report.damage.append(item)
                        if item.resumed_seq is not None:
                            expected = item.resumed_seq
                        continue
                    if item.seq != expected:
                        report.problems.append(
                            f"{path.name}: record at offset {item.offset} has seq {item.seq}, expected {expected}"
                        )
                    expected = item.seq + 1
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
