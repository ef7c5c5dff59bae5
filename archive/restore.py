"""``archive restore``: load an archived month back into a sink, idempotently.

Each file is fetched, its SHA-256 checked against the manifest before a single row is
loaded, then streamed into the sink batch by batch. The sink ignores rows whose dedup key
it already holds, so restoring twice changes nothing. Afterwards the sink must hold at
least the manifest's row count for the month.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from tickarchive import rows
from tickarchive.archive import catalog
from tickarchive.archive.errors import ArchiveError, IntegrityError
from tickarchive.archive.hashing import file_digests
from tickarchive.archive.source import ArchiveSink
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.tables import Table

BATCH_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class RestoreResult:
    table: str
    month: Month
    rows_read: int
    rows_inserted: int
    rows_in_sink: int


def restore_month(
    target: Target,
    sink: ArchiveSink,
    table: Table,
    month: Month,
    *,
    progress: Progress = NO_PROGRESS,
    batch_rows: int = BATCH_ROWS,
) -> RestoreResult:
    manifest = catalog.read_month_manifest(target, table.name, month)
    if manifest is None:
        raise ArchiveError(f"{table.name} {month} is not archived at {target.url} (no manifest)")
    schema = rows.arrow_schema(table)
    read = inserted = 0
    task = progress.task(f"restore {table.name} {month}", manifest.total_rows, "rows")
    try:
        for entry in manifest.files:
            with target.fetch(entry.path) as fetched:
                digests = file_digests(fetched.path)
                if digests.sha256 != entry.sha256:
                    raise IntegrityError(
                        f"restore of {table.name} {month} stopped before loading {entry.path}",
                        [f"{entry.path}: SHA-256 mismatch (got {digests.sha256}, manifest {entry.sha256})"],
                    )
                try:
                    pf = pq.ParquetFile(str(fetched.path))
                    for batch in pf.iter_batches(batch_size=batch_rows):
                        batch = batch.select(schema.names).cast(schema)
                        inserted += sink.insert(table, batch)
                        read += batch.num_rows
                        task.advance(batch.num_rows)
                except (pa.ArrowException, OSError) as exc:
                    raise ArchiveError(f"{entry.path}: cannot read Parquet: {exc}") from exc
    finally:
        task.done()
    if read != manifest.total_rows:
        raise IntegrityError(f"{table.name} {month}: read {read} rows, manifest says {manifest.total_rows}")
    in_sink = sink.count_rows(table, month)
    if in_sink < manifest.total_rows:
        raise IntegrityError(
            f"{table.name} {month}: sink holds {in_sink} rows after restore, archive {manifest.total_rows}"
        )
    return RestoreResult(table.name, month, read, inserted, in_sink)
