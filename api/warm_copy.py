"""Parsing ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` output into a result frame (pure).

The warm tier's row pages are read with COPY (``api.warm``): PostgreSQL writes CSV in C
and Arrow's CSV reader parses it in C++, instead of decoding every value into a Python
object. In PostgreSQL's CSV a NULL is an empty unquoted field and an empty string is
``""``; booleans are ``t``/``f``; timestamps are selected as integer µs.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from tickarchive.api.errors import ApiError
from tickarchive.store.questdb_http import conform

_ARROW: dict[Any, pa.DataType] = {
    pl.Int64: pa.int64(),
    pl.Int32: pa.int32(),
    pl.Float64: pa.float64(),
    pl.String: pa.string(),
    pl.Boolean: pa.bool_(),
}


class CopyUnreadable(ApiError):
    """COPY output that does not parse as the expected columns."""


def parse_csv(data: bytes, schema: dict[str, Any]) -> pl.DataFrame:
    if not data:
        return pl.DataFrame(schema=schema)
    names = list(schema)
    read = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=max(1 << 20, len(data) + 1))
    convert = pacsv.ConvertOptions(
        column_types={n: _ARROW[schema[n]] for n in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    try:
        table = pacsv.read_csv(io.BytesIO(data), read_options=read, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise CopyUnreadable(f"unexpected COPY output: {exc}") from exc
    return conform(pl.from_arrow(table), schema)


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
PG_EPOCH_US = 946_684_800_000_000
"""PostgreSQL's binary timestamptz counts µs since 2000-01-01 UTC."""

FIXED_KINDS: dict[str, tuple[str, Any]] = {
    "timestamptz": (">i8", pl.Int64),
    "float8": (">f8", pl.Float64),
    "int8": (">i8", pl.Int64),
    "int4": (">i4", pl.Int32),
}
"""Binary COPY field types of fixed width: numpy dtype and result dtype."""


def parse_binary_fixed(data: bytes, columns: dict[str, str]) -> pl.DataFrame | None:
    """``COPY ... TO STDOUT (FORMAT binary)`` of fixed-width, non-NULL columns (``columns``:
    name -> a ``FIXED_KINDS`` key) decoded with one numpy view. None when the output does
    not have that shape (a NULL field makes rows uneven): the caller uses the CSV path."""
    import numpy as np

    if len(data) < 21 or not data.startswith(_SIGNATURE):
        return None
    ext = int.from_bytes(data[15:19], "big")
    body = data[19 + ext : -2]
    if data[-2:] != b"\xff\xff":
        return None
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, kind in enumerate(columns.values()):
        fields += [(f"l{i}", ">i4"), (f"v{i}", FIXED_KINDS[kind][0])]
    dtype = np.dtype(fields)
    if len(body) % dtype.itemsize:
        return None
    rows = np.frombuffer(body, dtype=dtype)
    if rows.size and not (rows["n"] == len(columns)).all():
        return None
    out: dict[str, Any] = {}
    for i, (name, kind) in enumerate(columns.items()):
        if rows.size and not (rows[f"l{i}"] == np.dtype(FIXED_KINDS[kind][0]).itemsize).all():
            return None
        values = rows[f"v{i}"].astype(FIXED_KINDS[kind][0][1:])
        if kind == "timestamptz":
            values = values + PG_EPOCH_US
        out[name] = pl.Series(name, values, dtype=FIXED_KINDS[kind][1])
    frame = pl.DataFrame(out)
    return frame.with_columns(pl.col(c).fill_nan(None) for c, k in columns.items() if k == "float8")
