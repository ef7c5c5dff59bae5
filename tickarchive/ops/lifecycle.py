"""Lifecycle jobs: warm-tier retention and restoring an archived month into the warm store.

Warm retention drops a (table, month) of the warm store only when the archive's decision
function (``archive.retention.decide``) says so: the month is older than
``lifecycle.warm_retention_months`` **and** its archive (the current manifest) has a
passing verify record at the target. TimescaleDB drops the month's chunks with
``drop_chunks``; plain PostgreSQL drops the month's daily partitions
(``tickarchive.store.warm.WarmStore.drop_month``). The rollups
(``trades_1m``/``quotes_1m``), ``coverage_daily`` and ``rollover_ledger`` are kept: they
are small and are the long-term summary of what was archived.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from tickarchive.archive import retention
from tickarchive.archive.restore import RestoreResult, restore_month
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.progress import NO_PROGRESS, Progress
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


def warm_retention(
    warm: WarmStore,
    target: Target,
    today: dt.date,
    retention_months: int,
    *,
    tables: Sequence[Table] = ARCHIVED_TABLES,
    dry_run: bool = False,
    progress: Progress = NO_PROGRESS,
) -> list[RetentionOutcome]:
    """Decide per (table, month) held in the warm store and drop what may go (unless dry run)."""
    present = [(t.name, m) for t in tables for m in warm.stored_months(t)]
    keep_from = retention.oldest_kept_month(today, retention_months)
    candidates = [(t, m) for t, m in present if m < keep_from]
    verified = retention.verified_pairs(target, candidates)
    by_name = {t.name: t for t in tables}
    out = []
    for d in retention.decide(present, verified, today, retention_months):
        t = by_name[d.table]
        rows = warm.count_rows(t, d.month) if d.verdict is not retention.Verdict.KEEP_RECENT else -1
        dropped = False
        if d.drop and not dry_run:
            warm.drop_month(t, d.month)
            dropped = True
            progress.note(f"warm {d.table} {d.month}: dropped {rows:,} rows (archive verified)")
        out.append(RetentionOutcome(d.table, d.month, d.verdict, rows, dropped))
    return out


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
