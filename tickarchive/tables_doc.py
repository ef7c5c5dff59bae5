"""Renders the data dictionary (``docs/data-dictionary.md``) from ``tickarchive.tables``,
so that the documentation cannot drift from the registry (a test compares them, and
fails when a column has no unit below)."""

from __future__ import annotations

from tickarchive.tables import ALL_TABLES, ColumnType, Table

HEADER = """# Data dictionary

Every table and column of tickarchive, generated from `tickarchive/tables.py`
(`tickarchive report data-dictionary > docs/data-dictionary.md`; a test keeps this file in step).

The hot store (QuestDB), the warm store (TimescaleDB or PostgreSQL), the Parquet archive and
the API use the same table and column names. Types per tier:

| registry type | QuestDB | PostgreSQL / TimescaleDB | Parquet (Arrow) |
|---|---|---|---|
| timestamp | TIMESTAMP (µs) | timestamptz | timestamp[us, tz=UTC] |
| symbol | SYMBOL | text | dictionary string |
| varchar | VARCHAR | text | string |
| double | DOUBLE | double precision | float64 |
| long | LONG | bigint | int64 |
| int | INT | integer | int32 |
| boolean | BOOLEAN | boolean | bool |

Conventions: every timestamp is UTC with microsecond precision (Deribit's own timestamps
have millisecond resolution); `ts` is the designated exchange timestamp of every table and
`recv_ts` our receive time. Prices and sizes are stored exactly as the exchange sent them
(float64 parsed from the JSON text, never computed upon). Option prices on Deribit are
quoted in the base coin (ETH, BTC), option sizes in contracts of one base coin; futures and
perpetual amounts are in USD. "base coin" below means the instrument's base currency.
A NULL means the exchange did not send the field (or, for book sides, the side was empty).
"""

_COMMON: dict[str, str] = {
    "ts": "UTC, µs since epoch",
    "recv_ts": "UTC, µs since epoch",
    "end_ts": "UTC, µs since epoch",
    "expiration": "UTC, µs since epoch",
    "creation": "UTC, µs since epoch",
    "last_frame_ts": "UTC, µs since epoch",
    "instrument": "name",
    "index_name": "name",
    "underlying_index": "name",
    "connection": "id",
    "bid_price": "base coin (options); USD (futures)",
    "ask_price": "base coin (options); USD (futures)",
    "bid_amount": "contracts (options: base coin); USD (futures)",
    "ask_amount": "contracts (options: base coin); USD (futures)",
    "bid_iv": "percent",
    "ask_iv": "percent",
    "mark_iv": "percent",
    "iv": "percent",
    "mark_price": "base coin (options); USD (futures)",
    "underlying_price": "USD",
    "index_price": "USD",
    "delta": "as sent (Deribit model, per contract)",
    "gamma": "as sent (Deribit model, per contract)",
    "vega": "as sent (Deribit model, per contract)",
    "theta": "as sent (Deribit model, per contract)",
    "rho": "as sent (Deribit model, per contract)",
    "open_interest": "base coin (options); USD (futures)",
    "last_price": "base coin (options); USD (futures)",
    "settlement_price": "base coin (options); USD (futures)",
    "min_price": "base coin (options); USD (futures)",
    "max_price": "base coin (options); USD (futures)",
    "interest_rate": "as sent (annual rate of the option model)",
    "volume_24h": "base coin",
    "current_funding": "as sent (funding rate)",
    "funding_8h": "as sent (funding rate over 8 h)",
    "estimated_delivery_price": "USD",
    "state": "enum",
    "trade_id": "id",
    "trade_seq": "count (per instrument)",
    "price": "base coin (options); USD (futures, index)",
    "amount": "contracts (options: base coin); USD (futures)",
    "direction": "enum",
    "tick_direction": "enum 0–3",
    "contracts": "contracts",
    "block_trade_id": "id",
    "liquidation": "enum",
    "combo_id": "name",
    "combo_trade_id": "id",
    "source": "enum",
    "change_id": "id",
    "prev_change_id": "id",
    "is_snapshot": "flag",
    "side": "enum",
    "action": "enum",
    "kind": "enum",
    "base_currency": "currency code",
    "quote_currency": "currency code",
    "settlement_currency": "currency code",
    "option_type": "enum",
    "strike": "USD",
    "tick_size": "price units",
    "contract_size": "base coin per contract (options); USD (futures)",
    "min_trade_amount": "contracts",
    "settlement_period": "enum",
    "instrument_id": "id",
    "cause": "text",
    "status": "enum",
    "connected": "flag",
    "subscribed_channels": "count",
    "frames_total": "count",
    "journal_backlog_bytes": "bytes",
}

_BY_TABLE: dict[tuple[str, str], str] = {
    ("index_ticks", "price"): "USD",
    ("book_changes", "price"): "base coin (options); USD (futures)",
    ("book_changes", "amount"): "contracts (options: base coin); USD (futures)",
    ("gaps", "ts"): "UTC, µs since epoch (gap start)",
}


def unit(table: Table, column: str) -> str:
    """The unit of a column; KeyError when none is recorded (the doc test catches it)."""
    key = (table.name, column)
    if key in _BY_TABLE:
        return _BY_TABLE[key]
    return _COMMON[column]


def _type(t: ColumnType) -> str:
    return t.value


def data_dictionary_markdown() -> str:
    out = [HEADER]
    for t in ALL_TABLES:
        out.append(f"\n## `{t.name}`\n")
        out.append(t.doc)
        out.append("")
        out.append(f"Dedup key: `({', '.join(t.dedup_keys)})`. Segmented/sorted by `{t.segment_by}`, then `ts`.")
        out.append("")
        out.append("| column | type | unit | nullable | meaning |")
        out.append("|---|---|---|---|---|")
        for c in t.columns:
            key = " (key)" if c.name in t.dedup_keys else ""
            out.append(
                f"| `{c.name}`{key} | {_type(c.type)} | {unit(t, c.name)} | {'yes' if c.nullable else 'no'} "
                f"| {c.doc} |"
            )
    return "\n".join(out) + "\n"
