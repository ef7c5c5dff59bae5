"""Lifecycle glue: warm-tier retention, and opening the hot and warm stores from the settings.

Warm retention drops a (table, month) of the warm store only when the archive's decision
function (``archive.retention.decide``) says so: the month is older than
``lifecycle.warm_retention_months`` **and** its archive (the current manifest) has a
passing verify record at the target. TimescaleDB drops the month's chunks with
``drop_chunks``; plain PostgreSQL drops the month's daily partitions. The rollups
(``trades_1m``/``quotes_1m``), ``coverage_daily`` and ``rollover_ledger`` are kept: they
are small and are the long-term summary of what was archived.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from tickarchive.archive import retention
from tickarchive.archive.restore import RestoreResult, restore_month
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.settings import Settings
from tickarchive.store.hot import HotStore
from tickarchive.store.stack.status import Dialect
from tickarchive.store.warm_load import WarmStore
from tickarchive.tables import GAPS, MARKET_TABLES, Table

ARCHIVED_TABLES: tuple[Table, ...] = (*MARKET_TABLES, GAPS)
"""The tables the archive exports (``archive export``'s default): only they can verify."""
_PART_RE = re.compile(r"_(\d{4})(\d{2})(\d{2})$")


@dataclass(frozen=True, slots=True)
class RetentionOutcome:
    table: str
    month: Month
    verdict: retention.Verdict
    rows: int
    dropped: bool


def _month_bounds(m: Month) -> tuple[dt.datetime, dt.datetime]:
    a, b = m.first_day, m.plus(1).first_day
    return (dt.datetime(a.year, a.month, 1, tzinfo=dt.UTC), dt.datetime(b.year, b.month, 1, tzinfo=dt.UTC))


def _partitions(warm: WarmStore, table: Table) -> list[tuple[str, dt.date]]:
    rows = warm._exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (table.name,),
        f"{table.name}: list partitions",
    )
    out = []
    for (name,) in rows:
        m = _PART_RE.search(str(name))
        if m:
            out.append((str(name), dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))))
    return sorted(out, key=lambda p: p[1])


def warm_months(warm: WarmStore, table: Table) -> list[Month]:
    """Months of ``table`` the warm store holds storage for (chunks or daily partitions)."""
    if warm.dialect is Dialect.TIMESCALEDB:
        rows = warm._exec(
            "SELECT DISTINCT (range_start AT TIME ZONE 'UTC')::date FROM timescaledb_information.chunks "
            "WHERE hypertable_name = %s",
            (table.name,),
            f"{table.name}: list chunks",
        )
        return sorted({Month.of(r[0]) for r in rows})
    return sorted({Month.of(d) for _, d in _partitions(warm, table)})


def _count_month(warm: WarmStore, table: Table, m: Month) -> int:
    lo, hi = _month_bounds(m)
    return int(warm._exec(f'SELECT count(*) FROM "{table.name}" WHERE ts >= %s AND ts < %s', (lo, hi), "count")[0][0])


def drop_month(warm: WarmStore, table: Table, m: Month) -> None:
    lo, hi = _month_bounds(m)
    if warm.dialect is Dialect.TIMESCALEDB:
        warm._exec(
            "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz, newer_than => %s::timestamptz)",
            (table.name, hi, lo),
            f"{table.name} {m}: drop_chunks",
        )
        return
    for name, day in _partitions(warm, table):
        if Month.of(day) == m:
            warm._exec(f'DROP TABLE IF EXISTS "{name}"', None, f"drop partition {name}")
    warm.forget_partitions()


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
    present = [(t.name, m) for t in tables for m in warm_months(warm, t)]
    keep_from = retention.oldest_kept_month(today, retention_months)
    candidates = [(t, m) for t, m in present if m < keep_from]
    verified = retention.verified_pairs(target, candidates)
    by_name = {t.name: t for t in tables}
    out = []
    for d in retention.decide(present, verified, today, retention_months):
        t = by_name[d.table]
        rows = _count_month(warm, t, d.month) if d.verdict is not retention.Verdict.KEEP_RECENT else -1
        dropped = False
        if d.drop and not dry_run:
            drop_month(warm, t, d.month)
            dropped = True
            progress.note(f"warm {d.table} {d.month}: dropped {rows:,} rows (archive verified)")
        out.append(RetentionOutcome(d.table, d.month, d.verdict, rows, dropped))
    return out


def open_hot(settings: Settings) -> HotStore:
    q = settings.questdb
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(host=q.host, port=q.pg_port, user=q.user, password=q.password, dbname="qdb", sslmode="disable")
    return HotStore(dsn, f"http://{q.host}:{q.http_port}", user=q.user, password=q.password)


def detect_warm(dsn: str) -> tuple[Dialect, bool]:
    """(dialect recorded by the migrations, whether the server is the PGlite test server)."""
    import psycopg

    from tickarchive.store.errors import WarmLoadError
    from tickarchive.store.migrate import migrated_dialect

    try:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
            dialect = migrated_dialect(conn)
            row = conn.execute("SELECT version()").fetchone()
    except psycopg.Error as exc:
        raise WarmLoadError(f"cannot reach the warm store: {exc}") from exc
    if dialect is None:
        raise WarmLoadError("the warm store is not migrated: run `tickarchive migrate` first")
    version = str(row[0]) if row else ""
    return dialect, is_pglite_version(version)


def is_pglite_version(version: str) -> bool:
    """PGlite (PostgreSQL compiled to WebAssembly) reports its emscripten toolchain."""
    v = version.lower()
    return "emscripten" in v or "wasm" in v or "emcc" in v


def open_warm(settings: Settings, dsn: str | None = None) -> WarmStore:
    """The warm store as its owner (the rollover compresses chunks and refreshes aggregates)."""
    from tickarchive.store.stack.postgres import warm_dsns

    url = dsn or warm_dsns(settings.postgres).owner
    dialect, pglite = detect_warm(url)
    return WarmStore(url, dialect, pglite=pglite)


class WarmSink:
    """``archive.source.ArchiveSink`` on the rollover's loader (COPY on plain PostgreSQL,
    multi-row INSERT on PGlite; idempotent through the dedup indexes). Rows are split by
    UTC day so each day's partition exists before its rows go in."""

    def __init__(self, warm: WarmStore) -> None:
        self.warm = warm
        self.days: set[tuple[str, dt.date]] = set()

    def insert(self, table: Table, batch: pa.RecordBatch) -> int:
        if batch.num_rows == 0:
            return 0
        days = pc.cast(batch.column("ts"), pa.date32())
        inserted = 0
        for day in sorted(set(days.to_pylist())):
            part = batch.filter(pc.equal(days, pa.scalar(day, pa.date32())))
            inserted += self.warm.load(table, part, day)
            self.days.add((table.name, day))
        return inserted

    def count_rows(self, table: Table, month: Month) -> int:
        return _count_month(self.warm, table, month)


def restore_to_warm(
    target: Target, warm: WarmStore, table: Table, month: Month, *, progress: Progress = NO_PROGRESS
) -> RestoreResult:
    """``archive restore`` of one (table, month) into the warm store, then compress the
    restored days (TimescaleDB). Idempotent: restoring twice inserts nothing."""
    sink = WarmSink(warm)
    result = restore_month(target, sink, table, month, progress=progress)
    for _, day in sorted(sink.days):
        warm.compress_day(table, day)
    return result
