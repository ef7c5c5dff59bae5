"""Warm row pages as one row of per-column byte strings (build the SQL, decode the answer; pure).

Every COPY format sends one protocol message per row, and psycopg hands each to Python:
~0.5-1 µs per row before any value is decoded, about as much as PostgreSQL's own index
scan for a 100k-row instrument-day. Here PostgreSQL concatenates each column of the page
into one ``bytea`` with ``string_agg`` over the ordered, limited page::

    SELECT count(*), string_agg(timestamptz_send("ts"), ''), string_agg(float8send(coalesce("bid_price",
        'NaN'::float8)), ''), ... FROM (SELECT ... WHERE ... ORDER BY ... LIMIT %s) page

so the whole page arrives as a single row (a few large binary values) and every column is
decoded with one numpy view:

* timestamps: ``timestamptz_send`` = big-endian int64 µs since 2000-01-01;
* doubles: ``float8send``, NULL sent as NaN and read back as null (as every other path);
* integers / booleans: ``int8send`` / ``int4send`` / ``boolsend`` of ``coalesce(x, 0)``;
* strings: ``convert_to(x, 'UTF8')`` concatenated (``string_agg`` skips NULLs) plus the
  byte length of each value (``int4send``, -1 = NULL), assembled into an Arrow string array;
* a nullable non-double column also sends a validity byte per row (``boolsend(x IS NOT NULL)``).

The page (which rows, and their order) is the inner ``ORDER BY ... LIMIT``; the aggregates
all read that one stream, so their elements line up row by row. SQL does not promise that
an aggregate without its own ``ORDER BY`` sees its input in the subquery's order (it does
for this plan: Limit under a plain Aggregate), so ``decode`` checks the order and sorts by
the order keys if it is not strictly increasing in ``ts`` (never seen; cheap insurance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from tickarchive.api import frames
from tickarchive.tables import ColumnType, Table

PG_EPOCH_US = 946_684_800_000_000
"""PostgreSQL's binary timestamptz counts µs since 2000-01-01 UTC."""

_FIXED: dict[ColumnType, tuple[str, str, str]] = {
    ColumnType.TIMESTAMP: ("timestamptz_send", "'epoch'::timestamptz", ">i8"),
    ColumnType.DOUBLE: ("float8send", "'NaN'::float8", ">f8"),
    ColumnType.LONG: ("int8send", "0::int8", ">i8"),
    ColumnType.INT: ("int4send", "0::int4", ">i4"),
    ColumnType.BOOLEAN: ("boolsend", "false", "?"),
}
"""Per fixed-width column type: the send function, the stand-in for NULL, the numpy dtype."""

_TEXT = (ColumnType.SYMBOL, ColumnType.VARCHAR)


def _q(name: str) -> str:
    return '"' + name + '"'


def aggregates(table: Table, columns: Sequence[str]) -> list[str]:
    """The select list over the page ``p``: ``count(*)`` then, per column, its byte strings
    (in the order ``decode`` reads them)."""
    out = ["count(*)"]
    for c in columns:
        col = table.column(c)
        ref = "p." + _q(c)
        if col.type in _TEXT:
            out.append(f"string_agg(int4send(coalesce(octet_length(convert_to({ref}, 'UTF8')), -1)), '')")
            out.append(f"string_agg(convert_to({ref}, 'UTF8'), '')")
            continue
        send, stand_in, _ = _FIXED[col.type]
        out.append(f"string_agg({send}(coalesce({ref}, {stand_in})), '')")
        if col.nullable and col.type is not ColumnType.DOUBLE:
            out.append(f"string_agg(boolsend({ref} IS NOT NULL), '')")
    return out


def page_sql(table: Table, columns: Sequence[str], where: str, order: str) -> str:
    """``where`` and ``order`` as the plain row query uses them; one more parameter: the limit."""
    inner = f"SELECT {', '.join(_q(c) for c in columns)} FROM {_q(table.name)} WHERE {where} ORDER BY {order} LIMIT %s"
    return f"SELECT {', '.join(aggregates(table, columns))} FROM ({inner}) p"


class Undecodable(ValueError):
    """The answer does not have the shape ``page_sql`` asks for."""


def _buf(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise Undecodable(f"expected bytea, got {type(value).__name__}")


def _fixed(raw: bytes, dtype: str, n: int) -> np.ndarray[Any, Any]:
    width = np.dtype(dtype).itemsize
    if len(raw) != n * width:
        raise Undecodable(f"{len(raw)} bytes for {n} values of {width}")
    return np.frombuffer(raw, dtype=dtype).astype(np.dtype(dtype).newbyteorder("="))


def _strings(lengths_raw: bytes, data: bytes, n: int) -> pl.Series:
    lengths = _fixed(lengths_raw, ">i4", n)
    valid = lengths >= 0
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.where(valid, lengths, 0), out=offsets[1:])
    if int(offsets[-1]) != len(data):
        raise Undecodable(f"{len(data)} string bytes, lengths say {int(offsets[-1])}")
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data), bitmap)
    arr.validate(full=True)  # UTF-8 and offsets
    s = pl.from_arrow(arr)
    assert isinstance(s, pl.Series)
    return s


def decode(table: Table, columns: Sequence[str], order_keys: Sequence[str], row: Sequence[Any]) -> pl.DataFrame:
    """The page as a frame of ``frames.schema(table, columns)``; raises ``Undecodable``."""
    schema = frames.schema(table, columns)
    n = int(row[0])
    if n == 0:
        return pl.DataFrame(schema=schema)
    out: list[pl.Series] = []
    in_order = False  # strictly increasing ts (set when ts is decoded; every page has ts)
    i = 1
    try:
        for c in columns:
            col = table.column(c)
            if col.type in _TEXT:
                out.append(_strings(_buf(row[i]), _buf(row[i + 1]), n).alias(c).cast(pl.String))
                i += 2
                continue
            values = _fixed(_buf(row[i]), _FIXED[col.type][2], n)
            i += 1
            if col.type is ColumnType.TIMESTAMP:
                values = values + PG_EPOCH_US
            if col.type is ColumnType.TIMESTAMP and c == "ts":
                in_order = n < 2 or bool((np.diff(values) > 0).all())
            s = pl.Series(c, values, dtype=schema[c], nan_to_null=col.type is ColumnType.DOUBLE)
            if col.type is not ColumnType.DOUBLE and col.nullable:
                valid = _fixed(_buf(row[i]), "?", n)
                i += 1
                if not valid.all():
                    s = pl.select(pl.when(pl.Series(valid)).then(s)).to_series().alias(c)
            out.append(s)
    except IndexError as exc:
        raise Undecodable("fewer values than columns") from exc
    if i != len(row):
        raise Undecodable(f"{len(row)} values, expected {i}")
    frame = pl.DataFrame(out)
    if not in_order:
        frame = frame.sort(list(order_keys), maintain_order=True)
    return frame
