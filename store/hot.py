"""Reading a day out of QuestDB (the hot store), and its partitions.

Two ways to stream one (table, day) as Arrow batches in the schema of
``tickarchive.rows.arrow_schema`` (timestamps ``timestamp[us, UTC]``):

* ``auto`` (the default): ``parquet`` for tables without VARCHAR columns (quotes,
  book_changes, index_ticks, instruments, heartbeats: the bulk of the data), ``pg`` for
  tables with one (trades, gaps), because of the QuestDB bug below.
* ``pg``: the PG wire protocol with a binary psycopg cursor, rows fetched
  in batches (QuestDB has no ``DECLARE CURSOR``; the server streams the result as it is
  read), timestamps selected as integer microseconds.
* ``parquet``: ``GET /exp?fmt=parquet`` over HTTP. QuestDB 9.3.4 serves the query result
  as one Parquet file; it is streamed to a temporary file (never held in memory whole)
  and read back in batches. It is about 4x faster for quotes, but 9.3.4 returns NULL for a VARCHAR
  column whose exported values are all short (<= 9 bytes, which QuestDB stores inline):
  a day of numeric trade ids such as ``"123456789"`` comes back as NULLs
  (``tests/store/test_rollover.py`` pins it), so it is never used for VARCHAR tables
  by default.

``tickarchive bench rollover`` measures both; see docs/lifecycle.md for the figures. The
HTTP side is ``tickarchive.store.questdb_http`` (the one ``/exp`` client).
"""

from __future__ import annotations

import datetime as dt
import enum
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg.conninfo import make_conninfo

from tickarchive import rows
from tickarchive.settings import Settings
from tickarchive.store.errors import ExportFailed, HotReadError
from tickarchive.store.questdb_http import QuestDBHttp
from tickarchive.store.seal import US_PER_DAY, day_start_us, iso_us
from tickarchive.tables import ColumnType, Table

BATCH_ROWS = 65_536


class HotReader(enum.StrEnum):
    AUTO = "auto"
    """Parquet for tables without VARCHAR columns (quotes, book_changes, ...), else PG wire."""
    PARQUET = "parquet"
    PG = "pg"


def resolve(reader: HotReader, table: Table) -> HotReader:
    """The reader actually used for ``table`` (AUTO avoids /exp for VARCHAR columns)."""
    if reader is not HotReader.AUTO:
        return reader
    has_varchar = any(c.type is ColumnType.VARCHAR for c in table.columns)
    return HotReader.PG if has_varchar else HotReader.PARQUET


@dataclass(frozen=True, slots=True)
class HotPartition:
    table: str
    day: dt.date
    rows: int
    disk_bytes: int


def _day_filter(day: dt.date) -> str:
    start = day_start_us(day)
    return f"ts >= '{iso_us(start)}' AND ts < '{iso_us(start + US_PER_DAY)}'"


def _conform(table: Table, schema: pa.Schema, columns: list[pa.Array]) -> pa.RecordBatch:
    out = []
    for field, col, array in zip(schema, table.columns, columns, strict=True):
        if col.type is ColumnType.TIMESTAMP and not pa.types.is_timestamp(array.type):
            array = array.cast(pa.int64()).cast(field.type)
        out.append(array if array.type == field.type else array.cast(field.type))
    return pa.RecordBatch.from_arrays(out, schema=schema)


class HotStore:
    """A QuestDB server: PG wire (``pg_dsn``) for SQL, HTTP (``http_url``) for /exp."""

    def __init__(self, pg_dsn: str, http_url: str, *, user: str | None = None, password: str | None = None) -> None:
        self.pg_dsn = pg_dsn
        self.http_url = http_url.rstrip("/")
        self._auth = (user, password) if user and password else None
        self._http = QuestDBHttp(self.http_url, self._auth, timeout_s=600)
        try:
            self.conn: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(pg_dsn, autocommit=True)
        except psycopg.Error as exc:
            raise HotReadError(f"cannot connect to QuestDB at {pg_dsn}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()
        self._http.close()

    def __enter__(self) -> HotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            cur = self.conn.execute(sql)
            return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            raise HotReadError(f"QuestDB query failed: {sql[:120]}: {exc}") from exc

    def count(self, table: Table, day: dt.date) -> int:
        return int(self._query(f"SELECT count() FROM {table.name} WHERE {_day_filter(day)}")[0][0])

    def partitions(self, table: Table) -> list[HotPartition]:
        rows_ = self._query(f"SELECT name, numRows, diskSize FROM table_partitions('{table.name}')")
        out = []
        for name, n, size in rows_:
            try:
                day = dt.date.fromisoformat(str(name)[:10])
            except ValueError:
                continue
            out.append(HotPartition(table.name, day, int(n), int(size)))
        return sorted(out, key=lambda p: p.day)

    def drop_partition(self, table: Table, day: dt.date) -> None:
        """``ALTER TABLE t DROP PARTITION LIST 'YYYY-MM-DD'``, then wait until it is applied."""
        self._query(f"ALTER TABLE {table.name} DROP PARTITION LIST '{day.isoformat()}'")
        self.wait_applied()

    def wait_applied(self, timeout_s: float = 60.0) -> None:
        """Wait until every WAL table has applied its committed transactions."""
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            rows_ = self._query("SELECT name, suspended, writerTxn, sequencerTxn FROM wal_tables()")
            suspended = [r[0] for r in rows_ if r[1]]
            if suspended:
                raise HotReadError(f"QuestDB WAL table(s) suspended: {', '.join(map(str, suspended))}")
            if all(r[2] >= r[3] for r in rows_):
                return
            if time.monotonic() > deadline:
                raise HotReadError(f"QuestDB WAL not applied after {timeout_s} s")
            time.sleep(0.05)

    def batches(self, table: Table, day: dt.date, reader: HotReader = HotReader.AUTO) -> Iterator[pa.RecordBatch]:
        if resolve(reader, table) is HotReader.PARQUET:
            return self._parquet_batches(table, day)
        return self._pg_batches(table, day)

    def _select(self, table: Table, day: dt.date, *, micros: bool) -> str:
        cols = ", ".join(
            f"cast({c.name} AS long) {c.name}" if micros and c.type is ColumnType.TIMESTAMP else c.name
            for c in table.columns
        )
        return f"SELECT {cols} FROM {table.name} WHERE {_day_filter(day)}"

    def _pg_batches(self, table: Table, day: dt.date) -> Iterator[pa.RecordBatch]:
        schema = rows.arrow_schema(table)
        types = [
            pa.int64() if c.type is ColumnType.TIMESTAMP else f.type
            for c, f in zip(table.columns, schema, strict=True)
        ]
        try:
            with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
                cur = conn.cursor(binary=True)
                cur.execute(self._select(table, day, micros=True))
                while chunk := cur.fetchmany(BATCH_ROWS):
                    cols = list(zip(*chunk, strict=True))
                    yield _conform(table, schema, [pa.array(v, t) for v, t in zip(cols, types, strict=True)])
        except psycopg.Error as exc:
            raise HotReadError(f"{table.name} {day}: PG-wire export failed: {exc}") from exc

    def _parquet_batches(self, table: Table, day: dt.date) -> Iterator[pa.RecordBatch]:
        schema = rows.arrow_schema(table)
        with tempfile.TemporaryDirectory(prefix="tickarchive-exp-") as tmp:
            path = Path(tmp) / f"{table.name}.parquet"
            try:
                self._http.to_file(self._select(table, day, micros=False), path)
            except ExportFailed as exc:
                raise HotReadError(f"{table.name} {day}: {exc}") from exc
            try:
                pf = pq.ParquetFile(path)
                for b in pf.iter_batches(batch_size=BATCH_ROWS, columns=list(schema.names)):
                    yield _conform(table, schema, list(b.columns))
            except (pa.ArrowException, OSError) as exc:
                raise HotReadError(f"{table.name} {day}: unreadable Parquet from /exp: {exc}") from exc


def open_hot(settings: Settings) -> HotStore:
    """The QuestDB of the settings (PG wire as ``questdb.user``, HTTP for ``/exp``)."""
    q = settings.questdb
    dsn = make_conninfo(host=q.host, port=q.pg_port, user=q.user, password=q.password, dbname="qdb", sslmode="disable")
    return HotStore(dsn, f"http://{q.host}:{q.http_port}", user=q.user, password=q.password)
