"""The journal directory on disk: segment files, the checkpoint, and the reports the
reader and the writer give about them (docs/journal.md)."""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tickarchive.ingest.errors import JournalError
from tickarchive.ingest.journal.format import (
    SEGMENT_SUFFIX,
    BadRecord,
    decode_at,
    peek_seq,
)

CHECKPOINT_FILE: Final = "checkpoint.json"
LOCK_FILE: Final = "writer.lock"


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
    """What ``Journal.open`` cut from a torn tail."""

    segment: str
    kept_records: int
    kept_bytes: int
    cut_bytes: int
    reason: str


@dataclass(slots=True)
class VerifyReport:
    segments: int = 0
    records: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

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


def is_zeros(buf: mmap.mmap, start: int) -> bool:
    view = memoryview(buf)[start:]
    try:
        return not any(view.tobytes())
    finally:
        view.release()


def scan_valid(buf: mmap.mmap, name: str) -> tuple[int, int, BadRecord | None]:
    """(records, end offset of the last whole record, the problem after it)."""
    offset = 0
    count = 0
    size = len(buf)
    while offset < size:
        try:
            rec = decode_at(buf, offset, name)
        except BadRecord as bad:
            return count, offset, bad
        offset += rec.size
        count += 1
    return count, offset, None


def last_offset(buf: mmap.mmap, good_end: int) -> int:
    """Offset of the last whole record before ``good_end``."""
    offset = 0
    last = 0
    while offset < good_end:
        last = offset
        offset += peek_seq(buf, offset)[1]
    return last
