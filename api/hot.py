"""Queries against the hot tier, QuestDB over its PostgreSQL wire (bind parameters only).

Timestamps are selected as ``cast(col AS long)`` (µs since the epoch). Table and column
names come from ``tickarchive.tables`` (never from a request); every value is a bind
parameter — except on the fast path for row pages: ``QuestDBHttp`` (HTTP ``/exp``, no bind
parameters) with the values rendered by ``api.inline`` from validated inputs, used when no
fetched column is VARCHAR or BOOLEAN and no extra equality filter applies; anything else,
or a failed export, goes over the PG wire.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from tickarchive.api import frames, inline, predicates
from tickarchive.api.errors import Saturated, StoreTimeout
from tickarchive.api.params import InstrumentMatch
from tickarchive.api.pool import Pool
from tickarchive.api.timefmt import to_dt
from tickarchive.store.errors import ExportFailed
from tickarchive.store.questdb_http import QuestDBHttp
from tickarchive.tables import ColumnType, Table

log = logging.getLogger(__name__)


def _select(table: Table, columns: Sequence[str]) -> str:
    out = []
    for c in columns:
        if table.column(c).type is ColumnType.TIMESTAMP:
            out.append(f"cast({c} AS long) {c}")
        else:
            out.append(c)
    return ", ".join(out)


def _hot(match: InstrumentMatch | None) -> InstrumentMatch | None:
    """``match`` with the regex QuestDB evaluates in linear time (``params.glob_regexes``)."""
    if match is None or match.regex is None or match.atomic_regex is None:
        return match
    return dataclasses.replace(match, regex=match.atomic_regex)


def _where(
    lo_us: int, hi_us: int, match: InstrumentMatch | None, eq: Mapping[str, Any], *, hi_inclusive: bool = False
) -> tuple[str, list[Any]]:
    return predicates.where(lo_us, hi_us, _hot(match), eq, quote=predicates.plain, hi_inclusive=hi_inclusive)


def _export_select(columns: Sequence[str]) -> str:
    """Columns as stored: /exp writes a TIMESTAMP column as Parquet ``timestamp[us, UTC]``
    straight from the column's pages (``QuestDBHttp`` turns it into integer µs). A computed
    column such as ``cast(ts AS long)`` takes QuestDB 9.3.4's row-by-row export instead:
    3x slower for a 100k-row instrument-day (75 vs 24 ms here)."""
    return ", ".join(columns)


EXPORT_TYPES = frozenset({ColumnType.TIMESTAMP, ColumnType.SYMBOL, ColumnType.DOUBLE, ColumnType.LONG, ColumnType.INT})
"""Column types /exp?fmt=parquet exports faithfully (not VARCHAR: QuestDB 9.3.4 NULLs short
values; not BOOLEAN: not needed by the bulk tables)."""


def export_sql(
    table: Table, fetch: Sequence[str], lo_us: int, hi_us: int, match: InstrumentMatch | None, limit: int
) -> str:
    """The row-page query with inlined literals (``api.inline`` raises ``InlineRefused`` for
    any value it cannot render safely)."""
    parts = [f"ts >= {inline.timestamp_us(lo_us)}", f"ts < {inline.timestamp_us(hi_us)}"]
    fixed = None
    if match is not None:
        if match.exact is not None:
            fixed = match.column
            parts.append(f"{match.column} = {inline.text(match.exact)}")
        elif match.regex is not None:
            parts.append(f"{match.column} ~ {inline.text(match.hot_regex or '')}")
    order = ", ".join(frames.order_keys(table, fixed))
    return (
        f"SELECT {_export_select(fetch)} FROM {table.name} WHERE {' AND '.join(parts)} "
        f"ORDER BY {order} LIMIT {inline.integer(limit)}"
    )


def export_latest_sql(
    table: Table, columns: Sequence[str], lo_us: int, at_us: int, match: InstrumentMatch | None, partition_by: str
) -> str:
    """``HotReader.latest`` with inlined literals (``InlineRefused`` as ``export_sql``)."""
    parts = [f"ts >= {inline.timestamp_us(lo_us)}", f"ts <= {inline.timestamp_us(at_us)}"]
    if match is not None:
        if match.exact is not None:
            parts.append(f"{match.column} = {inline.text(match.exact)}")
        elif match.regex is not None:
            parts.append(f"{match.column} ~ {inline.text(match.hot_regex or '')}")
    return (
        f"SELECT {_export_select(columns)} FROM {table.name} WHERE {' AND '.join(parts)} "
        f"LATEST ON ts PARTITION BY {partition_by}"
    )


class HotReader:
    def __init__(
        self, pool: Pool, export: QuestDBHttp | None = None, *, export_concurrency: int = 2, wait_s: float = 5.0
    ) -> None:
        self.pool = pool
        self.export = export
        self._export_slots = threading.BoundedSemaphore(export_concurrency)
        self._wait_s = wait_s

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
        exact = match.exact if match else None
        if not eq and self._exportable(table, fetch):
            try:
                frame = self._export(export_sql(table, fetch, lo_us, hi_us, match, limit), frames.schema(table, fetch))
            except (inline.InlineRefused, ExportFailed) as exc:
                log.warning("hot %s page over the PG wire instead of /exp: %s", table.name, exc)
            else:
                return frames.with_fixed(frame, columns, fixed, exact)
        order = ", ".join(frames.order_keys(table, fixed))
        sql = f"SELECT {_select(table, fetch)} FROM {table.name} WHERE {where} ORDER BY {order} LIMIT %s"
        frame = frames.from_rows(self.pool.fetch(sql, [*params, limit], binary=True), frames.schema(table, fetch))
        return frames.with_fixed(frame, columns, fixed, exact)

    def latest(
        self,
        table: Table,
        columns: Sequence[str],
        lo_us: int,
        at_us: int,
        match: InstrumentMatch | None,
        partition_by: str,
    ) -> pl.DataFrame:
        """The last row per ``partition_by`` value with ``lo_us <= ts <= at_us``."""
        schema = frames.schema(table, columns)
        if self._exportable(table, columns):
            try:
                return self._export(export_latest_sql(table, columns, lo_us, at_us, match, partition_by), schema)
            except (inline.InlineRefused, ExportFailed) as exc:
                log.warning("hot %s latest over the PG wire instead of /exp: %s", table.name, exc)
        where, params = _where(lo_us, at_us, match, {}, hi_inclusive=True)
        sql = (
            f"SELECT {_select(table, columns)} FROM {table.name} WHERE {where} LATEST ON ts PARTITION BY {partition_by}"
        )
        return frames.from_rows(self.pool.fetch(sql, params, binary=True), schema)

    def _exportable(self, table: Table, columns: Sequence[str]) -> bool:
        return self.export is not None and all(table.column(c).type in EXPORT_TYPES for c in columns)

    def _export(self, sql: str, schema: dict[str, Any]) -> pl.DataFrame:
        """One ``/exp`` request, at most ``export_concurrency`` at once (``Saturated`` after
        waiting ``wait_s`` for a turn); QuestDB's own timeout (the ``Statement-Timeout``
        header) becomes ``StoreTimeout``, not a retry over the PG wire."""
        assert self.export is not None
        if not self._export_slots.acquire(timeout=self._wait_s):
            raise Saturated("QuestDB: all export slots busy; retry shortly", max(1, round(self._wait_s)))
        try:
            return self.export.frame(sql, schema)
        except ExportFailed as exc:
            if "timeout, query aborted" in str(exc):
                raise StoreTimeout("QuestDB: the query took too long") from exc
            raise
        finally:
            self._export_slots.release()

    def minute_bars(self, instrument: str, lo_us: int, hi_us: int, minutes: int = 1) -> pl.DataFrame:
        """One-minute bars (``minutes`` is ignored: hot days are few; ``api.ohlcv`` folds them)."""
        sql = (
            "SELECT cast(ts AS long) ts, first(price), max(price), min(price), last(price), sum(amount), "
            "sum(CASE WHEN direction = 'buy' THEN amount ELSE 0.0 END), "
            "sum(CASE WHEN direction = 'sell' THEN amount ELSE 0.0 END), count(), sum(price * amount) "
            "FROM trades WHERE instrument = %s AND ts >= %s AND ts < %s SAMPLE BY 1m ALIGN TO CALENDAR"
        )
        rows = self.pool.fetch(sql, [instrument, to_dt(lo_us), to_dt(hi_us)])
        return frames.from_rows(rows, frames.BARS_SCHEMA).sort("ts")

    def last_snapshot_ts(self, instrument: str, lo_us: int, at_us: int) -> int | None:
        sql = (
            "SELECT cast(max(ts) AS long) FROM book_changes "
            "WHERE instrument = %s AND is_snapshot = true AND ts >= %s AND ts <= %s"
        )
        rows = self.pool.fetch(sql, [instrument, to_dt(lo_us), to_dt(at_us)])
        value = rows[0][0] if rows else None
        return int(value) if value is not None and value > 0 else None

    def coverage(
        self, table: Table, lo_us: int, hi_us: int, match: InstrumentMatch | None, limit: int
    ) -> pl.DataFrame:
        """Per UTC day and instrument in [lo, hi): rows and, for trades, trade_seq
        min/max/distinct (at most ``limit`` rows; one statement however many days)."""
        where, params = _where(lo_us, hi_us, match, {})
        params.append(limit)
        if table.name == "trades":
            agg = "count(), min(trade_seq), max(trade_seq), count_distinct(trade_seq)"
        else:
            agg = "count(), cast(null AS long), cast(null AS long), cast(null AS long)"
        sql = (
            f"SELECT cast(timestamp_floor('d', ts) AS long) day, instrument, {agg} FROM {table.name} "
            f"WHERE {where} GROUP BY day, instrument ORDER BY day, instrument LIMIT %s"
        )
        return frames.from_rows(self.pool.fetch(sql, params), COVERAGE_RAW)

    def instrument_known(self, name: str) -> bool:
        """Does QuestDB hold any row of ``name`` (instruments or a market table)? A symbol
        QuestDB has never stored is answered from its symbol table at once."""
        for table in ("instruments", "quotes", "trades", "book_changes"):
            if self.pool.fetch(f"SELECT 1 FROM {table} WHERE instrument = %s LIMIT 1", [name]):
                return True
        return False

    def ping(self) -> None:
        self.pool.fetch("SELECT 1")


COVERAGE_RAW: dict[str, Any] = {
    "day_us": pl.Int64,
    "instrument": pl.String,
    "rows": pl.Int64,
    "seq_min": pl.Int64,
    "seq_max": pl.Int64,
    "seq_distinct": pl.Int64,
}
