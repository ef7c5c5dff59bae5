"""Tables the TimescaleDB warm store keeps in a stored form of their own (docs/architecture.md).

``quotes`` (store/sql/timescaledb/V009): its rows live in the hypertable ``quotes_data``,
each double column as an exact scaled integer (``x_m``) or, when no integer gives the
float back bit for bit, the float itself (``x_f``); the view ``quotes`` decodes them, so
every read sees the columns of ``tickarchive/tables.py``. Writes in bulk go straight into
the hypertable through the SQL function that encodes a row of the view
(``tickarchive_encode_quotes``); chunks, compression and retention are the hypertable's.

Plain PostgreSQL (no compression) and every other table: the table is its own storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tickarchive.store.dialect import Dialect
from tickarchive.tables import Table


@dataclass(frozen=True, slots=True)
class StoredForm:
    hypertable: str
    """The hypertable holding the rows (chunks, compression, drop_chunks)."""
    encode: str
    """SQL function: a row of the table's view (its columns in ``Table.columns`` order)
    -> a row of ``hypertable``."""


STORED_FORMS: Final[dict[str, StoredForm]] = {
    "quotes": StoredForm("quotes_data", "tickarchive_encode_quotes"),
}
"""TimescaleDB dialect only (migration V009 onwards)."""


def stored_form(table: Table | str, dialect: Dialect) -> StoredForm | None:
    """The stored form of ``table`` in ``dialect``, or None when the table stores itself."""
    if dialect is not Dialect.TIMESCALEDB:
        return None
    return STORED_FORMS.get(table if isinstance(table, str) else table.name)


def storage_name(table: Table | str, dialect: Dialect) -> str:
    """The relation holding ``table``'s rows: the hypertable of its stored form, else itself."""
    form = stored_form(table, dialect)
    return form.hypertable if form is not None else (table if isinstance(table, str) else table.name)
