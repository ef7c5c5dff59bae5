"""``archive export``: one (table, month) from a source to a target, idempotently.

Order of work, so that a crash anywhere leaves a state the next run completes:

1. Count the source rows. If the target already holds a manifest for the month whose
   source count equals the current one, whose files are all present (size, and SHA-1
   where the target keeps one) and whose content checksum equals the source's (a read
   of the month: a row updated under its dedup key keeps the count), there is nothing
   to do.
2. Write the month's Parquet parts into a private staging directory; the rows written
   must equal the source count, else ``RowCountMismatch`` and nothing is uploaded.
3. Upload the data files (skipping any already present with the same size and SHA-1,
   which is what a rerun after a crash finds: the files are deterministic).
4. Upload the manifest **last**: the month is archived exactly when it exists.
5. Update the index, then delete objects in the month's directory that the manifest does
   not list (parts of an older generation, leftovers).

A month whose source grew (late trades backfilled after the archive) or changed (a gap
closed after the export) is exported again as the next *generation*
(``part-g1-0000.parquet``...): the old files stay valid until the new manifest replaces
the old one. A source with fewer rows than the archive (e.g. the
warm month was already dropped) is refused unless forced.

With ``keep_superseded`` (the Iceberg lake is on: ``lake.enabled``, see
``archive.iceberg``) earlier generations are versions the lake's older snapshots still
read: a forced re-export (a month re-derived from the raw journal) always becomes a new
generation, and step 5 deletes only files of the current generation's name space that
the manifest does not list, never an earlier generation's.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from tickarchive.archive import catalog, layout
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import ArchiveError, EmptyMonth, RefusedExport, RowCountMismatch
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.parquet_files import SCHEMA_VERSION, MonthWriter, WrittenPart, schema_fingerprint, sort_columns
from tickarchive.archive.source import ArchiveSource
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.settings import ArchiveSettings
from tickarchive.store.checksum import ChecksumAccumulator, checksum_of
from tickarchive.tables import Table


@dataclass(frozen=True, slots=True)
class ExportOptions:
    zstd_level: int = 9
    row_group_rows: int = 500_000
    file_rows: int = 10_000_000
    """Rows per Parquet file before the next part starts."""
    staging_dir: Path | None = None
    """Where parts are written before upload; None = the system temp directory."""
    keep_superseded: bool = False
    """Keep earlier generations' files (time travel in the Iceberg lake) and make every
    forced re-export a new generation."""

    @classmethod
    def from_settings(cls, settings: ArchiveSettings) -> ExportOptions:
        return cls(
            zstd_level=settings.zstd_level,
            row_group_rows=settings.row_group_rows,
            file_rows=getattr(settings, "file_rows", 10_000_000),
            staging_dir=getattr(settings, "staging_dir", None),
        )


@dataclass(frozen=True, slots=True)
class ExportResult:
    table: str
    month: Month
    status: str
    """``exported`` or ``up-to-date``."""
    manifest: mf.MonthManifest
    uploaded: int
    skipped: int


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def files_present(target: Target, manifest: mf.MonthManifest) -> bool:
    """Every file of the manifest exists with its size (and SHA-1, where the target has one)."""
    for entry in manifest.files:
        info = target.stat(entry.path)
        if info is None or info.bytes != entry.bytes:
            return False
        if info.sha1 is not None and info.sha1 != entry.sha1:
            return False
    return True


def export_month(
    source: ArchiveSource,
    target: Target,
    table: Table,
    month: Month,
    options: ExportOptions = ExportOptions(),
    *,
    progress: Progress = NO_PROGRESS,
    force: bool = False,
    now: dt.datetime | None = None,
) -> ExportResult:
    existing = catalog.read_month_manifest(target, table.name, month)
    source_rows = source.count_rows(table, month)
    when = now or _utcnow()
    generation = 0
    if existing is not None:
        same = existing.source_rows == source_rows and (
            existing.content_checksum is None or existing.content_checksum == source_checksum(source, table, month)
        )
        if same and not force and files_present(target, existing):
            catalog.record_month(target, existing, when)
            return ExportResult(table.name, month, "up-to-date", existing, 0, 0)
        if source_rows < existing.total_rows and not force:
            raise RefusedExport(
                f"{table.name} {month}: source has {source_rows} rows, the archive {existing.total_rows}; "
                "refusing to replace it with less (was the warm month dropped?). Use --force to override."
            )
        generation = existing.generation if same and not (force and options.keep_superseded) else (
            existing.generation + 1
        )

    staging_root = options.staging_dir
    if staging_root is not None:
        staging_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tickarchive-export-", dir=staging_root) as tmp:
        parts, checksum = _write_parts(source, table, month, Path(tmp), generation, options, source_rows, progress)
        uploaded, skipped = _upload(target, parts, progress, f"{table.name} {month}")
        manifest = _manifest(table, month, generation, parts, source_rows, options, when, checksum)
        target.put_bytes(layout.manifest_key(table.name, month), mf.encode(manifest))
    catalog.record_month(target, manifest, when)
    _remove_stale(target, table.name, month, manifest, options.keep_superseded)
    return ExportResult(table.name, month, "exported", manifest, uploaded, skipped)


def _write_parts(
    source: ArchiveSource,
    table: Table,
    month: Month,
    staging: Path,
    generation: int,
    options: ExportOptions,
    source_rows: int,
    progress: Progress,
) -> tuple[list[WrittenPart], str]:
    """The month's parts and the content checksum of the rows written into them."""
    task = progress.task(f"write {table.name} {month}", source_rows, "rows")
    checksum = ChecksumAccumulator(table)
    try:
        with MonthWriter(
            table,
            month,
            staging,
            generation=generation,
            zstd_level=options.zstd_level,
            row_group_rows=options.row_group_rows,
            file_rows=options.file_rows,
        ) as writer:
            for batch in source.batches(table, month):
                writer.write(batch)
                checksum.add(batch)
                task.advance(batch.num_rows)
            parts = writer.finish()
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"{table.name} {month}: writing Parquet in {staging} failed: {exc}") from exc
    finally:
        task.done()
    written = sum(p.rows for p in parts)
    if written != source_rows or writer.rows_in != source_rows:
        raise RowCountMismatch(
            f"{table.name} {month}: wrote {written} rows but the source counted {source_rows}; nothing published",
            [f"{p.key}: {p.rows} rows" for p in parts],
        )
    return parts, checksum.result().hex()


def source_checksum(source: ArchiveSource, table: Table, month: Month) -> str:
    """The content checksum of the source's rows of ``month`` (a read of the month)."""
    return checksum_of(table, source.batches(table, month)).hex()


def _upload(target: Target, parts: list[WrittenPart], progress: Progress, what: str) -> tuple[int, int]:
    task = progress.task(f"upload {what}", sum(p.digests.bytes for p in parts), "bytes")
    uploaded = skipped = 0
    try:
        for part in parts:
            info = target.stat(part.key)
            if (
                info is not None
                and info.bytes == part.digests.bytes
                and info.sha1 is not None
                and info.sha1 == part.digests.sha1
            ):
                skipped += 1
            else:
                target.put_file(part.local_path, part.key, part.digests.sha1)
                uploaded += 1
            task.advance(part.digests.bytes)
    finally:
        task.done()
    return uploaded, skipped


def _manifest(
    table: Table,
    month: Month,
    generation: int,
    parts: list[WrittenPart],
    source_rows: int,
    options: ExportOptions,
    when: dt.datetime,
    content_checksum: str,
) -> mf.MonthManifest:
    files = tuple(
        mf.FileEntry(
            path=p.key,
            rows=p.rows,
            bytes=p.digests.bytes,
            sha256=p.digests.sha256,
            sha1=p.digests.sha1,
            min_ts_us=p.min_ts_us,
            max_ts_us=p.max_ts_us,
            row_groups=p.row_groups,
        )
        for p in parts
    )
    mins = [f.min_ts_us for f in files if f.min_ts_us is not None]
    maxs = [f.max_ts_us for f in files if f.max_ts_us is not None]
    return mf.MonthManifest(
        manifest_version=mf.MANIFEST_VERSION,
        schema_version=SCHEMA_VERSION,
        schema_fingerprint=schema_fingerprint(table),
        table=table.name,
        month=str(month),
        generation=generation,
        sort_columns=sort_columns(table),
        compression=f"zstd({options.zstd_level})",
        files=files,
        total_rows=sum(f.rows for f in files),
        total_bytes=sum(f.bytes for f in files),
        min_ts_us=min(mins) if mins else None,
        max_ts_us=max(maxs) if maxs else None,
        source_rows=source_rows,
        created_at=mf.iso(when),
        content_checksum=content_checksum,
    )


def _generation_of(key: str) -> int | None:
    """The generation in a part's name (``part-0000`` = 0, ``part-g2-0000`` = 2)."""
    name = key.rsplit("/", 1)[-1]
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    rest = name[len("part-") : -len(".parquet")]
    if rest.startswith("g") and "-" in rest:
        gen = rest[1:].split("-", 1)[0]
        return int(gen) if gen.isdigit() else None
    return 0 if rest.isdigit() else None


def _remove_stale(
    target: Target, table: str, month: Month, manifest: mf.MonthManifest, keep_superseded: bool = False
) -> None:
    keep = {f.path for f in manifest.files}
    for obj in list(target.list(layout.month_dir(table, month))):
        gen = _generation_of(obj.key)
        if keep_superseded and gen is not None and gen < manifest.generation:
            continue  # an earlier version: the lake's older snapshots read it
        if obj.key not in keep:
            target.delete(obj.key)
    if isinstance(target, LocalTarget):
        target.remove_temporaries(layout.month_dir(table, month))


def refuse_empty_month(source: ArchiveSource, tables: list[Table], month: Month) -> dict[str, int]:
    """The source's row count of each table for ``month``; ``EmptyMonth`` when all are 0.

    One table without rows in a month that has data (no gaps that month, say) is exported
    as an empty manifest (``total_rows`` 0), which ``archive ls`` and ``verify`` show as
    *empty*. A month with no rows at all is refused: it is not in the source (not rolled
    over yet, or already dropped), and an archive of nothing must not look archived."""
    counts = {t.name: source.count_rows(t, month) for t in tables}
    if not any(counts.values()):
        raise EmptyMonth(
            f"{month}: the source holds no rows of {', '.join(counts)} in that month; nothing to archive "
            "(days reach the warm store through `tickarchive rollover` once sealed)"
        )
    return counts


def export_months(
    source: ArchiveSource,
    target: Target,
    tables: list[Table],
    months: list[Month],
    options: ExportOptions = ExportOptions(),
    *,
    progress: Progress = NO_PROGRESS,
    force: bool = False,
) -> list[ExportResult]:
    return [export_month(source, target, t, m, options, progress=progress, force=force) for m in months for t in tables]
