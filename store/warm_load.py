"""The three ways a batch goes into the warm store (``WarmStore.load`` chooses):

* ``load_direct``: ``COPY ... FROM STDIN (FORMAT csv)`` straight into the table, for a
  day the caller knows holds none of these rows (a fresh rollover load); the unique dedup
  index still refuses a duplicate, loudly;
* ``load_staged``: COPY into a temporary staging table (timestamps as integer µs), then
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (plain PostgreSQL, any batch);
* ``load_unnest``: one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING``
  (TimescaleDB on the PGlite test server, which takes no COPY FROM STDIN).

A table with a stored form of its own (``store/warm_stored.py``: quotes on TimescaleDB)
is loaded straight into its hypertable, each row encoded by the form's SQL function
(``INSERT INTO quotes_data SELECT e.* FROM ..., tickarchive_encode_quotes(ROW(...)::quotes) e``);
``load_direct`` then takes the staged path (COPY cannot encode).

Arrow's CSV writer gives shortest round-trip doubles, quoted strings and empty = NULL.
Each runs in one transaction and returns the rows inserted; a psycopg error becomes
``WarmLoadError``.
"""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from tickarchive.store.errors import WarmLoadError
from tickarchive.store.warm_stored import StoredForm
from tickarchive.tables import STAGING_PG_TYPE, ColumnType, Table

Conn = psycopg.Connection[tuple[Any, ...]]
_PG_ARRAY: dict[ColumnType, str] = {k: f"{v}[]" for k, v in STAGING_PG_TYPE.items()}


def _from_micros(ident: sql.Composable) -> sql.Composable:
    return sql.SQL("timestamptz 'epoch' + {} * interval '1 microsecond'").format(ident)


def _insert_select(
    table: Table, select: sql.Composable, source: sql.Composable, form: StoredForm | None
) -> sql.Composed:
    """``INSERT INTO <table or its hypertable> ... SELECT <select> FROM <source> ON CONFLICT DO NOTHING``."""
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
    if form is None:
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
            sql.Identifier(table.name), names, select, source
        )
    return sql.SQL("INSERT INTO {} SELECT e.* FROM {}, {}(ROW({})::{}) AS e ON CONFLICT DO NOTHING").format(
        sql.Identifier(form.hypertable), source, sql.Identifier(form.encode), select, sql.Identifier(table.name)
    )


def load_direct(conn: Conn, table: Table, batch: pa.RecordBatch, form: StoredForm | None = None) -> int:
    if form is not None:
        return load_staged(conn, table, batch, form)
    names = [sql.Identifier(c.name) for c in table.columns]
    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(names)
    )
    buf = io.BytesIO()
    # timestamps as ISO 8601 with 'Z' (microseconds), read by PostgreSQL as timestamptz
    pacsv.write_csv(batch.select([c.name for c in table.columns]), buf, pacsv.WriteOptions(include_header=False))
    try:
        with conn.transaction(), conn.cursor().copy(copy) as cp:
            cp.write(buf.getbuffer())
    except psycopg.Error as exc:
        raise WarmLoadError(f"{table.name}: COPY of {batch.num_rows} rows failed: {exc}") from exc
    return int(batch.num_rows)


def load_unnest(conn: Conn, table: Table, batch: pa.RecordBatch, form: StoredForm | None = None) -> int:
    names = [sql.Identifier(c.name) for c in table.columns]
    unnest = sql.SQL(", ").join(sql.SQL("%s::" + _PG_ARRAY[c.type]) for c in table.columns)
    select = sql.SQL(", ").join(
        _from_micros(sql.SQL("u.{}").format(sql.Identifier(c.name)))
        if c.type is ColumnType.TIMESTAMP
        else sql.SQL("u.{}").format(sql.Identifier(c.name))
        for c in table.columns
    )
    source = sql.SQL("unnest({}) AS u({})").format(unnest, sql.SQL(", ").join(names))
    q = _insert_select(table, select, source, form)
    params = []
    for c in table.columns:
        column = batch.column(c.name)
        if c.type is ColumnType.TIMESTAMP:
            column = column.cast(pa.int64())
        params.append(column.to_pylist())
    try:
        with conn.transaction():
            cur = conn.execute(q, params, prepare=False)
    except psycopg.Error as exc:
        raise WarmLoadError(f"{table.name}: insert of {batch.num_rows} rows failed: {exc}") from exc
    return max(cur.rowcount, 0)


def load_staged(conn: Conn, table: Table, batch: pa.RecordBatch, form: StoredForm | None = None) -> int:
    stage = sql.Identifier(f"_stage_{table.name}")
    names = [sql.Identifier(c.name) for c in table.columns]
    create = sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        stage,
        sql.SQL(", ").join(
            sql.SQL("{} " + STAGING_PG_TYPE[c.type]).format(sql.Identifier(c.name)) for c in table.columns
        ),
    )
    select = sql.SQL(", ").join(
        _from_micros(sql.Identifier(c.name)) if c.type is ColumnType.TIMESTAMP else sql.Identifier(c.name)
        for c in table.columns
    )
    insert = _insert_select(table, select, stage, form)
    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(stage, sql.SQL(", ").join(names))
    cols = [
        batch.column(c.name).cast(pa.int64()) if c.type is ColumnType.TIMESTAMP else batch.column(c.name)
        for c in table.columns
    ]
    buf = io.BytesIO()
    pacsv.write_csv(
        pa.RecordBatch.from_arrays(cols, names=[c.name for c in table.columns]),
        buf,
        pacsv.WriteOptions(include_header=False),
    )
    try:
        with conn.transaction():
            conn.execute(create)
            with conn.cursor().copy(copy) as cp:
                cp.write(buf.getbuffer())
            cur = conn.execute(insert)
    except psycopg.Error as exc:
        raise WarmLoadError(f"{table.name}: COPY of {batch.num_rows} rows failed: {exc}") from exc
    return max(cur.rowcount, 0)
