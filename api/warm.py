"""Queries against the warm tier (TimescaleDB or plain PostgreSQL), read-only role.

Both dialects share table and column names; the rollups ``trades_1m`` (a continuous
aggregate or a table) have the same columns. Timestamps are selected as integer µs,
strings compared and sorted byte-wise (``COLLATE "C"``, the order QuestDB and polars use).

Row pages are read with ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` (values bound by
psycopg, parsed by Arrow: ``api.warm_copy``) when ``use_copy``; if COPY fails where the
same query then succeeds as a plain SELECT (a server without COPY TO STDOUT), COPY is
switched off for this reader and the plain, binary-cursor path is used from then on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from tickarchive.api import frames, predicates
from tickarchive.api.errors import StoreUnavailable
from tickarchive.api.params import InstrumentMatch
from tickarchive.api.pool import Pool
from tickarchive.api.timefmt import to_dt
from tickarchive.api.warm_columns import Undecodable, decode, page_sql
from tickarchive.api.warm_copy import CopyUnreadable, parse_binary_fixed, parse_csv
from tickarchive.tables import ColumnType, Table

ROLLED_STATUSES = ("verified", "dropped", "delta_loading", "delta_verified", "delta_mismatch")
"""``rollover_ledger.status`` values (``store.rollover.Status``) meaning: the warm tier holds the
day, verified (``verified``), or QuestDB's partition of it was already dropped (the rest)."""


FAILED_STATUSES = ("mismatch", "delta_mismatch", "failed")
"""``rollover_ledger.status`` values counted by ``tickarchive_rollover_failures_total``."""


def _us(expr: str) -> str:
    return f"(extract(epoch FROM {expr}) * 1000000)::bigint"


def _select(table: Table, columns: Sequence[str]) -> str:
    out = []
    for c in columns:
        if table.column(c).type is ColumnType.TIMESTAMP:
            out.append(f'{_us(chr(34) + c + chr(34))} AS "{c}"')
        else:
            out.append(f'"{c}"')
    return ", ".join(out)


def _order(table: Table, keys: Sequence[str]) -> str:
    out = []
    for k in keys:
        t = table.column(k).type
        out.append(f'"{k}" COLLATE "C"' if t in (ColumnType.SYMBOL, ColumnType.VARCHAR) else f'"{k}"')
    return ", ".join(out)


def _where(
    lo_us: int, hi_us: int, match: InstrumentMatch | None, eq: Mapping[str, Any], *, hi_inclusive: bool = False
) -> tuple[str, list[Any]]:
    return predicates.where(lo_us, hi_us, match, eq, quote=predicates.double_quoted, hi_inclusive=hi_inclusive)


log = logging.getLogger(__name__)

SPLIT_MIN_ROWS = 50_000
"""Row pages of at least this limit are read as two halves at once (``WarmReader._column_page``).
PostgreSQL spends ~0.1 µs per value producing the page (the ``*send`` functions): for a
100k-row instrument-day of 5 doubles two backends finish in ~47 ms instead of ~66 ms on
2 cores. The cost: when the first half alone fills the page, the second half was read for
nothing (so small pages, the default 10,000 rows, are never split)."""

_BINARY_KIND = {
    ColumnType.TIMESTAMP: "timestamptz",
    ColumnType.DOUBLE: "float8",
    ColumnType.LONG: "int8",
    ColumnType.INT: "int4",
}
"""Column types a fixed-width binary COPY row page can carry (``api.warm_copy``)."""


def _binary_select(table: Table, columns: Sequence[str]) -> str:
    """Select list for ``parse_binary_fixed``: timestamps raw (µs since 2000 in binary), NULL
    doubles as NaN (read back as null) so every row has the same width; a NULL integer or
    timestamp makes the parse return None (then the CSV path answers)."""
    out = []
    for c in columns:
        if table.column(c).type is ColumnType.DOUBLE:
            out.append(f'coalesce("{c}", \'NaN\'::float8) AS "{c}"')
        else:
            out.append(f'"{c}"')
    return ", ".join(out)


class WarmReader:
    def __init__(self, pool: Pool, *, use_copy: bool = True, use_columns: bool = True) -> None:
        self.pool = pool
        self.use_copy = use_copy
        self.use_columns = use_columns

    def rows(
        self,
        table: Table,
        columns: Sequence[str],
        lo_us: int,
        hi_us: int,
        match: InstrumentMatch | None,
        eq: Mapping[str, Any],
        limit: int,
    ) -> pl.DataFrame:
        where, params = _where(lo_us, hi_us, match, eq)
        fixed = match.column if match is not None and match.exact is not None else None
        fetch = frames.without_fixed(columns, fixed)
        order = _order(table, frames.order_keys(table, fixed))
        exact = match.exact if match else None
        columns_failed: Exception | None = None
        if self.use_columns:
            try:
                frame = self._column_page(table, fetch, lo_us, hi_us, match, eq, order, fixed, limit)
            except (StoreUnavailable, Undecodable) as exc:
                columns_failed = exc
            else:
                return frames.with_fixed(frame, columns, fixed, exact)
        frame = self._copy_or_select(table, fetch, where, order, [*params, limit])
        if columns_failed is not None:
            log.warning("warm column page failed where COPY/SELECT works; not using it: %s", columns_failed)
            self.use_columns = False
        return frames.with_fixed(frame, columns, fixed, exact)

    def _column_page(
        self,
        table: Table,
        fetch: Sequence[str],
        lo_us: int,
        hi_us: int,
        match: InstrumentMatch | None,
        eq: Mapping[str, Any],
        order: str,
        fixed: str | None,
        limit: int,
    ) -> pl.DataFrame:
        """The page via ``api.warm_columns``; a page of ``SPLIT_MIN_ROWS`` or more is read as
        the two halves of [lo, hi), each with the page's limit, on two connections at once
        (``Pool.fetch_many``: one after the other when the pool has no free slot), then
        concatenated (the halves are disjoint and in time order) and cut to ``limit``."""
        ranges = [(lo_us, hi_us)]
        if limit >= SPLIT_MIN_ROWS and hi_us - lo_us >= 2:
            mid = lo_us + (hi_us - lo_us) // 2
            ranges = [(lo_us, mid), (mid, hi_us)]
        statements = []
        for lo, hi in ranges:
            where, params = _where(lo, hi, match, eq)
            statements.append((page_sql(table, fetch, where, order), [*params, limit]))
        keys = frames.order_keys(table, fixed)
        parts = [decode(table, fetch, keys, rows[0]) for rows in self.pool.fetch_many(statements, binary=True)]
        return parts[0] if len(parts) == 1 else pl.concat(parts).head(limit)

    def _copy_or_select(
        self, table: Table, fetch: Sequence[str], where: str, order: str, params: list[Any]
    ) -> pl.DataFrame:
        """The page by COPY (binary for fixed-width columns, else CSV) or a plain SELECT."""
        sql = f'SELECT {_select(table, fetch)} FROM "{table.name}" WHERE {where} ORDER BY {order} LIMIT %s'
        schema = frames.schema(table, fetch)
        copy_failed: Exception | None = None
        if self.use_copy and all(table.column(c).type in _BINARY_KIND for c in fetch):
            binary_sql = (
                f'SELECT {_binary_select(table, fetch)} FROM "{table.name}" WHERE {where} ORDER BY {order} LIMIT %s'
            )
            try:
                data = self.pool.copy_out(f"COPY ({binary_sql}) TO STDOUT (FORMAT binary)", params)
                fixed_frame = parse_binary_fixed(data, {c: _BINARY_KIND[table.column(c).type] for c in fetch})
            except StoreUnavailable as exc:
                log.warning("warm binary COPY failed, trying CSV: %s", exc)
            else:
                if fixed_frame is not None:
                    return fixed_frame
        if self.use_copy:
            try:
                frame = parse_csv(self.pool.copy_out(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params), schema)
            except (StoreUnavailable, CopyUnreadable) as exc:
                copy_failed = exc
            else:
                return frame
        frame = frames.from_rows(self.pool.fetch(sql, params, binary=True), schema)
        if copy_failed is not None:
            log.warning("warm COPY TO STDOUT failed where SELECT works; not using COPY: %s", copy_failed)
            self.use_copy = False
        return frame

    def latest(
        self,
        table: Table,
        columns: Sequence[str],
        lo_us: int,
        at_us: int,
        match: InstrumentMatch | None,
        partition_by: str,
    ) -> pl.DataFrame:
        where, params = _where(lo_us, at_us, match, {}, hi_inclusive=True)
        sql = (
            f'SELECT DISTINCT ON ("{partition_by}") {_select(table, columns)} FROM "{table.name}" '
            f'WHERE {where} ORDER BY "{partition_by}", ts DESC'
        )
        return frames.from_rows(self.pool.fetch(sql, params), frames.schema(table, columns))

    def minute_bars(self, instrument: str, lo_us: int, hi_us: int, minutes: int = 1) -> pl.DataFrame:
        """Bars of ``minutes`` (aligned to the epoch) folded from the ``trades_1m`` rollup in the
        database, so a month of hourly bars transfers 744 rows, not 44,640."""
        sql = (
            f"SELECT {_us('b')}, (array_agg(open ORDER BY bucket))[1], max(high), min(low), "
            "(array_agg(close ORDER BY bucket DESC))[1], sum(volume), sum(buy_volume), sum(sell_volume), "
            "sum(trade_count)::bigint, sum(vwap * volume) FROM ("
            "SELECT date_bin(%s::interval, bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b, * FROM trades_1m "
            "WHERE instrument = %s AND bucket >= %s AND bucket < %s) s GROUP BY b ORDER BY b"
        )
        rows = self.pool.fetch(sql, [f"{minutes} minutes", instrument, to_dt(lo_us), to_dt(hi_us)], binary=True)
        return frames.from_rows(rows, frames.BARS_SCHEMA)

    def last_snapshot_ts(self, instrument: str, lo_us: int, at_us: int) -> int | None:
        sql = (
            f"SELECT {_us('max(ts)')} FROM book_changes WHERE instrument = %s AND is_snapshot AND ts >= %s AND ts <= %s"
        )
        rows = self.pool.fetch(sql, [instrument, to_dt(lo_us), to_dt(at_us)])
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def rolled_days(self, table: str, first: dt.date, last: dt.date) -> set[dt.date]:
        sql = "SELECT day FROM rollover_ledger WHERE table_name = %s AND day >= %s AND day <= %s AND status = ANY(%s)"
        return {r[0] for r in self.pool.fetch(sql, [table, first, last, list(ROLLED_STATUSES)])}

    def has_rows(self, table: Table, lo_us: int, hi_us: int) -> bool:
        sql = f'SELECT EXISTS (SELECT 1 FROM "{table.name}" WHERE ts >= %s AND ts < %s)'
        rows = self.pool.fetch(sql, [to_dt(lo_us), to_dt(hi_us)])
        return bool(rows and rows[0][0])

    def coverage_daily(
        self, tables: Sequence[str], first: dt.date, last: dt.date, match: InstrumentMatch | None, limit: int
    ) -> pl.DataFrame:
        """Rows of ``coverage_daily`` (at most ``limit``)."""
        parts = ["day >= %s", "day <= %s", "table_name = ANY(%s)"]
        params: list[Any] = [first, last, list(tables)]
        if match is not None:
            parts.append("instrument = %s" if match.exact else "instrument ~ %s")
            params.append(match.exact or match.regex)
        sql = (
            "SELECT day, instrument, table_name, rows, trade_seq_min, trade_seq_max, trade_seq_missing, gap_seconds "
            f"FROM coverage_daily WHERE {' AND '.join(parts)} ORDER BY day, table_name, instrument LIMIT %s"
        )
        params.append(limit)
        return frames.from_rows(self.pool.fetch(sql, params), COVERAGE_SCHEMA)

    def ledger_summary(self) -> tuple[float | None, dt.date | None, int]:
        """(last successful rollover as unix time, newest rolled day, ledger rows that failed verification)."""
        sql = (
            "SELECT extract(epoch FROM max(loaded_at) FILTER (WHERE status = ANY(%s)))::float8, "
            "max(day) FILTER (WHERE status = ANY(%s)), count(*) FILTER (WHERE status = ANY(%s)) FROM rollover_ledger"
        )
        row = self.pool.fetch(sql, [list(ROLLED_STATUSES), list(ROLLED_STATUSES), list(FAILED_STATUSES)])[0]
        return row[0], row[1], int(row[2])

    def instrument_known(self, name: str) -> bool:
        """Has the warm store ever held ``name`` (its instruments rows, or a coverage row of
        a rolled-over day: those outlive warm retention)?"""
        rows = self.pool.fetch(
            "SELECT EXISTS (SELECT 1 FROM instruments WHERE instrument = %s) "
            "OR EXISTS (SELECT 1 FROM coverage_daily WHERE instrument = %s)",
            [name, name],
        )
        return bool(rows and rows[0][0])

    def job_failures(self, jobs: Sequence[str]) -> int:
        """Failed runs of ``jobs`` recorded in ``job_runs`` (``store.job_runs``)."""
        rows = self.pool.fetch("SELECT count(*) FROM job_runs WHERE job = ANY(%s) AND status = 'failed'", [list(jobs)])
        return int(rows[0][0])

    def database_bytes(self) -> int:
        return int(self.pool.fetch("SELECT pg_database_size(current_database())")[0][0])

    def ping(self) -> None:
        self.pool.fetch("SELECT 1")


COVERAGE_SCHEMA: dict[str, Any] = {
    "day": pl.Date,
    "instrument": pl.String,
    "table_name": pl.String,
    "rows": pl.Int64,
    "trade_seq_min": pl.Int64,
    "trade_seq_max": pl.Int64,
    "trade_seq_missing": pl.Int64,
    "gap_seconds": pl.Float64,
}
