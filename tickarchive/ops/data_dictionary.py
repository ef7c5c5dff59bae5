"""Renders the data dictionary (``docs/data-dictionary.md``) from ``tickarchive.tables``,
so that the documentation cannot drift from the registry (a test compares them, and
fails when a column has no unit below)."""

from __future__ import annotations

import re
from pathlib import Path

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
A NULL means the exchange did not send the field, or sent one of its "no value" spellings
(for book sides: the side was empty; for `bid_iv`/`ask_iv`: 0.0; `"expired"`, `"undefined"`).
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
    "high_24h": "base coin (options); USD (futures)",
    "low_24h": "base coin (options); USD (futures)",
    "price_change_24h": "percent",
    "volume_usd_24h": "USD",
    "volume_notional_24h": "USD (inverse) or quote currency (linear)",
    "interest_value": "as sent (perpetual interest accumulator)",
    "delivery_price": "USD",
    "implied_bid": "base coin (option combos); USD (future combos)",
    "implied_ask": "base coin (option combos); USD (future combos)",
    "combo_state": "enum",
    "channel_interval": "enum",
    "combo": "name",
    "combo_instrument_id": "id",
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
    ("combo_legs", "amount"): "ratio (leg contracts per combo contract, signed)",
}


def unit(table: Table, column: str) -> str:
    """The unit of a column; KeyError when none is recorded (the doc test catches it)."""
    key = (table.name, column)
    if key in _BY_TABLE:
        return _BY_TABLE[key]
    return _COMMON[column]


def _type(t: ColumnType) -> str:
    return t.value


WARM_TABLES: dict[str, str] = {
    "trades_1m": "One row per instrument and minute with trades: OHLC (open/close by trade_seq), volumes, "
    "count, VWAP. TimescaleDB: a continuous aggregate; plain PostgreSQL: a table the rollover refreshes.",
    "quotes_1m": "One row per instrument and minute with quotes: the minute's last bid/ask/mark/IV/underlying "
    "(by ts), mean spread, number of updates. Same two forms as trades_1m.",
    "coverage_daily": "Per UTC day, table and instrument: rows held, trade_seq range and missing sequence "
    "numbers (trades), seconds covered by gaps. Filled by the rollover.",
    "rollover_ledger": "One row per (day, table) moved from QuestDB to the warm store: row counts and content "
    "checksums of both sides, and the rollover's status (the quality report reads the day warm once the "
    "status of quotes and trades is verified or dropped).",
}
"""Warm-store-only tables (not in the registry), documented from their SQL (plain-PostgreSQL dialect)."""

_WARM_COLUMNS: dict[str, tuple[str, str]] = {
    # column: (unit, meaning); keyed "table.column" where the name alone is ambiguous
    "bucket": ("UTC, µs since epoch", "start of the minute"),
    "instrument": ("name", "instrument name"),
    "open": ("base coin (options); USD (futures)", "price of the minute's first trade (by trade_seq)"),
    "high": ("base coin (options); USD (futures)", "highest trade price"),
    "low": ("base coin (options); USD (futures)", "lowest trade price"),
    "close": ("base coin (options); USD (futures)", "price of the minute's last trade (by trade_seq)"),
    "volume": ("contracts (options: base coin); USD (futures)", "sum of trade amounts"),
    "buy_volume": ("contracts (options: base coin); USD (futures)", "sum of amounts of taker buys"),
    "sell_volume": ("contracts (options: base coin); USD (futures)", "sum of amounts of taker sells"),
    "trade_count": ("count", "trades in the minute"),
    "vwap": ("base coin (options); USD (futures)", "volume-weighted average price"),
    "bid_price": ("base coin (options); USD (futures)", "last best bid of the minute"),
    "ask_price": ("base coin (options); USD (futures)", "last best ask of the minute"),
    "mark_price": ("base coin (options); USD (futures)", "last mark price of the minute"),
    "mark_iv": ("percent", "last mark IV of the minute"),
    "underlying_price": ("USD", "last underlying price of the minute"),
    "mean_spread": ("base coin (options); USD (futures)", "mean of ask − bid over the minute's quotes"),
    "updates": ("count", "quotes in the minute"),
    "day": ("UTC date", "the day"),
    "table_name": ("name", "table of tickarchive.tables"),
    "rows": ("count", "rows of the table for the day and instrument"),
    "trade_seq_min": ("sequence number", "lowest trade_seq of the day (trades only)"),
    "trade_seq_max": ("sequence number", "highest trade_seq of the day (trades only)"),
    "trade_seq_missing": ("count", "sequence numbers missing between min and max (trades only)"),
    "gap_seconds": ("seconds", "time covered by recorded gaps"),
    "computed_at": ("UTC, µs since epoch", "when the row was computed"),
    "rows_hot": ("count", "rows of the day in QuestDB"),
    "rows_warm": ("count", "rows of the day in the warm store"),
    "checksum_hot": ("digest (text)", "content checksum of the day in QuestDB"),
    "checksum_warm": ("digest (text)", "content checksum of the day in the warm store"),
    "status": ("enum", "rollover state, e.g. loaded, verified, dropped, failed"),
    "loaded_at": ("UTC, µs since epoch", "when the row was written"),
}

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\)", re.DOTALL)


def warm_sql_columns(sql_dir: Path | None = None) -> dict[str, list[tuple[str, str, bool]]]:
    """table -> [(column, SQL type, nullable)] of ``WARM_TABLES`` from the plain-PostgreSQL migrations."""
    if sql_dir is None:
        import tickarchive.store as store

        sql_dir = Path(store.__file__).parent / "sql" / "postgres"
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for path in sorted(sql_dir.glob("V*.sql")):
        for name, body in _CREATE.findall(path.read_text()):
            if name not in WARM_TABLES:
                continue
            cols = []
            for line in body.splitlines():
                line = line.strip().rstrip(",")
                if not line or line.startswith(("PRIMARY KEY", "UNIQUE", "--")):
                    continue
                column, rest = line.split(None, 1)
                sql_type = re.split(r"\s+(?:NOT NULL|DEFAULT|PRIMARY)", rest)[0]
                cols.append((column, sql_type, "NOT NULL" not in rest))
            out[name] = cols
    return out


def _warm_section() -> list[str]:
    out = [
        "\n# Warm-store tables\n",
        "Only in the warm store (TimescaleDB / PostgreSQL), generated from `store/sql/postgres/` (the TimescaleDB "
        "dialect has the same columns; its rollups are continuous aggregates). SQL types.",
    ]
    columns = warm_sql_columns()
    for name, doc in WARM_TABLES.items():
        out.append(f"\n## `{name}`\n")
        out.append(doc)
        out.append("")
        out.append("| column | type | unit | nullable | meaning |")
        out.append("|---|---|---|---|---|")
        for column, sql_type, nullable in columns[name]:
            unit_, meaning = _WARM_COLUMNS[column]
            out.append(f"| `{column}` | {sql_type} | {unit_} | {'yes' if nullable else 'no'} | {meaning} |")
    return out


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
    out.extend(_warm_section())
    return "\n".join(out) + "\n"
