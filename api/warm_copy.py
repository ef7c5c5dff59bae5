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

from api.errors import ApiError
from api.hot_export import conform

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
