"""The warm-store gateway: every read and write of the warm store goes through ``WarmStore``.

One class for both dialects (``store/sql/postgres`` and ``store/sql/timescaledb``,
``tickarchive.store.dialect``), used by the rollover, the archive (it is the archive's
``ArchiveSource`` and ``ArchiveSink``: ``tickarchive.archive.source``), the lifecycle jobs,
the drill and the benchmarks:

* **load** a day (rollover) or **insert** any batch (archive restore: split by UTC day),
  through one of the three strategies of ``store/warm_load.py`` (COPY straight in, COPY
  into a staging table then ``INSERT ... ON CONFLICT DO NOTHING``, or one ``unnest``
  INSERT on the PGlite test server). The unique dedup-key indexes make every load
  idempotent. One transaction per batch; daily partitions are made first (plain dialect).
* **compress** (TimescaleDB): ``compress_chunk`` on the day's chunk (segment by
  instrument, order by ts, per the schema); a late insert makes it partially compressed
  and the next compress finishes it. Quotes are stored as exact decimals in the
  hypertable ``quotes_data`` behind the view ``quotes`` (``store/warm_stored.py``):
  loads, chunks and retention go to the hypertable, reads to the view.
* **rollups**: ``CALL refresh_continuous_aggregate`` (TimescaleDB) or
  ``tickarchive_refresh_rollups`` (plain), for the day's window.
* **coverage_daily**: replaced for (day, table) in one transaction.
* **read back** a day (the rollover's content checksum) or **export** a month (the
  archive): a month streams through ``COPY (SELECT ...) TO STDOUT`` parsed by Arrow's CSV
  reader, ordered by ``(segment_by COLLATE "C", ts)`` (byte order, what the archive
  writer checks), timestamps as integer microseconds so nothing is re-zoned.
* **retention**: the months a table holds storage for, and dropping one (chunks or
  daily partitions).
* **ledger**: ``rollover_ledger`` rows.

Every psycopg error becomes ``WarmLoadError``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from tickarchive import rows
from tickarchive.months import Month
from tickarchive.settings import Settings
from tickarchive.store.dialect import Dialect, is_pglite_version, warm_dsns
from tickarchive.store.errors import WarmLoadError
from tickarchive.store.migrate import migrated_dialect
from tickarchive.store.warm_csv import batch_of_rows, copy_out_batches
from tickarchive.store.warm_load import load_direct, load_staged, load_unnest
from tickarchive.store.warm_stored import storage_name, stored_form
from tickarchive.tables import ColumnType, Table

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
READ_BATCH_ROWS = 50_000
EXPORT_BATCH_ROWS = 50_000
"""Rows per fetch of a month's export through a server-side cursor (``export_copy=False``)."""
_PART_RE: Final = re.compile(r"_(\d{4})(\d{2})(\d{2})$")
"""Daily partition names of the plain dialect: ``<table>_YYYYMMDD``."""
GAP_KINDS = ("disconnect", "trade_seq", "stale", "downtime", "book_seq", "rejected")
"""Gap kinds counted in coverage_daily.gap_seconds (every kind: each is time without full data)."""
ROLLUPS: dict[str, str] = {"trades": "trades_1m", "quotes": "quotes_1m"}


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    day: dt.date
    table_name: str
    rows_hot: int | None
    rows_warm: int | None
    checksum_hot: str | None
    checksum_warm: str | None
    status: str
    loaded_at: dt.datetime | None = None


def _month_bounds(m: Month) -> tuple[dt.datetime, dt.datetime]:
    return _EPOCH + dt.timedelta(microseconds=m.start_us), _EPOCH + dt.timedelta(microseconds=m.end_us)


def detect(dsn: str) -> tuple[Dialect, bool]:
    """(dialect recorded by the migrations, whether the server is the PGlite test server)."""
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


def open_warm(settings: Settings, dsn: str | None = None) -> WarmStore:
    """The warm store of the settings as its owner (the rollover compresses chunks and
    refreshes aggregates), or ``dsn``; the dialect is read from the migrations."""
    return WarmStore.open(dsn or warm_dsns(settings.postgres).owner)


class WarmStore:
    """A connection to the warm store. ``WarmStore.open(dsn)`` finds the dialect; the owner
    role may do everything, the writer loads, the reader exports and reads back.

    ``copy``: load through COPY (default on plain PostgreSQL, never on PGlite);
    ``export_copy``: export months through ``COPY ... TO STDOUT`` (default), else a
    server-side cursor of ``EXPORT_BATCH_ROWS`` rows per fetch."""

    def __init__(
        self,
        dsn: str,
        dialect: Dialect,
        *,
        pglite: bool = False,
        copy: bool | None = None,
        export_copy: bool = True,
        export_batch_rows: int = EXPORT_BATCH_ROWS,
    ) -> None:
        self.dsn = dsn
        self.dialect = dialect
        self.pglite = pglite
        self.copy = (dialect is Dialect.POSTGRES) if copy is None else copy
        if pglite:
            self.copy = False
        self.export_copy = export_copy
        self.export_batch_rows = export_batch_rows
        try:
            self.conn: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
                dsn, autocommit=True, prepare_threshold=None if pglite else 5
            )
        except psycopg.Error as exc:
            raise WarmLoadError(f"cannot connect to the warm store: {exc}") from exc
        self._partitions: set[tuple[str, dt.date]] = set()
        self.inserted_days: set[tuple[str, dt.date]] = set()
        """(table, day) of every row ``insert`` loaded (restore compresses them afterwards)."""

    @classmethod
    def open(cls, dsn: str, **kwargs: Any) -> WarmStore:
        """Connect to ``dsn`` with the dialect its migrations recorded."""
        dialect, pglite = detect(dsn)
        return cls(dsn, dialect, pglite=pglite, **kwargs)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> WarmStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exec(self, query: sql.Composable | str, params: Any = None, what: str = "") -> list[tuple[Any, ...]]:
        try:
            cur = self.conn.execute(query, params, prepare=False)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            raise WarmLoadError(f"warm store: {what or 'statement'} failed: {exc}") from exc

    def storage(self, table: Table) -> str:
        """The relation holding ``table``'s rows (its chunks, compression, retention):
        ``quotes_data`` for quotes on TimescaleDB (``store/warm_stored.py``), else the table."""
        return storage_name(table, self.dialect)

    # -- load ------------------------------------------------------------------------------

    def ensure_partition(self, table: Table, day: dt.date) -> None:
        if self.dialect is Dialect.POSTGRES and (table.name, day) not in self._partitions:
            self._exec("SELECT tickarchive_ensure_partition(%s::regclass, %s)", (table.name, day), "ensure partition")
            self._partitions.add((table.name, day))

    def forget_partitions(self) -> None:
        """Forget which daily partitions exist (after partitions were dropped)."""
        self._partitions.clear()

    def load(self, table: Table, batch: pa.RecordBatch, day: dt.date, *, fresh: bool = False) -> int:
        """Insert ``batch`` (rows of ``day``) unless already there; returns rows inserted.

        ``fresh``: the caller saw no warm row of (table, day) before this load and hands
        disjoint batches (QuestDB's dedup keys are unique): plain PostgreSQL then COPYs
        straight into the table, skipping the staging table. The unique dedup index still
        guards it: a duplicate fails the batch loudly and the next run takes the staged path.
        """
        if batch.num_rows == 0:
            return 0
        self.ensure_partition(table, day)
        form = stored_form(table, self.dialect)
        if self.copy:
            return load_direct(self.conn, table, batch, form) if fresh else load_staged(self.conn, table, batch, form)
        return load_unnest(self.conn, table, batch, form)

    # -- after the load --------------------------------------------------------------------

    def compress_day(self, table: Table, day: dt.date) -> int:
        """Compress the day's chunk(s) (TimescaleDB; a no-op on plain PostgreSQL). Returns chunks."""
        if self.dialect is not Dialect.TIMESCALEDB:
            return 0
        lo, hi = day_bounds(day)
        chunks = self._exec(
            "SELECT c::text FROM show_chunks(%s::regclass, older_than => %s::timestamptz, "
            "newer_than => %s::timestamptz) c",
            (self.storage(table), hi, lo),
            f"{table.name} {day}: show_chunks",
        )
        for (chunk,) in chunks:
            # also finishes a chunk made partially compressed by late rows
            self._exec("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,), f"compress {chunk}")
        return len(chunks)

    def compression(self, table: Table, day: dt.date) -> list[tuple[str, bool, bool]]:
        """(chunk, is_compressed, is_partial) of the day's chunks (TimescaleDB; [] otherwise)."""
        if self.dialect is not Dialect.TIMESCALEDB:
            return []
        lo, hi = day_bounds(day)
        rows_ = self._exec(
            "SELECT chunk_schema || '.' || chunk_name, is_compressed, "
            "coalesce(_timescaledb_functions.chunk_status((chunk_schema || '.' || chunk_name)::regclass) & 8 = 8, "
            "false) "
            "FROM timescaledb_information.chunks WHERE hypertable_name = %s AND range_start >= %s AND range_end <= %s",
            (self.storage(table), lo, hi),
            "chunk status",
        )
        return [(str(a), bool(b), bool(c)) for a, b, c in rows_]

    def refresh_rollups(self, table: Table, day: dt.date) -> None:
        rollup = ROLLUPS.get(table.name)
        if rollup is None:
            return
        lo, hi = day_bounds(day)
        if self.dialect is Dialect.TIMESCALEDB:
            self._exec(
                sql.SQL("CALL refresh_continuous_aggregate({}, %s::timestamptz, %s::timestamptz)").format(
                    sql.Literal(rollup)
                ),
                (lo, hi),
                f"refresh {rollup} {day}",
            )
        else:
            self._exec("SELECT tickarchive_refresh_rollups(%s, %s)", (lo, hi), f"refresh rollups {day}")

    def fill_coverage(self, table: Table, day: dt.date) -> int:
        """Replace ``coverage_daily`` rows of (day, table); returns the number of instruments.

        rows per instrument; for trades the trade_seq range and the numbers missing inside
        it; gap seconds = the sum of recorded gaps of that instrument or of its whole
        connection ('*'), clipped to the day (open gaps run to the end of the day).
        """
        lo, hi = day_bounds(day)
        seg = sql.Identifier(table.segment_by)
        if table.name == "trades":
            seq = sql.SQL(
                "min(trade_seq), max(trade_seq), max(trade_seq) - min(trade_seq) + 1 - count(DISTINCT trade_seq)"
            )
        else:
            seq = sql.SQL("NULL::bigint, NULL::bigint, NULL::bigint")
        kinds = sql.SQL(", ").join(sql.Literal(k) for k in GAP_KINDS)
        q = sql.SQL(
            """
            INSERT INTO coverage_daily (day, instrument, table_name, rows, trade_seq_min, trade_seq_max,
                                        trade_seq_missing, gap_seconds, computed_at)
            SELECT %(day)s, r.k, %(table)s, r.n, r.smin, r.smax, r.smissing,
                   coalesce((
                       SELECT sum(extract(epoch FROM
                                  least(coalesce(g.end_ts, %(hi)s), %(hi)s) - greatest(g.ts, %(lo)s)))
                       FROM gaps g
                       WHERE (g.instrument = r.k OR g.instrument = '*') AND g.kind IN ({kinds})
                         AND g.ts < %(hi)s AND coalesce(g.end_ts, %(hi)s) > %(lo)s
                   ), 0), now()
            FROM (SELECT {seg} AS k, count(*) AS n, {seq}
                  FROM {table} WHERE ts >= %(lo)s AND ts < %(hi)s GROUP BY {seg}) AS r(k, n, smin, smax, smissing)
            """
        ).format(seg=seg, seq=seq, table=sql.Identifier(table.name), kinds=kinds)
        params = {"day": day, "table": table.name, "lo": lo, "hi": hi}
        try:
            with self.conn.transaction():
                self.conn.execute(
                    "DELETE FROM coverage_daily WHERE day = %s AND table_name = %s", (day, table.name), prepare=False
                )
                cur = self.conn.execute(q, params, prepare=False)
        except psycopg.Error as exc:
            raise WarmLoadError(f"{table.name} {day}: coverage failed: {exc}") from exc
        return max(cur.rowcount, 0)

    # -- read back -------------------------------------------------------------------------

    def count_day(self, table: Table, day: dt.date) -> int:
        lo, hi = day_bounds(day)
        q = sql.SQL("SELECT count(*) FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(table.name))
        return int(self._exec(q, (lo, hi), f"count {table.name} {day}")[0][0])

    def _select_list(self, table: Table) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("(extract(epoch FROM {c}) * 1000000)::bigint").format(c=sql.Identifier(c.name))
            if c.type is ColumnType.TIMESTAMP
            else sql.Identifier(c.name)
            for c in table.columns
        )

    def day_batches(
        self, table: Table, day: dt.date, *, ts_in: Iterable[int] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The day's rows as Arrow batches; with ``ts_in`` only rows at those timestamps (µs)."""
        lo, hi = day_bounds(day)
        q = sql.SQL("SELECT {} FROM {} WHERE ts >= %s AND ts < %s").format(
            self._select_list(table), sql.Identifier(table.name)
        )
        params: list[Any] = [lo, hi]
        if ts_in is not None:
            q = sql.SQL("{} AND ts = ANY(%s::timestamptz[])").format(q)
            params.append([_EPOCH + dt.timedelta(microseconds=t) for t in sorted(set(ts_in))])
        schema = rows.arrow_schema(table)
        types = [
            pa.int64() if c.type is ColumnType.TIMESTAMP else f.type
            for c, f in zip(table.columns, schema, strict=True)
        ]
        if self.copy:
            try:
                yield from copy_out_batches(self.conn, table, schema, q, params)
            except psycopg.Error as exc:
                raise WarmLoadError(f"{table.name}: read-back (COPY TO) failed: {exc}") from exc
            return
        try:
            with self.conn.cursor(binary=True) as cur:
                cur.execute(q, params, prepare=False)
                while chunk := cur.fetchmany(READ_BATCH_ROWS):
                    cols = list(zip(*chunk, strict=True))
                    arrays = [pa.array(v, t) for v, t in zip(cols, types, strict=True)]
                    arrays = [
                        a.cast(f.type) if c.type is ColumnType.TIMESTAMP else a
                        for a, c, f in zip(arrays, table.columns, schema, strict=True)
                    ]
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        except psycopg.Error as exc:
            raise WarmLoadError(f"{table.name} {day}: read-back failed: {exc}") from exc

    # -- the archive's source and sink -------------------------------------------------------

    def insert(self, table: Table, batch: pa.RecordBatch) -> int:
        """``ArchiveSink.insert``: rows not already present (by dedup key), split by UTC day so
        each day's partition exists first; returns the rows inserted."""
        if batch.num_rows == 0:
            return 0
        schema = rows.arrow_schema(table)
        batch = batch.select(schema.names).cast(schema)
        days = pc.cast(batch.column("ts"), pa.date32())
        inserted = 0
        for day in sorted(set(days.to_pylist())):
            part = batch.filter(pc.equal(days, pa.scalar(day, pa.date32())))
            inserted += self.load(table, part, day)
            self.inserted_days.add((table.name, day))
        return inserted

    def count_rows(self, table: Table, month: Month) -> int:
        """Rows of ``table`` in ``month``."""
        lo, hi = _month_bounds(month)
        q = sql.SQL("SELECT count(*) FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(table.name))
        return int(self._exec(q, (lo, hi), f"count {table.name} {month}")[0][0])

    def batches(self, table: Table, month: Month) -> Iterator[pa.RecordBatch]:
        """``ArchiveSource.batches``: the month's rows ordered by ``(segment_by, ts)`` in
        byte order, on a connection of their own (the export may interleave other calls)."""
        schema = rows.arrow_schema(table)
        q = sql.SQL('SELECT {} FROM {} WHERE ts >= %s AND ts < %s ORDER BY {} COLLATE "C", ts').format(
            self._select_list(table), sql.Identifier(table.name), sql.Identifier(table.segment_by)
        )
        params = _month_bounds(month)
        try:
            # a transaction of its own: a server-side cursor lives in one
            with psycopg.connect(self.dsn, prepare_threshold=None) as conn:
                if self.export_copy:
                    yield from copy_out_batches(conn, table, schema, q, params)
                    return
                with conn.cursor(name=f"archive_{table.name}") as cur:
                    cur.itersize = self.export_batch_rows
                    cur.execute(q, params)
                    while chunk := cur.fetchmany(self.export_batch_rows):
                        yield batch_of_rows(table, schema, chunk)
        except psycopg.Error as exc:
            raise WarmLoadError(f"{table.name} {month}: export failed: {exc}") from exc
        except pa.ArrowInvalid as exc:
            raise WarmLoadError(f"{table.name} {month}: unexpected COPY output: {exc}") from exc

    def months(self, table: Table) -> list[Month]:
        """``ArchiveSource.months``: months in which ``table`` has rows, ascending."""
        q = sql.SQL("SELECT min(ts), max(ts) FROM {}").format(sql.Identifier(table.name))
        exists = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE ts >= %s AND ts < %s)").format(
            sql.Identifier(table.name)
        )
        row = self._exec(q, None, f"{table.name}: months")
        if not row or row[0][0] is None:
            return []
        m = Month.of(row[0][0].astimezone(dt.UTC).date())
        last = Month.of(row[0][1].astimezone(dt.UTC).date())
        out = []
        while m <= last:
            hit = self._exec(exists, _month_bounds(m), f"{table.name} {m}: any rows")
            if hit and hit[0][0]:
                out.append(m)
            m = m.plus(1)
        return out

    def delete_month(self, table: Table, month: Month) -> int:
        """Delete a month's rows (benchmarks and tests on scratch databases)."""
        q = sql.SQL("DELETE FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(self.storage(table)))
        try:
            return max(self.conn.execute(q, _month_bounds(month), prepare=False).rowcount, 0)
        except psycopg.Error as exc:
            raise WarmLoadError(f"{table.name} {month}: delete failed: {exc}") from exc

    # -- retention --------------------------------------------------------------------------

    def _partitions_of(self, table: Table) -> list[tuple[str, dt.date]]:
        found = self._exec(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            (table.name,),
            f"{table.name}: list partitions",
        )
        out = []
        for (name,) in found:
            m = _PART_RE.search(str(name))
            if m:
                out.append((str(name), dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))))
        return sorted(out, key=lambda p: p[1])

    def stored_months(self, table: Table) -> list[Month]:
        """Months of ``table`` the warm store holds storage for (chunks or daily partitions),
        whether or not they hold rows."""
        if self.dialect is Dialect.TIMESCALEDB:
            found = self._exec(
                "SELECT DISTINCT (range_start AT TIME ZONE 'UTC')::date FROM timescaledb_information.chunks "
                "WHERE hypertable_name = %s",
                (self.storage(table),),
                f"{table.name}: list chunks",
            )
            return sorted({Month.of(r[0]) for r in found})
        return sorted({Month.of(d) for _, d in self._partitions_of(table)})

    def drop_month(self, table: Table, month: Month) -> None:
        """Drop a month's storage: its chunks (TimescaleDB) or daily partitions (plain)."""
        lo, hi = _month_bounds(month)
        if self.dialect is Dialect.TIMESCALEDB:
            self._exec(
                "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz, newer_than => %s::timestamptz)",
                (self.storage(table), hi, lo),
                f"{table.name} {month}: drop_chunks",
            )
            return
        for name, day in self._partitions_of(table):
            if Month.of(day) == month:
                self._exec(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)), None, f"drop {name}")
        self.forget_partitions()

    # -- ledger ----------------------------------------------------------------------------

    def ledger(self, day: dt.date, table: str) -> LedgerRow | None:
        rows_ = self._exec(
            "SELECT day, table_name, rows_hot, rows_warm, checksum_hot, checksum_warm, status, loaded_at "
            "FROM rollover_ledger WHERE day = %s AND table_name = %s",
            (day, table),
            "ledger read",
        )
        return LedgerRow(*rows_[0]) if rows_ else None

    def ledger_all(self) -> list[LedgerRow]:
        rows_ = self._exec(
            "SELECT day, table_name, rows_hot, rows_warm, checksum_hot, checksum_warm, status, loaded_at "
            "FROM rollover_ledger ORDER BY day, table_name",
            None,
            "ledger read",
        )
        return [LedgerRow(*r) for r in rows_]

    def write_ledger(self, row: LedgerRow) -> None:
        self._exec(
            "INSERT INTO rollover_ledger (day, table_name, rows_hot, rows_warm, checksum_hot, checksum_warm, status, "
            "loaded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now()) ON CONFLICT (day, table_name) DO UPDATE SET "
            "rows_hot = EXCLUDED.rows_hot, rows_warm = EXCLUDED.rows_warm, checksum_hot = EXCLUDED.checksum_hot, "
            "checksum_warm = EXCLUDED.checksum_warm, status = EXCLUDED.status, loaded_at = now()",
            (row.day, row.table_name, row.rows_hot, row.rows_warm, row.checksum_hot, row.checksum_warm, row.status),
            "ledger write",
        )

    def set_status(self, day: dt.date, table: str, status: str) -> None:
        self._exec(
            "UPDATE rollover_ledger SET status = %s WHERE day = %s AND table_name = %s",
            (status, day, table),
            "ledger status",
        )
