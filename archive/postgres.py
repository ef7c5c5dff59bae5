"""PostgreSQL / TimescaleDB implementations of ``ArchiveSource`` and ``ArchiveSink``.

For the warm store's tables (``store/sql``: columns of ``tickarchive.tables``, timestamptz
``ts``, a unique index on the dedup keys). Works on both warm dialects.

* ``PostgresSource`` streams a month through a server-side cursor ordered by
  ``(segment_by COLLATE "C", ts)`` (byte order, what the archive writer checks), with
  timestamps fetched as integer microseconds so nothing is lost or re-zoned.
* ``PostgresSink`` inserts a batch with one ``INSERT ... SELECT FROM unnest(arrays) ON
  CONFLICT DO NOTHING`` (idempotent through the dedup index; no COPY, so it also runs on
  the PGlite TimescaleDB test server), after ``tickarchive_ensure_partition`` for each
  day in the batch (plain dialect: daily partitions must exist).
psycopg errors become ``SourceError``/``SinkError``.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from tickarchive import rows
from tickarchive.archive.errors import SinkError, SourceError
from tickarchive.months import Month
from tickarchive.tables import STAGING_PG_TYPE, ColumnType, Table

_PG_ARRAY: dict[ColumnType, str] = {k: f"{v}[]" for k, v in STAGING_PG_TYPE.items()}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ts(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _select_list(table: Table) -> sql.Composed:
    parts: list[sql.Composable] = []
    for c in table.columns:
        ident = sql.Identifier(c.name)
        if c.type is ColumnType.TIMESTAMP:
            parts.append(sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint").format(ident))
        else:
            parts.append(ident)
    return sql.SQL(", ").join(parts)


class PostgresSource:
    """``use_copy``: stream with ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` parsed by
    Arrow's CSV reader (fast); otherwise a server-side cursor (``batch_rows`` per fetch)."""

    def __init__(self, dsn: str, *, batch_rows: int = 50_000, use_copy: bool = True) -> None:
        self.dsn = dsn
        self.batch_rows = batch_rows
        self.use_copy = use_copy

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.dsn)
        except psycopg.Error as exc:
            raise SourceError(f"cannot connect to the warm store: {exc}") from exc

    def count_rows(self, table: Table, month: Month) -> int:
        q = sql.SQL("SELECT count(*) FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(table.name))
        try:
            with self._connect() as conn:
                row = conn.execute(q, (_ts(month.start_us), _ts(month.end_us))).fetchone()
        except psycopg.Error as exc:
            raise SourceError(f"{table.name} {month}: count failed: {exc}") from exc
        return int(row[0]) if row else 0

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        schema = rows.arrow_schema(table)
        q = sql.SQL('SELECT {} FROM {} WHERE ts >= %s AND ts < %s ORDER BY {} COLLATE "C", ts').format(
            _select_list(table), sql.Identifier(table.name), sql.Identifier(table.segment_by)
        )
        if self.use_copy:
            yield from self._copy_batches(table, schema, q, month)
            return
        try:
            with self._connect() as conn, conn.cursor(name=f"archive_{table.name}") as cur:
                cur.itersize = self.batch_rows
                cur.execute(q, (_ts(month.start_us), _ts(month.end_us)))
                while chunk := cur.fetchmany(self.batch_rows):
                    yield _to_batch(table, schema, chunk)
        except psycopg.Error as exc:
            raise SourceError(f"{table.name} {month}: export query failed: {exc}") from exc

    def _copy_batches(
        self, table: Table, schema: pa.Schema, query: sql.Composed, month: Month
    ) -> Iterator[pa.RecordBatch]:
        types = {
            c.name: (pa.int64() if c.type is ColumnType.TIMESTAMP else schema.field(c.name).type) for c in table.columns
        }
        read = pacsv.ReadOptions(column_names=list(schema.names), use_threads=False, block_size=1 << 22)
        convert = pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        )
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
        try:
            with self._connect() as conn, conn.cursor() as cur:
                params = (_ts(month.start_us), _ts(month.end_us))
                with cur.copy(copy_sql, params) as copy:
                    stream = _CopyStream(copy)
                    if stream.is_empty():
                        return  # no rows that month: Arrow refuses an empty CSV
                    reader = pacsv.open_csv(stream, read_options=read, convert_options=convert)
                    for batch in reader:
                        yield pa.RecordBatch.from_arrays(
                            [col.cast(f.type) for col, f in zip(batch.columns, schema, strict=True)], schema=schema
                        )
        except psycopg.Error as exc:
            raise SourceError(f"{table.name} {month}: COPY export failed: {exc}") from exc
        except pa.ArrowInvalid as exc:
            raise SourceError(f"{table.name} {month}: unexpected COPY output: {exc}") from exc

    def months(self, table: Table) -> list[Month]:
        q = sql.SQL("SELECT min(ts), max(ts) FROM {}").format(sql.Identifier(table.name))
        exists = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE ts >= %s AND ts < %s)").format(
            sql.Identifier(table.name)
        )
        try:
            with self._connect() as conn:
                row = conn.execute(q).fetchone()
                if row is None or row[0] is None:
                    return []
                m, last = Month.of(row[0].astimezone(dt.UTC).date()), Month.of(row[1].astimezone(dt.UTC).date())
                out = []
                while m <= last:
                    hit = conn.execute(exists, (_ts(m.start_us), _ts(m.end_us))).fetchone()
                    if hit and hit[0]:
                        out.append(m)
                    m = m.plus(1)
                return out
        except psycopg.Error as exc:
            raise SourceError(f"{table.name}: listing months failed: {exc}") from exc


class _CopyStream(io.RawIOBase):
    """A readable file over a psycopg ``Copy`` (for Arrow's streaming CSV reader)."""

    def __init__(self, copy: psycopg.Copy) -> None:
        self._copy = copy
        self._pending = bytearray()

    def readable(self) -> bool:
        return True

    def is_empty(self) -> bool:
        """True when the COPY produced no bytes at all (reads ahead one message)."""
        if not self._pending:
            self._pending += self._copy.read()
        return not self._pending

    def readinto(self, b: Any) -> int:
        """Fill ``b`` completely unless the stream ends (COPY yields one row per message;
        short reads would make Arrow parse row-sized blocks)."""
        view = memoryview(b).cast("B")
        want = len(view)
        pending = self._pending
        read = self._copy.read
        while len(pending) < want:
            chunk = read()
            if not chunk:
                break
            pending += chunk
        n = min(want, len(pending))
        view[:n] = pending[:n]
        del pending[:n]
        return n


def _to_batch(table: Table, schema: pa.Schema, chunk: list[tuple[Any, ...]]) -> pa.RecordBatch:
    columns = list(zip(*chunk, strict=True))
    arrays = []
    for i, field in enumerate(schema):
        if table.columns[i].type is ColumnType.TIMESTAMP:
            arrays.append(pa.array(columns[i], pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(columns[i], field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


_PG_TYPE = STAGING_PG_TYPE


class PostgresSink:
    """``use_copy``: CSV (written by Arrow) ``COPY`` into a temporary table, then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``; otherwise a single unnest INSERT
    (for the PGlite TimescaleDB test server, where COPY FROM STDIN breaks the connection),
    without server-side prepared statements (that server shares one backend between
    connections, so psycopg's per-connection statement names collide)."""

    def __init__(self, dsn: str, *, use_copy: bool = True) -> None:
        self.dsn = dsn
        self.use_copy = use_copy
        self._staging: set[str] = set()
        self._partitions: set[tuple[str, dt.date]] = set()
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=5 if use_copy else None)
        except psycopg.Error as exc:
            raise SinkError(f"cannot connect to the warm store: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PostgresSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_partitions(self, table: Table, batch: pa.RecordBatch) -> None:
        days = pc.unique(batch.column("ts").cast(pa.date32())).to_pylist()
        for day in days:
            if (table.name, day) not in self._partitions:
                self._conn.execute("SELECT tickarchive_ensure_partition(%s::regclass, %s)", (table.name, day))
                self._partitions.add((table.name, day))

    def insert(self, table: Table, batch: pa.RecordBatch) -> int:
        if batch.num_rows == 0:
            return 0
        schema = rows.arrow_schema(table)
        batch = batch.select(schema.names).cast(schema)
        names = [sql.Identifier(c.name) for c in table.columns]
        select = sql.SQL(", ").join(
            sql.SQL("timestamptz 'epoch' + u.{} * interval '1 microsecond'").format(sql.Identifier(c.name))
            if c.type is ColumnType.TIMESTAMP
            else sql.SQL("u.{}").format(sql.Identifier(c.name))
            for c in table.columns
        )
        as_ints = pa.RecordBatch.from_arrays(
            [
                col.cast(pa.int64()) if c.type is ColumnType.TIMESTAMP else col
                for c, col in zip(table.columns, batch.columns, strict=True)
            ],
            names=list(table.column_names),
        )
        try:
            self._ensure_partitions(table, batch)
            with self._conn.transaction():
                if self.use_copy:
                    staging = self._staging_table(table)
                    buf = io.BytesIO()
                    pacsv.write_csv(as_ints, buf, pacsv.WriteOptions(include_header=False))
                    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                        staging, sql.SQL(", ").join(names)
                    )
                    with self._conn.cursor() as cur, cur.copy(copy_sql) as copy:
                        copy.write(buf.getvalue())
                    q = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} AS u ON CONFLICT DO NOTHING").format(
                        sql.Identifier(table.name), sql.SQL(", ").join(names), select, staging
                    )
                    cur = self._conn.execute(q)
                else:
                    unnest = sql.SQL(", ").join(sql.SQL("%s::" + _PG_ARRAY[c.type]) for c in table.columns)
                    q = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}) ON CONFLICT DO NOTHING").format(
                        sql.Identifier(table.name), sql.SQL(", ").join(names), select, unnest, sql.SQL(", ").join(names)
                    )
                    cur = self._conn.execute(q, [col.to_pylist() for col in as_ints.columns])
        except psycopg.Error as exc:
            raise SinkError(f"{table.name}: insert of {batch.num_rows} rows failed: {exc}") from exc
        return max(cur.rowcount, 0)

    def _staging_table(self, table: Table) -> sql.Identifier:
        """A session-local temporary table with the row's columns (timestamps as µs
        integers), emptied at each commit."""
        ident = sql.Identifier(f"archive_load_{table.name}")
        if table.name not in self._staging:
            cols = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(_PG_TYPE[c.type])) for c in table.columns
            )
            self._conn.execute(
                sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(ident, cols)
            )
            self._staging.add(table.name)
        return ident

    def delete_month(self, table: Table, month: Month) -> int:
        """Delete a month's rows (benchmarks and tests on scratch databases)."""
        q = sql.SQL("DELETE FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(table.name))
        try:
            return max(self._conn.execute(q, (_ts(month.start_us), _ts(month.end_us))).rowcount, 0)
        except psycopg.Error as exc:
            raise SinkError(f"{table.name} {month}: delete failed: {exc}") from exc

    def count_rows(self, table: Table, month: Month) -> int:
        q = sql.SQL("SELECT count(*) FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(table.name))
        try:
            row = self._conn.execute(q, (_ts(month.start_us), _ts(month.end_us))).fetchone()
        except psycopg.Error as exc:
            raise SinkError(f"{table.name} {month}: count failed: {exc}") from exc
        return int(row[0]) if row else 0
