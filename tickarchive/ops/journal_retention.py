"""Local journal retention: ``tickarchive journal prune`` (docs/journal.md, "Deleting
segments").

The journal is the only copy of a frame until its segment is archived, so a segment is
deleted only when every one of these holds:

1. it is sealed (not the segment being written);
2. QuestDB acknowledged every record in it (the checkpoint is past its last seq);
3. it lies before the writer's replay window (``writer.replay_window_s``: the records a
   restarting writer sends again);
4. it is past local retention: its newest record is older than ``journal.retain_days``,
   or the journal is larger than ``journal.retain_max_bytes`` (oldest first);
5. the archive's journal manifest lists it with the local file's exact size and SHA-256;
6. the archived copy verifies: fetched, hashed, decoded, and the decoded bytes hash to
   the manifest's (``archive.journal.check_segment``).

Segments go oldest first and only as a prefix: the first one that must stay stops the
run, so the journal never has a hole. The deletion itself takes the journal's retention
lock (``files.retention_lock``) for a moment, so a collector starting at the same
instant never lists a file that then vanishes; the verification before it holds no lock.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tickarchive.archive import catalog
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import ArchiveError
from tickarchive.archive.journal import check_segment
from tickarchive.archive.target import Target
from tickarchive.ingest.errors import IngestError
from tickarchive.ingest.journal import JournalReader
from tickarchive.ingest.journal.files import SegmentInfo, fsync_dir, list_segments, read_checkpoint, retention_lock
from tickarchive.ingest.journal.format import first_seq_of
from tickarchive.ops.errors import JournalRetentionError

_US_PER_DAY = 86_400_000_000
_CHUNK_BYTES = 1 << 20


class Fate(enum.Enum):
    """What the run did with one segment (the first ``KEPT_*`` ends the run)."""

    DELETED = "deleted"
    WOULD_DELETE = "would delete (dry run)"
    KEPT_OPEN = "kept: being written"
    KEPT_UNACKED = "kept: not yet acknowledged by QuestDB"
    KEPT_REPLAY_WINDOW = "kept: inside the writer's replay window"
    KEPT_RETENTION = "kept: within local retention"
    KEPT_NOT_ARCHIVED = "kept: not archived"
    KEPT_DIFFERS = "kept: the archived copy is not this file"
    KEPT_UNVERIFIED = "kept: the archived copy fails verification"
    KEPT_UNREADABLE = "kept: holds no readable record (archive it by hand)"

    @property
    def deletes(self) -> bool:
        return self in (Fate.DELETED, Fate.WOULD_DELETE)

    @property
    def is_problem(self) -> bool:
        """The segment should have gone by now and something in the archive stopped it."""
        return self in (Fate.KEPT_NOT_ARCHIVED, Fate.KEPT_DIFFERS, Fate.KEPT_UNVERIFIED, Fate.KEPT_UNREADABLE)


@dataclass(frozen=True, slots=True)
class SegmentFate:
    name: str
    bytes: int
    last_ts_us: int | None
    fate: Fate
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PruneReport:
    segments: tuple[SegmentFate, ...]
    bytes_before: int
    bytes_after: int
    retain_max_bytes: int

    @property
    def deleted(self) -> tuple[SegmentFate, ...]:
        return tuple(s for s in self.segments if s.fate.deletes)

    @property
    def blocked(self) -> SegmentFate | None:
        """The segment that stopped the run because the archive does not hold it (as it
        should by now), or ``None``."""
        last = self.segments[-1] if self.segments else None
        return last if last is not None and last.fate.is_problem else None

    @property
    def over_budget(self) -> bool:
        return self.bytes_after > self.retain_max_bytes


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retain_days: float
    retain_max_bytes: int
    replay_window_s: float


def prune_journal(
    directory: Path,
    target: Target,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    now_us: int | None = None,
    on_segment: Callable[[SegmentFate], None] | None = None,
) -> PruneReport:
    """Delete the oldest segments that may go (the rules in the module docstring)."""
    try:
        return _prune(directory, target, policy, dry_run, now_us, on_segment)
    except (IngestError, ArchiveError) as exc:
        raise JournalRetentionError(f"journal prune of {directory}: {exc}") from exc


def _prune(
    directory: Path,
    target: Target,
    policy: RetentionPolicy,
    dry_run: bool,
    now_us: int | None,
    on_segment: Callable[[SegmentFate], None] | None,
) -> PruneReport:
    reader = JournalReader(directory)
    now = now_us if now_us is not None else time.time_ns() // 1000
    paths = list_segments(directory)
    sizes = {p: _size(p) for p in paths}
    total = before = sum(sizes.values())
    acked = read_checkpoint(directory)
    keep_from = reader.replay_start(acked, round(policy.replay_window_s * 1_000_000))
    retain_us = round(policy.retain_days * _US_PER_DAY)
    manifests: dict[dt.date, mf.JournalManifest | None] = {}
    out: list[SegmentFate] = []

    def record(fate: SegmentFate) -> None:
        out.append(fate)
        if on_segment is not None:
            on_segment(fate)

    successors: list[Path | None] = [*paths[1:], None]
    for path, successor in zip(paths, successors, strict=True):
        info = reader.segment_info(path, successor is not None, acked)
        if successor is None:
            record(SegmentFate(path.name, info.bytes, info.last_ts_us, Fate.KEPT_OPEN))
            break
        last_seq = first_seq_of(successor.name) - 1
        fate, detail = _decide(info, last_seq, acked, keep_from, now, retain_us, total, policy, target, manifests)
        if fate is Fate.DELETED and dry_run:
            fate = Fate.WOULD_DELETE
        if fate is Fate.DELETED:
            _delete(directory, path)
        record(SegmentFate(path.name, info.bytes, info.last_ts_us, fate, detail))
        if not fate.deletes:
            break
        total -= sizes[path]
    return PruneReport(tuple(out), before, total, policy.retain_max_bytes)


def _decide(
    info: SegmentInfo,
    last_seq: int,
    acked: int,
    keep_from: int,
    now_us: int,
    retain_us: int,
    total_bytes: int,
    policy: RetentionPolicy,
    target: Target,
    manifests: dict[dt.date, mf.JournalManifest | None],
) -> tuple[Fate, str]:
    if last_seq > acked:
        return Fate.KEPT_UNACKED, f"last seq {last_seq} > acknowledged {acked}"
    if last_seq >= keep_from:
        return Fate.KEPT_REPLAY_WINDOW, f"the writer reads back from seq {keep_from}"
    old = info.last_ts_us is None or now_us - info.last_ts_us >= retain_us
    if not old and total_bytes <= policy.retain_max_bytes:
        return Fate.KEPT_RETENTION, f"journal {total_bytes:,} bytes <= journal.retain_max_bytes"
    if info.records == 0:
        if info.bytes == 0:
            return Fate.DELETED, "empty"
        return Fate.KEPT_UNREADABLE, f"{info.bytes:,} bytes of damage only: tickarchive archive journal FILE --day D"
    assert info.first_ts_us is not None
    day = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=info.first_ts_us)).date()
    if day not in manifests:
        manifests[day] = catalog.read_journal_manifest(target, day)
    manifest = manifests[day]
    entry = next((s for s in manifest.segments if s.name == info.name), None) if manifest else None
    if entry is None:
        return Fate.KEPT_NOT_ARCHIVED, f"no entry in the journal manifest of {day} at {target.url}"
    size, sha = _sha256(info.path)
    if (size, sha) != (entry.original_bytes, entry.original_sha256):
        return Fate.KEPT_DIFFERS, (
            f"local {size:,} bytes sha256 {sha[:12]}…, manifest {entry.original_bytes:,} bytes "
            f"sha256 {entry.original_sha256[:12]}…"
        )
    problems = check_segment(target, entry)
    if problems:
        return Fate.KEPT_UNVERIFIED, "; ".join(problems)
    return Fate.DELETED, f"archived as {entry.path}, verified"


def _delete(directory: Path, path: Path) -> None:
    try:
        with retention_lock(directory):
            path.unlink()
            fsync_dir(directory)
    except OSError as exc:
        raise JournalRetentionError(f"cannot delete {path}: {exc.strerror}") from exc


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise JournalRetentionError(f"cannot stat {path}: {exc.strerror}") from exc


def _sha256(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK_BYTES):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise JournalRetentionError(f"cannot read {path}: {exc.strerror}") from exc
    return size, h.hexdigest()
