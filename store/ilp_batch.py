"""The batch path of the ILP encoder (``tickarchive.store.ilp.IlpEncoder``): the pending
events of one wide table (``BATCHED``: quotes, trades) as Arrow columns, written with one
``Buffer.dataframe`` call — the same bytes as ``ilp.encode`` row by row
(``tests/store/test_ilp.py`` checks both against ``tickarchive.rows``). Pure, no I/O.
"""

from __future__ import annotations

import warnings
from typing import Any

import pyarrow as pa
from msgspec.structs import astuple

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Buffer

from tickarchive.domain import QuoteTick, TradeTick
from tickarchive.rows import TABLE_OF_EVENT, field_of_column
from tickarchive.tables import ColumnType, Table

# ``Buffer.row`` leaves out ``None``, writes symbols then columns in frame order, and
# the designated timestamp from a ``datetime64[us]`` column, so the bytes are identical
# to the row path (``tests/store/test_ilp.py`` checks both against ``tickarchive.rows``).
# Tables with nullable timestamps (instruments, gaps, heartbeats) are rare and stay on the
# row path.

_ARROW: dict[ColumnType, pa.DataType] = {
    ColumnType.TIMESTAMP: pa.timestamp("us"),
    ColumnType.SYMBOL: pa.string(),
    ColumnType.VARCHAR: pa.string(),
    ColumnType.DOUBLE: pa.float64(),
    ColumnType.LONG: pa.int64(),
    ColumnType.INT: pa.int64(),
    ColumnType.BOOLEAN: pa.bool_(),
}


def _column(arr: pa.Array, type_: ColumnType) -> Any:
    """One Arrow column as what ``Buffer.dataframe`` encodes fastest and exactly: NumPy
    arrays, pandas masked arrays where there are NULLs, Arrow-backed strings."""
    import pandas as pd  # lazily, see _Batch.encode

    if type_ in (ColumnType.SYMBOL, ColumnType.VARCHAR):
        return pd.arrays.ArrowStringArray(arr)  # zero-copy; NULL stays NULL
    if arr.null_count == 0:
        return arr.to_numpy(zero_copy_only=False)
    mask = arr.is_null().to_numpy(zero_copy_only=False)
    if type_ is ColumnType.DOUBLE:
        return pd.arrays.FloatingArray(arr.fill_null(0.0).to_numpy(), mask)
    if type_ in (ColumnType.LONG, ColumnType.INT):
        return pd.arrays.IntegerArray(arr.fill_null(0).to_numpy(), mask)
    raise TypeError(f"no NULL {type_} column on the batch path")  # pragma: no cover


class _Batch:
    """How the rows of one table are built from its event type in one go."""

    __slots__ = ("columns", "struct", "symbols", "table")

    def __init__(self, table: Table, event_cls: type) -> None:
        self.table = table.name
        field_of = field_of_column(table)
        column_of = {f: c for c, f in field_of.items()}
        fields: tuple[str, ...] = event_cls.__struct_fields__  # type: ignore[attr-defined]
        if sorted(column_of) != sorted(fields):
            raise TypeError(f"{event_cls.__name__} fields do not map onto table {table.name}")
        type_of = {c.name: c.type for c in table.columns}
        # ``astuple(event)`` as an Arrow struct, fields named by column
        self.struct = pa.struct([pa.field(column_of[f], _ARROW[type_of[column_of[f]]]) for f in fields])
        # every column in table order (= the row path's order): its child index and type
        self.columns = tuple((c.name, fields.index(field_of[c.name]), c.type) for c in table.columns)
        self.symbols = list(table.symbols)

    def encode(self, buf: Buffer, events: list[Any]) -> None:
        import pandas as pd  # imported on first use: ~0.8 s that small flushes never need

        arr = pa.array([astuple(e) for e in events], type=self.struct)
        n = len(events)
        columns = {}
        for name, i, type_ in self.columns:
            child = arr.field(i)
            if child.null_count != n:  # a column NULL on every row is left out, as per row
                columns[name] = _column(child, type_)
        symbols = [s for s in self.symbols if s in columns]
        buf.dataframe(pd.DataFrame(columns, copy=False), table_name=self.table, symbols=symbols, at="ts")


BATCHED: tuple[type, ...] = (QuoteTick, TradeTick)
"""Event types whose rows ``IlpEncoder`` may encode in batches: the wide tables, where
``Buffer.dataframe`` saves the most per row. (Book changes and index ticks have too few
columns: measured, the batch path costs them as much per row as ``Buffer.row``.)"""


BATCH_MIN_ROWS = 4096
"""Below this many pending rows of a table, ``IlpEncoder`` uses the row path: a batch has
a fixed cost of ~1.5–4 ms (building the pandas frame, the client planning its column
loops), which only pays for itself from a few thousand rows (measured: 1,000 quotes cost
more as a batch, 3,000 less). The writer's 250 ms flushes at 5,000 frames/s hold ~1,000
quotes, so it batches only when catching up (a backlog, replay)."""

_BATCHES: dict[type, _Batch] = {cls: _Batch(TABLE_OF_EVENT[cls], cls) for cls in BATCHED}


def encode_batch(buf: Buffer, events: list[Any]) -> str:
    """Append the rows of ``events`` (all of one ``BATCHED`` type) to ``buf`` in one
    ``Buffer.dataframe`` call; return the table name. Same bytes as ``encode`` per event."""
    batch = _BATCHES[type(events[0])]
    batch.encode(buf, events)
    return batch.table


