"""The journal directory on disk: segment files, the checkpoint, and the reports the
reader and the writer give about them (docs/journal.md)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tickarchive.ingest.errors import JournalError
from tickarchive.ingest.journal.format import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    SEGMENT_SUFFIX,
    VERSION,
    BadRecord,
    Record,
    decode_at,
    peek_seq,
)

CHECKPOINT_FILE: Final = "checkpoint.json"
LOCK_FILE: Final = "writer.lock"
RETENTION_LOCK_FILE: Final = "retention.lock"


# ---------------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    name: str
    path: Path
    records: int
    first_seq: int | None
    last_seq: int | None
    first_ts_us: int | None
    last_ts_us: int | None
    bytes: int
    sealed: bool
    """Not the newest segment: nothing will be appended to it any more."""
    acked: bool
    """Every record is acknowledged (``last_seq <= acked_seq``)."""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What ``Journal.open`` found in the newest segment: a torn tail it cut
    (``cut_bytes`` > 0) and damaged regions it kept in place and skips (``damage``)."""

    segment: str
    kept_records: int
    kept_bytes: int
    cut_bytes: int
    reason: str
    damage: tuple[Damage, ...] = ()


@dataclass(slots=True)
class VerifyReport:
    segments: int = 0
    records: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------- helpers


def list_segments(directory: Path) -> list[Path]:
    try:
        names = sorted(p for p in os.listdir(directory) if p.endswith(SEGMENT_SUFFIX))
    except FileNotFoundError:
        raise JournalError(f"journal directory {directory} does not exist") from None
    except OSError as exc:
        raise JournalError(f"cannot list journal directory {directory}: {exc.strerror}") from exc
    return [directory / n for n in names]


def disk_usage(directory: Path) -> tuple[int, float | None]:
    """Bytes the segments occupy and the modification time of the oldest one (unix
    seconds; ``None`` without segments). A listing and a stat per file: cheap enough for a
    metric refreshed every few seconds."""
    total = 0
    oldest: float | None = None
    for path in list_segments(directory):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # pruned meanwhile
        except OSError as exc:
            raise JournalError(f"cannot stat {path}: {exc.strerror}") from exc
        total += st.st_size
        if oldest is None:
            oldest = st.st_mtime
    return total, oldest


def read_checkpoint(directory: Path) -> int:
    path = directory / CHECKPOINT_FILE
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        raise JournalError(f"unreadable checkpoint {path}: {exc}") from exc
    seq = data.get("acked_seq") if isinstance(data, dict) else None
    if not isinstance(seq, int) or seq < 0:
        raise JournalError(f"checkpoint {path} has no valid acked_seq: {data!r}")
    return seq


@contextlib.contextmanager
def retention_lock(directory: Path) -> Iterator[None]:
    """Held by the writer while it lists and opens the segments at start-up, and by the
    pruning job (``tickarchive journal prune``) only around each deletion, so neither sees
    a file vanish under it. Blocking: each side holds it for milliseconds."""
    try:
        fd = os.open(directory / RETENTION_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise JournalError(f"cannot open {directory / RETENTION_LOCK_FILE}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def map_segment(path: Path) -> mmap.mmap | None:
    """A read-only map of ``path`` (``None`` when empty)."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return None
            return mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        return None  # removed by the archive job meanwhile
    except OSError as exc:
        raise JournalError(f"cannot read journal segment {path}: {exc.strerror}") from exc


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes of a segment that are not a valid record, found by ``scan``.

    ``tail``: nothing valid follows (a torn tail when it is the newest segment's end);
    otherwise the scan resumed on the next valid record (``resumed_seq``), and records
    ``last_good_seq + 1 .. resumed_seq - 1`` (when both are known) are lost."""

    segment: str
    offset: int
    size: int
    reason: str
    tail: bool
    last_good_seq: int | None
    resumed_seq: int | None

    @property
    def lost_seqs(self) -> tuple[int, int] | None:
        """The seq range the damage held, when both ends are known."""
        if self.last_good_seq is None or self.resumed_seq is None:
            return None
        lo, hi = self.last_good_seq + 1, self.resumed_seq - 1
        return (lo, hi) if lo <= hi else None


def next_valid(buf: mmap.mmap | bytes, start: int, name: str) -> int | None:
    """Offset of the first whole, CRC-valid record at or after ``start`` (None: none)."""
    i = start
    while True:
        i = buf.find(MAGIC, i)
        if i < 0:
            return None
        try:
            decode_at(buf, i, name)
        except BadRecord:
            i += 1
            continue
        return i


def scan(
    buf: mmap.mmap | bytes, name: str, start: int = 0, last_seq: int | None = None
) -> Iterator[Record | Damage]:
    """Every record of a segment from ``start``, CRC-checked, and every damaged region
    between them: a record that fails its checks is skipped by resynchronising on the next
    valid record (magic + header + CRC), never by trusting its length field. The damage is
    yielded, not raised, so one flipped bit costs the records it hit and nothing more.
    ``last_seq``: the seq of the record before ``start``, when known (for ``lost_seqs``)."""
    offset = start
    size = len(buf)
    while offset < size:
        try:
            rec = decode_at(buf, offset, name)
        except BadRecord as bad:
            nxt = next_valid(buf, offset + 1, name)
            if nxt is None:
                yield Damage(name, offset, size - offset, bad.reason, True, last_seq, None)
                return
            resumed = peek_seq(buf, nxt)[0]
            yield Damage(name, offset, nxt - offset, bad.reason, False, last_seq, resumed)
            offset = nxt
            continue
        yield rec
        last_seq = rec.seq
        offset += rec.size


def is_zeros(buf: mmap.mmap, start: int) -> bool:
    view = memoryview(buf)[start:]
    try:
        return not any(view.tobytes())
    finally:
        view.release()


@dataclass(frozen=True, slots=True)
class Entry:
    """A record's place in a segment, read from its header only (``walk``)."""

    offset: int
    seq: int
    recv_ts_us: int
    size: int


def walk(buf: mmap.mmap | bytes, name: str, first_seq: int) -> Iterator[Entry | Damage]:
    """The records' headers of a segment, fast: a record is trusted without its CRC while
    the chain holds together — its header is sane (magic, version, ``seq`` = the previous
    + 1, starting at the segment's first seq) **and** its length lands exactly on the next
    sane header or on the end of the file, so a damaged length is never followed. At the
    first record that does not hold together the walk continues with ``scan`` from that
    record (CRC-checked, resynchronising on damage)."""
    size = len(buf)

    def sane(at: int, seq: int) -> int | None:
        """The record size at ``at`` when its header is sane for ``seq`` and fits."""
        if at + HEADER_SIZE > size:
            return None
        magic, version, conn_len, length, got, _ts, _crc = HEADER.unpack_from(buf, at)
        step: int = HEADER_SIZE + conn_len + length
        if magic != MAGIC or version != VERSION or got != seq or at + step > size:
            return None
        return step

    offset = 0
    expected = first_seq
    step = sane(0, expected)
    while step is not None:
        after = offset + step
        step_after = sane(after, expected + 1) if after < size else None
        if after < size and step_after is None:
            break  # the successor does not hold together: check this record the slow way
        _m, _v, _c, _l, seq, ts, _crc = HEADER.unpack_from(buf, offset)
        yield Entry(offset, seq, ts, step)
        if after >= size:
            return
        offset, expected, step = after, expected + 1, step_after
    if offset >= size:
        return
    for item in scan(buf, name, offset, expected - 1):
        if isinstance(item, Record):
            yield Entry(item.offset, item.seq, item.recv_ts_us, item.size)
        else:
            yield item
