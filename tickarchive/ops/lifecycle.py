"""Lifecycle jobs: warm-tier retention and restoring an archived month into the warm store.

Warm retention drops a (table, month) of the warm store only when the archive's decision
function (``archive.retention.decide``) says so: the month is older than
``lifecycle.warm_retention_months`` **and** its archive (the current manifest) has a
passing verify record at the target **and** the warm month's row count and content
checksum (``store.checksum``) equal the manifest's. When they differ (a trade backfilled
after the export, a gap closed after it) the month is exported again (the next
generation), verified, compared once more, and only then dropped; if anything of that
fails the month stays. Rows written into the month between that last comparison and the
drop would be lost: months this old receive rows only from a hand-run backfill or
restore, which must not run during the retention job (docs/archive.md). TimescaleDB drops the month's chunks with
``drop_chunks``; plain PostgreSQL drops the month's daily partitions
(``tickarchive.store.warm.WarmStore.drop_month``). The rollups
(``trades_1m``/``quotes_1m``), ``coverage_daily`` and ``rollover_ledger`` are kept: they
are small and are the long-term summary of what was archived.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from tickarchive.archive import catalog, retention
from tickarchive.archive.errors import ArchiveError
from tickarchive.archive.export import ExportOptions, export_month
from tickarchive.archive.restore import RestoreResult, restore_month
from tickarchive.archive.target import Target
from tickarchive.archive.verify import verify_month
from tickarchive.months import Month
from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.store.checksum import ChecksumAccumulator
from tickarchive.store.errors import StoreError
from tickarchive.store.warm import WarmStore
from tickarchive.tables import GAPS, MARKET_TABLES, Table

ARCHIVED_TABLES: tuple[Table, ...] = (*MARKET_TABLES, GAPS)
"""The tables the archive exports (``archive export``'s default): only they can verify."""


@dataclass(frozen=True, slots=True)
class RetentionOutcome:
    table: str
    month: Month
    verdict: retention.Verdict
    rows: int
    dropped: bool
    reexported: bool = False
    """The warm month differed from the archive and was exported again first."""
    detail: str = ""


def warm_retention(
    warm: WarmStore,
    target: Target,
    today: dt.date,
    retention_months: int,
    *,
    tables: Sequence[Table] = ARCHIVED_TABLES,
    dry_run: bool = False,
    progress: Progress = NO_PROGRESS,
    export_options: ExportOptions | None = None,
) -> list[RetentionOutcome]:
    """Decide per (table, month) held in the warm store and drop what may go (unless dry run)."""
    options = export_options or ExportOptions()
    present = [(t.name, m) for t in tables for m in warm.stored_months(t)]
    keep_from = retention.oldest_kept_month(today, retention_months)
    candidates = [(t, m) for t, m in present if m < keep_from]
    verified = retention.verified_pairs(target, candidates)
    by_name = {t.name: t for t in tables}
    out = []
    for d in retention.decide(present, verified, today, retention_months):
        t = by_name[d.table]
        if d.verdict is retention.Verdict.KEEP_RECENT:
            out.append(RetentionOutcome(d.table, d.month, d.verdict, -1, False))
            continue
        rows = warm.count_rows(t, d.month)
        if not d.drop:
            out.append(RetentionOutcome(d.table, d.month, d.verdict, rows, False))
            continue
        out.append(_drop_if_archived(warm, target, t, d.month, rows, dry_run, progress, options))
    return out


def _drop_if_archived(
    warm: WarmStore,
    target: Target,
    table: Table,
    month: Month,
    rows: int,
    dry_run: bool,
    progress: Progress,
    options: ExportOptions,
) -> RetentionOutcome:
    """Drop a verified old month once its warm rows equal the archive's (re-exporting first
    when they do not)."""
    Verdict = retention.Verdict
    differs = _difference(warm, target, table, month, progress)
    reexported = False
    if differs is not None:
        if dry_run:
            return RetentionOutcome(table.name, month, Verdict.REEXPORT, rows, False, detail=differs)
        try:
            export_month(warm, target, table, month, options, progress=progress)
            verify_month(target, table.name, month, progress=progress)
        except (ArchiveError, StoreError) as exc:
            return RetentionOutcome(table.name, month, Verdict.KEEP_DIFFERS, rows, False, detail=f"{differs}; {exc}")
        reexported = True
        progress.note(f"warm {table.name} {month}: exported again ({differs})")
        still = _difference(warm, target, table, month, progress)
        if still is not None:
            return RetentionOutcome(
                table.name, month, Verdict.KEEP_DIFFERS, rows, False, True, f"rows keep arriving: {still}"
            )
    if dry_run:
        return RetentionOutcome(table.name, month, Verdict.DROP, rows, False)
    warm.drop_month(table, month)
    progress.note(f"warm {table.name} {month}: dropped {rows:,} rows (archive verified, same rows)")
    return RetentionOutcome(table.name, month, Verdict.DROP, rows, True, reexported)


def _difference(warm: WarmStore, target: Target, table: Table, month: Month, progress: Progress) -> str | None:
    """How the warm month differs from its archive (``None``: the same rows)."""
    manifest = catalog.read_month_manifest(target, table.name, month)
    if manifest is None:
        return "not archived"
    acc = ChecksumAccumulator(table)
    task = progress.task(f"checksum warm {table.name} {month}", manifest.total_rows, "rows")
    try:
        for batch in warm.batches(table, month):
            acc.add(batch)
            task.advance(batch.num_rows)
    finally:
        task.done()
    got = acc.result()
    if manifest.content_checksum is None:
        return "the archive's manifest predates content checksums"
    if (got.rows, got.hex()) != (manifest.total_rows, manifest.content_checksum):
        return (
            f"warm {got.rows:,} rows, checksum {got.hex()}; archive {manifest.total_rows:,} rows, "
            f"checksum {manifest.content_checksum}"
        )
    return None


def restore_to_warm(
    target: Target, warm: WarmStore, table: Table, month: Month, *, progress: Progress = NO_PROGRESS
) -> RestoreResult:
    """``archive restore`` of one (table, month) into the warm store, then compress the
    restored days (TimescaleDB). Idempotent: restoring twice inserts nothing."""
    before = set(warm.inserted_days)
    result = restore_month(target, warm, table, month, progress=progress)
    for name, day in sorted(warm.inserted_days - before):
        if name == table.name:
            warm.compress_day(table, day)
    return result
