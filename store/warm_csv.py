"""Reading the warm store's rows as Arrow batches (``tickarchive.store.warm``).

``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` streamed through Arrow's CSV reader: PostgreSQL
prints doubles with the shortest exact representation (``extra_float_digits = 1``, the
default), so values round-trip; NULL is an unquoted empty field, an empty string a quoted
one; booleans are ``t``/``f``. Nothing is held whole in memory. ``batch_of_rows`` builds a
batch from rows a cursor fetched (the path without COPY).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from tickarchive.tables import ColumnType, Table


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


def copy_out_batches(
    conn: psycopg.Connection[tuple[Any, ...]],
    table: Table,
    schema: pa.Schema,
    query: sql.Composable,
    params: Sequence[Any],
) -> Iterator[pa.RecordBatch]:
    """``COPY (query) TO STDOUT (FORMAT csv)`` streamed through Arrow's CSV reader, batches
    in ``schema`` (``query`` selects timestamps as integer µs). Raises ``psycopg.Error``."""
    types = {
        c.name: (pa.int64() if c.type is ColumnType.TIMESTAMP else schema.field(c.name).type) for c in table.columns
    }
    read = pacsv.ReadOptions(column_names=list(schema.names), use_threads=False, block_size=1 << 22)
    parse = pacsv.ParseOptions(newlines_in_values=True)  # free text (a gap's cause) may hold one
    convert = pacsv.ConvertOptions(
        column_types=types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
    with conn.cursor() as cur, cur.copy(copy_sql, params) as copy:
        stream = _CopyStream(copy)
        if stream.is_empty():
            return  # no rows that month: Arrow refuses an empty CSV
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            yield pa.RecordBatch.from_arrays(
                [col.cast(f.type) for col, f in zip(batch.columns, schema, strict=True)], schema=schema
            )


def batch_of_rows(table: Table, schema: pa.Schema, chunk: list[tuple[Any, ...]]) -> pa.RecordBatch:
    columns = list(zip(*chunk, strict=True))
    arrays = []
    for i, field in enumerate(schema):
        if table.columns[i].type is ColumnType.TIMESTAMP:
            arrays.append(pa.array(columns[i], pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(columns[i], field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
