"""The mapping between domain types (``tickarchive.domain``) and table rows
(``tickarchive.tables``), and the Arrow schema of each table.

This is the one place that says which field of which event fills which column. The
hot-path ILP encoder (``store.ilp``) may specialise it for speed, but a test holds both
to this mapping.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import pyarrow as pa

from tickarchive import domain as d
from tickarchive import tables as t

TABLE_OF_EVENT: Mapping[type[Any], t.Table] = {
    d.QuoteTick: t.QUOTES,
    d.TradeTick: t.TRADES,
    d.BookChange: t.BOOK_CHANGES,
    d.IndexTick: t.INDEX_TICKS,
    d.InstrumentEvent: t.INSTRUMENTS,
    d.ComboLeg: t.COMBO_LEGS,
    d.Gap: t.GAPS,
    d.ConnectionHeartbeat: t.HEARTBEATS,
}

# column name -> event field name, where the two differ
_RENAMES: Mapping[str, Mapping[str, str]] = {
    "quotes": {"ts": "ts_us", "recv_ts": "recv_ts_us"},
    "trades": {"ts": "ts_us", "recv_ts": "recv_ts_us"},
    "book_changes": {"ts": "ts_us", "recv_ts": "recv_ts_us"},
    "index_ticks": {"ts": "ts_us", "recv_ts": "recv_ts_us"},
    "instruments": {
        "ts": "ts_us",
        "recv_ts": "recv_ts_us",
        "expiration": "expiration_us",
        "creation": "creation_us",
    },
    "combo_legs": {"ts": "ts_us", "recv_ts": "recv_ts_us"},
    "gaps": {"ts": "start_us", "end_ts": "end_us"},
    "collector_heartbeats": {"ts": "ts_us", "last_frame_ts": "last_frame_us"},
}


def field_of_column(table: t.Table) -> dict[str, str]:
    """For each column of ``table``, the name of the event field that fills it."""
    renames = _RENAMES[table.name]
    return {c: renames.get(c, c) for c in table.column_names}


_FIELDS: dict[type[Any], tuple[tuple[str, str], ...]] = {
    cls: tuple(field_of_column(tbl).items()) for cls, tbl in TABLE_OF_EVENT.items()
}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def event_row(event: d.Event) -> tuple[t.Table, dict[str, Any]]:
    """The table an event belongs to and its row (timestamps as integer µs)."""
    cls = type(event)
    return TABLE_OF_EVENT[cls], {col: _plain(getattr(event, f)) for col, f in _FIELDS[cls]}


_ARROW_TYPE: Mapping[t.ColumnType, pa.DataType] = {
    t.ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    t.ColumnType.SYMBOL: pa.string(),
    t.ColumnType.VARCHAR: pa.string(),
    t.ColumnType.DOUBLE: pa.float64(),
    t.ColumnType.LONG: pa.int64(),
    t.ColumnType.INT: pa.int32(),
    t.ColumnType.BOOLEAN: pa.bool_(),
}


def arrow_schema(table: t.Table) -> pa.Schema:
    """The Arrow schema of a table: the form of replay output, rollover batches and
    archive files."""
    return pa.schema(
        [pa.field(c.name, _ARROW_TYPE[c.type], nullable=c.nullable) for c in table.columns],
        metadata={"table": table.name},
    )


def events_to_arrow(table: t.Table, events: Iterable[d.Event]) -> pa.Table:
    """Rows of one table from its events, as an Arrow table with ``arrow_schema``."""
    fields = field_of_column(table)
    columns: dict[str, list[Any]] = {c: [] for c in fields}
    for ev in events:
        for col, f in fields.items():
            columns[col].append(_plain(getattr(ev, f)))
    return pa.Table.from_pydict(columns, schema=arrow_schema(table))


def to_builtins(event: d.Event) -> dict[str, Any]:
    """An event as plain JSON-able values (for logs and samples)."""
    out: dict[str, Any] = msgspec.to_builtins(event)
    return out


_NULLS: dict[pa.DataType, pa.Array] = {}


def null_column(typ: pa.DataType, n: int) -> pa.Array:
    """``n`` NULLs of ``typ`` as a slice of one array per type, whose buffers every such
    column shares (a table's columns of another instrument kind: an option has no funding
    rate). Its memory is held for the life of the process: the longest ever asked for."""
    nulls = _NULLS.get(typ)
    if nulls is None or len(nulls) < n:
        nulls = _NULLS[typ] = pa.nulls(max(n, 2 * len(nulls) if nulls is not None else 1 << 16), typ)
    return nulls.slice(0, n)
