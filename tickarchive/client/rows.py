"""Typed rows: one frozen ``msgspec.Struct`` per table, generated from ``tickarchive.tables``
(fields = the table's columns; times are integer µs since the epoch; any field may be
None when the API left it out or it is NULL)."""

from __future__ import annotations

from typing import Any

import msgspec

from tickarchive.tables import BOOK_CHANGES, GAPS, INSTRUMENTS, QUOTES, TRADES, ColumnType, Table

_PY: dict[ColumnType, Any] = {
    ColumnType.TIMESTAMP: int,
    ColumnType.SYMBOL: str,
    ColumnType.VARCHAR: str,
    ColumnType.DOUBLE: float,
    ColumnType.LONG: int,
    ColumnType.INT: int,
    ColumnType.BOOLEAN: bool,
}


def row_type(table: Table, name: str) -> type[msgspec.Struct]:
    fields = [(c.name, _PY[c.type] | None, None) for c in table.columns]
    return msgspec.defstruct(name, fields, frozen=True, kw_only=True)


Quote = row_type(QUOTES, "Quote")
Trade = row_type(TRADES, "Trade")
BookChange = row_type(BOOK_CHANGES, "BookChange")
Gap = row_type(GAPS, "Gap")
Instrument = row_type(INSTRUMENTS, "Instrument")

ROW_TYPES: dict[str, type[msgspec.Struct]] = {
    "quotes": Quote,
    "trades": Trade,
    "book_changes": BookChange,
    "gaps": Gap,
    "instruments": Instrument,
}
"""Row type per endpoint/channel name."""


def typed(channel: str, columns: list[str], values: list[list[Any]]) -> list[Any]:
    """Rows of ``channel`` from a JSON rows message (``columns`` and value arrays)."""
    cls = ROW_TYPES[channel]
    return [cls(**dict(zip(columns, v, strict=True))) for v in values]
