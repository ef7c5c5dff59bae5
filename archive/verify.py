"""``archive verify``: re-read every archived file and check it against its manifest.

Per file: present, size, SHA-256, SHA-1 (and the SHA-1 the target itself recorded, on
B2), readable as Parquet, row count and ts range. Per month: the files add up to the
manifest's totals and equal the source count it was checked against, and every row,
decoded, gives the manifest's content checksum (``store.checksum``; manifests from before
it have none). Every problem is
collected (one line each, naming the file) and raised together as ``IntegrityError``.
A month that passes gets a verify record (``_verified/...``), which the warm-retention
decision relies on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tickarchive.archive import catalog, layout
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import ArchiveError, IntegrityError, ObjectNotFound, TargetError
from tickarchive.archive.hashing import file_digests
from tickarchive.archive.parquet_files import SCHEMA_VERSION, read_summary
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.store.checksum import ChecksumAccumulator
from tickarchive.tables import table as table_named


@dataclass(frozen=True, slots=True)
class VerifyResult:
    table: str
    month: Month
    files: int
    rows: int
    bytes: int
    problems: tuple[str, ...]
    manifest_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_month(target: Target, table: str, month: Month, *, progress: Progress = NO_PROGRESS) -> VerifyResult:
    """Every problem of one archived month (empty ``problems`` = verified); raises nothing
    for bad data, only ``ManifestError``/``TargetError`` when the target cannot be read."""
    manifest = catalog.read_month_manifest(target, table, month)
    if manifest is None:
        return VerifyResult(table, month, 0, 0, 0, (f"{layout.manifest_key(table, month)}: no manifest",))
    problems: list[str] = []
    if manifest.table != table or manifest.month != str(month):
        problems.append(f"{layout.manifest_key(table, month)}: describes {manifest.table} {manifest.month}")
    total = sum(f.rows for f in manifest.files)
    if total != manifest.total_rows or manifest.total_rows != manifest.source_rows:
        problems.append(
            f"{layout.manifest_key(table, month)}: files hold {total} rows, manifest total {manifest.total_rows}, "
            f"source {manifest.source_rows}"
        )
    checksum = ChecksumAccumulator(table_named(table)) if manifest.content_checksum is not None else None
    task = progress.task(f"verify {table} {month}", manifest.total_bytes, "bytes")
    try:
        for entry in manifest.files:
            problems.extend(_check_file(target, entry, month, checksum))
            task.advance(entry.bytes)
    finally:
        task.done()
    if checksum is not None and not problems:
        got = checksum.result().hex()
        if got != manifest.content_checksum:
            problems.append(
                f"{layout.manifest_key(table, month)}: the rows give content checksum {got}, "
                f"manifest {manifest.content_checksum}"
            )
    return VerifyResult(
        table,
        month,
        len(manifest.files),
        manifest.total_rows,
        manifest.total_bytes,
        tuple(problems),
        catalog.manifest_sha256(manifest),
    )


def _check_file(
    target: Target, entry: mf.FileEntry, month: Month, checksum: ChecksumAccumulator | None
) -> list[str]:
    name = entry.path
    try:
        with target.fetch(name) as fetched:
            problems: list[str] = []
            digests = file_digests(fetched.path)
            if digests.bytes != entry.bytes:
                problems.append(f"{name}: size {digests.bytes} bytes, manifest {entry.bytes}")
            if digests.sha256 != entry.sha256:
                problems.append(f"{name}: SHA-256 mismatch (got {digests.sha256}, manifest {entry.sha256})")
            if digests.sha1 != entry.sha1:
                problems.append(f"{name}: SHA-1 mismatch (got {digests.sha1}, manifest {entry.sha1})")
            stored = fetched.info.sha1
            if stored is not None and stored != entry.sha1:
                problems.append(f"{name}: target recorded SHA-1 {stored}, manifest {entry.sha1}")
            if problems:
                return problems  # a corrupt file need not be decoded
            try:
                summary = read_summary(fetched.path)
                if checksum is not None:
                    _add_rows(fetched.path, checksum)
            except ArchiveError as exc:
                return [f"{name}: {exc}"]
    except ObjectNotFound:
        return [f"{name}: missing at the target"]
    except OSError as exc:
        raise TargetError(f"{name}: cannot read the downloaded copy: {exc}") from exc
    if summary.rows != entry.rows:
        problems.append(f"{name}: {summary.rows} rows, manifest {entry.rows}")
    if (summary.min_ts_us, summary.max_ts_us) != (entry.min_ts_us, entry.max_ts_us):
        problems.append(
            f"{name}: ts range {summary.min_ts_us}..{summary.max_ts_us}, manifest {entry.min_ts_us}..{entry.max_ts_us}"
        )
    if (
        summary.min_ts_us is not None
        and summary.max_ts_us is not None
        and (summary.min_ts_us < month.start_us or summary.max_ts_us >= month.end_us)
    ):
        problems.append(f"{name}: rows outside {month}")
    if summary.schema_version != SCHEMA_VERSION:
        problems.append(f"{name}: schema version {summary.schema_version}, expected {SCHEMA_VERSION}")
    return problems


def _add_rows(path: Path, checksum: ChecksumAccumulator) -> None:
    try:
        for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=262_144):
            checksum.add(batch)
    except (pa.ArrowException, OSError) as exc:
        raise ArchiveError(f"unreadable Parquet: {exc}") from None


def verify_month(
    target: Target,
    table: str,
    month: Month,
    *,
    progress: Progress = NO_PROGRESS,
    now: dt.datetime | None = None,
) -> VerifyResult:
    """``check_month``, then record success at the target or raise ``IntegrityError``."""
    result = check_month(target, table, month, progress=progress)
    if not result.ok:
        forget_verified(target, table, month)
        raise IntegrityError(f"verify failed for {table} {month} at {target.url}", result.problems)
    record_verified(target, result, now=now)
    return result


def forget_verified(target: Target, table: str, month: Month) -> None:
    """Remove the verify record of a month that just failed: an archive known to be bad
    must not count as verified (the warm tier keeps the month)."""
    target.delete(layout.verified_key(table, month))


def record_verified(target: Target, result: VerifyResult, *, now: dt.datetime | None = None) -> None:
    """Write the verify record of a passed check (which manifest, by hash, and when)."""
    if not result.ok or result.manifest_sha256 is None:
        raise IntegrityError(f"{result.table} {result.month}: cannot record a failed verify", result.problems)
    record = mf.VerifiedRecord(
        table=result.table,
        month=str(result.month),
        manifest_sha256=result.manifest_sha256,
        files=result.files,
        rows=result.rows,
        verified_at=mf.iso(now or dt.datetime.now(dt.UTC)),
    )
    target.put_bytes(layout.verified_key(result.table, result.month), mf.encode(record))


def verify_many(
    target: Target,
    selection: list[tuple[str, Month]],
    *,
    progress: Progress = NO_PROGRESS,
    now: dt.datetime | None = None,
) -> list[VerifyResult]:
    """Check every selected month; record the good ones; raise one ``IntegrityError``
    listing every problem of every bad one."""
    results = [check_month(target, t, m, progress=progress) for t, m in selection]
    for r in results:
        if r.ok:
            record_verified(target, r, now=now)
        else:
            forget_verified(target, r.table, r.month)
    bad = [r for r in results if not r.ok]
    if bad:
        raise IntegrityError(
            f"verify failed for {len(bad)} of {len(results)} archived months at {target.url}",
            [p for r in bad for p in r.problems],
        )
    return results
