"""The raw journal archive: each day's sealed, acknowledged segments, in the journal
archive format (``archive.journal_codec``: a structured transform of the records, zstd;
docs/archive.md, "The journal archive format").

The journal engineer says which segment files belong to a day and are sealed; here they
are opaque files. Per day: ``_journal/day=YYYY-MM-DD/<segment>.tjz`` and a manifest
``_manifests/journal/day=YYYY-MM-DD.json`` listing per segment the original size and
SHA-256 and the stored size, SHA-256 and SHA-1. Each file is decoded and compared with the
segment before it is uploaded, and every verify and restore decodes it and checks the
original SHA-256. Segments are uploaded first, the manifest last. Running again with the
same segments does nothing; with more segments for the day, only the new ones are
uploaded and the manifest grows. A segment whose content differs from what was archived
under its name is an ``IntegrityError`` (sealed segments are immutable). Days archived
before the codec (``<segment>.zst``, plain zstd of the segment) are still verified and
restored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

from tickarchive.archive import catalog, journal_codec, layout
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import ArchiveError, IntegrityError, InvalidArgument, ObjectNotFound, TargetError
from tickarchive.archive.hashing import CHUNK_BYTES, file_digests
from tickarchive.archive.target import Target
from tickarchive.progress import NO_PROGRESS, Progress


@dataclass(frozen=True, slots=True)
class JournalResult:
    day: dt.date
    status: str
    """``archived`` or ``up-to-date``."""
    manifest: mf.JournalManifest
    uploaded: int


def _original_digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _encode(src: Path, dest: Path, level: int) -> tuple[int, str]:
    """Encode ``src`` into ``dest`` (``journal_codec.encode``, which checks that the file
    decodes back to the segment); returns the original size and SHA-256."""
    data = src.read_bytes()
    dest.write_bytes(journal_codec.encode(data, level))
    return len(data), hashlib.sha256(data).hexdigest()


def archive_journal_day(
    target: Target,
    day: dt.date,
    segments: Sequence[Path],
    *,
    zstd_level: int = journal_codec.DEFAULT_LEVEL,
    staging_dir: Path | None = None,
    progress: Progress = NO_PROGRESS,
    now: dt.datetime | None = None,
) -> JournalResult:
    names = [p.name for p in segments]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"journal day {day}: two segments share a file name")
    existing = catalog.read_journal_manifest(target, day)
    known = {s.name: s for s in existing.segments} if existing else {}
    entries: dict[str, mf.JournalSegment] = dict(known)
    uploaded = 0
    task = progress.task(f"journal {day}", sum(_size(p) for p in segments), "bytes")
    try:
        with tempfile.TemporaryDirectory(prefix="tickarchive-journal-", dir=staging_dir) as tmp:
            for path in segments:
                key = layout.journal_key(day, path.name)
                old = known.get(path.name)
                if old is not None:
                    size, sha = _original_digest(path)
                    if (size, sha) != (old.original_bytes, old.original_sha256):
                        raise IntegrityError(
                            f"journal {day}: segment {path.name} differs from its archived copy",
                            [
                                f"{key}: archived {old.original_bytes} bytes sha256 {old.original_sha256}, "
                                f"local {size} bytes sha256 {sha}"
                            ],
                        )
                    info = target.stat(old.path)  # kept in the format it was archived in
                    if info is not None and info.bytes == old.bytes and info.sha1 in (None, old.sha1):
                        task.advance(size)
                        continue
                staged = Path(tmp) / f"{path.name}{layout.JOURNAL_SUFFIX}"
                try:
                    size, sha = _encode(path, staged, zstd_level)
                except OSError as exc:
                    raise ArchiveError(f"journal {day}: cannot encode {path}: {exc}") from exc
                digests = file_digests(staged)
                target.put_file(staged, key, digests.sha1)
                uploaded += 1
                entries[path.name] = mf.JournalSegment(
                    name=path.name,
                    path=key,
                    original_bytes=size,
                    original_sha256=sha,
                    bytes=digests.bytes,
                    sha256=digests.sha256,
                    sha1=digests.sha1,
                )
                staged.unlink()
                task.advance(size)
    finally:
        task.done()
    if existing is not None and uploaded == 0 and set(entries) == set(known):
        catalog.record_journal_day(target, existing, now or dt.datetime.now(dt.UTC))
        return JournalResult(day, "up-to-date", existing, 0)
    segs = tuple(sorted(entries.values(), key=lambda s: s.name))
    when = now or dt.datetime.now(dt.UTC)
    manifest = mf.JournalManifest(
        manifest_version=mf.MANIFEST_VERSION,
        day=day.isoformat(),
        compression=f"tjz{journal_codec.VERSION}+zstd({zstd_level})",
        segments=segs,
        total_original_bytes=sum(s.original_bytes for s in segs),
        total_bytes=sum(s.bytes for s in segs),
        created_at=mf.iso(when),
    )
    target.put_bytes(layout.journal_manifest_key(day), mf.encode(manifest))
    catalog.record_journal_day(target, manifest, when)
    return JournalResult(day, "archived", manifest, uploaded)


def segments_by_day(segments: Iterable[tuple[Path, int | None]]) -> dict[dt.date, list[Path]]:
    """Group segment files by the UTC day of their first record's receive time
    (``(path, first_ts_us)`` pairs; empty segments, ``None``, are skipped). A segment that
    spans midnight belongs to the day it starts in."""
    out: dict[dt.date, list[Path]] = {}
    for path, first_ts_us in segments:
        if first_ts_us is None:
            continue
        day = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=first_ts_us)).date()
        out.setdefault(day, []).append(path)
    return dict(sorted(out.items()))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise ArchiveError(f"journal segment {path}: {exc}") from exc


def check_journal_day(target: Target, day: dt.date, *, progress: Progress = NO_PROGRESS) -> list[str]:
    """Every problem of one archived journal day (empty = verified)."""
    manifest = catalog.read_journal_manifest(target, day)
    if manifest is None:
        return [f"{layout.journal_manifest_key(day)}: no manifest"]
    problems: list[str] = []
    task = progress.task(f"verify journal {day}", manifest.total_bytes, "bytes")
    try:
        for seg in manifest.segments:
            problems.extend(_check_segment(target, seg))
            task.advance(seg.bytes)
    finally:
        task.done()
    return problems


def check_segment(target: Target, seg: mf.JournalSegment) -> list[str]:
    """Every problem of one archived segment: fetched, its stored bytes hashed, decoded and
    the result hashed against the manifest (empty = verified)."""
    return _check_segment(target, seg)


def _check_segment(target: Target, seg: mf.JournalSegment) -> list[str]:
    try:
        with target.fetch(seg.path) as fetched:
            d = file_digests(fetched.path)
            problems = []
            if d.bytes != seg.bytes:
                problems.append(f"{seg.path}: size {d.bytes} bytes, manifest {seg.bytes}")
            if d.sha256 != seg.sha256:
                problems.append(f"{seg.path}: SHA-256 mismatch (got {d.sha256}, manifest {seg.sha256})")
            if fetched.info.sha1 is not None and fetched.info.sha1 != seg.sha1:
                problems.append(f"{seg.path}: target recorded SHA-1 {fetched.info.sha1}, manifest {seg.sha1}")
            if problems:
                return problems
            size, sha = _decoded_digest(seg.path, fetched.path)
    except ObjectNotFound:
        return [f"{seg.path}: missing at the target"]
    except zstandard.ZstdError as exc:
        return [f"{seg.path}: not valid zstd: {exc}"]
    except IntegrityError as exc:
        return [f"{seg.path}: {exc}"]
    except OSError as exc:
        raise TargetError(f"{seg.path}: cannot read the downloaded copy: {exc}") from exc
    if (size, sha) != (seg.original_bytes, seg.original_sha256):
        return [
            f"{seg.path}: decodes to {size} bytes sha256 {sha}, "
            f"manifest {seg.original_bytes} bytes sha256 {seg.original_sha256}"
        ]
    return []


def _decoded_digest(key: str, path: Path) -> tuple[int, str]:
    if key.endswith(layout.JOURNAL_SUFFIX):
        data = journal_codec.decode(path.read_bytes())
        return len(data), hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
        while chunk := reader.read(CHUNK_BYTES):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def verify_journal_day(target: Target, day: dt.date, *, progress: Progress = NO_PROGRESS) -> mf.JournalManifest:
    problems = check_journal_day(target, day, progress=progress)
    if problems:
        raise IntegrityError(f"journal verify failed for {day} at {target.url}", problems)
    manifest = catalog.read_journal_manifest(target, day)
    assert manifest is not None
    return manifest


def restore_journal_day(target: Target, day: dt.date, dest: Path) -> list[Path]:
    """Decode a day's segments into ``dest``, each checked byte for byte (SHA-256) against
    the segment that was archived."""
    manifest = catalog.read_journal_manifest(target, day)
    if manifest is None:
        raise ArchiveError(f"journal day {day} is not archived at {target.url}")
    out: list[Path] = []
    dest.mkdir(parents=True, exist_ok=True)
    for seg in manifest.segments:
        final = dest / seg.name
        tmp = dest / f".{seg.name}.tmp"
        try:
            with target.fetch(seg.path) as fetched:
                if seg.path.endswith(layout.JOURNAL_SUFFIX):
                    data = journal_codec.decode(fetched.path.read_bytes())
                    digest = hashlib.sha256(data).hexdigest()
                    tmp.write_bytes(data)
                else:
                    digest = _unzstd(fetched.path, tmp)
            if digest != seg.original_sha256:
                tmp.unlink(missing_ok=True)
                raise IntegrityError(f"journal {day}: {seg.path} does not decode to the archived segment")
            tmp.replace(final)
        except (OSError, zstandard.ZstdError) as exc:
            tmp.unlink(missing_ok=True)
            raise ArchiveError(f"journal {day}: cannot restore {seg.name}: {exc}") from exc
        except IntegrityError:
            tmp.unlink(missing_ok=True)
            raise
        out.append(final)
    return out


def _unzstd(src: Path, dest: Path) -> str:
    """Decompress a legacy ``.zst`` segment into ``dest``; returns its SHA-256."""
    h = hashlib.sha256()
    with (
        src.open("rb") as f,
        dest.open("wb") as w,
        zstandard.ZstdDecompressor().stream_reader(f) as reader,
    ):
        while chunk := reader.read(CHUNK_BYTES):
            h.update(chunk)
            w.write(chunk)
    return h.hexdigest()
