"""The tables (docs/data-dictionary.md): one description shared by every tier.

The hot store (QuestDB), the warm store (TimescaleDB or plain PostgreSQL), the Parquet
archive and the API all use these names, columns and dedup keys. The migrations in
``store/sql`` are literal SQL; a test checks that what they create matches this registry.

Column names are SQL names. ``ts`` is the designated (exchange) timestamp of every
table; ``recv_ts`` is our receive time where it exists.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ColumnType(enum.StrEnum):
    TIMESTAMP = "timestamp"
    """Microseconds since the epoch; QuestDB TIMESTAMP, PostgreSQL timestamptz."""
    SYMBOL = "symbol"
    """A repeating string (instrument names, enums): QuestDB SYMBOL, PostgreSQL text."""
    VARCHAR = "varchar"
    """A mostly unique string (trade ids): QuestDB VARCHAR, PostgreSQL text."""
    DOUBLE = "double"
    LONG = "long"
    INT = "int"
    BOOLEAN = "boolean"


STAGING_PG_TYPE: dict[ColumnType, str] = {
    ColumnType.TIMESTAMP: "bigint",
    ColumnType.SYMBOL: "text",
    ColumnType.VARCHAR: "text",
    ColumnType.DOUBLE: "float8",
    ColumnType.LONG: "bigint",
    ColumnType.INT: "int4",
    ColumnType.BOOLEAN: "bool",
}
"""PostgreSQL type of each column type as the warm-store loaders stage it (timestamps as
integer µs, converted to timestamptz on insert; ``<type>[]`` for ``unnest`` loads)."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    doc: str
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    dedup_keys: tuple[str, ...]
    doc: str
    segment_by: str
    """The column the archive sorts by (before ts) and the warm tier compresses by."""
    warm_segmented: bool = True
    """TimescaleDB compresses each ``segment_by`` value apart (``compress_segmentby``); False
    for tables with a handful of rows per value and day, compressed whole, ordered by
    ``segment_by`` then ts (store/sql/timescaledb/V008)."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.type is ColumnType.SYMBOL)


T = ColumnType


def _c(name: str, type_: ColumnType, doc: str, nullable: bool = True) -> Column:
    return Column(name, type_, doc, nullable)


_TS = _c("ts", T.TIMESTAMP, "exchange timestamp (µs precision, ms resolution from Deribit)", False)
_RECV = _c("recv_ts", T.TIMESTAMP, "time the collector received the frame", False)

QUOTES = Table(
    name="quotes",
    doc="One row per ticker notification: top of book, IVs, greeks, mark, underlying.",
    segment_by="instrument",
    dedup_keys=("ts", "instrument"),
    columns=(
        _TS,
        _RECV,
        _c("instrument", T.SYMBOL, "instrument name, e.g. ETH-27DEC24-4000-C", False),
        _c(
            "bid_price",
            T.DOUBLE,
            "best bid price (options: in the base coin); NULL when the side is empty (Deribit sends amount 0.0; "
            "a combo may be bid at a price of 0 or below, which is kept)",
        ),
        _c("bid_amount", T.DOUBLE, "best bid size (options: contracts in the base coin)"),
        _c("ask_price", T.DOUBLE, "best ask price; NULL when the side is empty"),
        _c("ask_amount", T.DOUBLE, "best ask size"),
        _c(
            "bid_iv",
            T.DOUBLE,
            "implied volatility of the best bid, percent; NULL when the bid side is empty or Deribit sends 0.0, "
            "its 'no IV' value (a bid below what any volatility gives, e.g. under intrinsic value)",
        ),
        _c(
            "ask_iv",
            T.DOUBLE,
            "implied volatility of the best ask, percent; NULL when the ask side is empty or Deribit sends 0.0 "
            "('no IV'); 500.0 is Deribit's cap, stored as sent",
        ),
        _c("mark_iv", T.DOUBLE, "mark implied volatility, percent"),
        _c("mark_price", T.DOUBLE, "mark price"),
        _c("underlying_price", T.DOUBLE, "price of the underlying future or index"),
        _c("underlying_index", T.SYMBOL, "name of the underlying (a future or 'index_price')"),
        _c("index_price", T.DOUBLE, "current index price (USD)"),
        _c("delta", T.DOUBLE, "option delta"),
        _c("gamma", T.DOUBLE, "option gamma"),
        _c("vega", T.DOUBLE, "option vega"),
        _c("theta", T.DOUBLE, "option theta"),
        _c("rho", T.DOUBLE, "option rho"),
        _c("open_interest", T.DOUBLE, "open interest (options: base coin; perps/futures: USD)"),
        _c("last_price", T.DOUBLE, "last trade price; NULL before the first trade (null or 'undefined' on the wire)"),
        _c("settlement_price", T.DOUBLE, "last settlement price"),
        _c("min_price", T.DOUBLE, "lowest price a sell order may have"),
        _c("max_price", T.DOUBLE, "highest price a buy order may have"),
        _c("interest_rate", T.DOUBLE, "interest rate used in the option model"),
        _c("volume_24h", T.DOUBLE, "24 h volume (stats.volume), base coin"),
        _c("current_funding", T.DOUBLE, "perpetuals: current funding"),
        _c("funding_8h", T.DOUBLE, "perpetuals: 8 h funding"),
        _c("estimated_delivery_price", T.DOUBLE, "estimated delivery price; NULL when 'expired'"),
        _c("state", T.SYMBOL, "instrument state as reported by the ticker"),
        _c("high_24h", T.DOUBLE, "highest trade price over 24 h (stats.high); NULL when no trade"),
        _c("low_24h", T.DOUBLE, "lowest trade price over 24 h (stats.low); NULL when no trade"),
        _c("price_change_24h", T.DOUBLE, "24 h price change (stats.price_change), percent; NULL when no trade"),
        _c("volume_usd_24h", T.DOUBLE, "24 h volume in USD (stats.volume_usd)"),
        _c("volume_notional_24h", T.DOUBLE, "24 h notional volume (stats.volume_notional; perpetuals, linear)"),
        _c("interest_value", T.DOUBLE, "perpetuals: accumulated interest value (interest_value)"),
        _c("delivery_price", T.DOUBLE, "delivery price, sent once the instrument expired"),
        _c("implied_bid", T.DOUBLE, "combos: bid implied by the legs' books"),
        _c("implied_ask", T.DOUBLE, "combos: ask implied by the legs' books"),
        _c("combo_state", T.SYMBOL, "combos: active or inactive (combo_state)"),
        _c("channel_interval", T.SYMBOL, "interval of the ticker channel: raw, 100ms or agg2; NULL for quote.*"),
    ),
)

TRADES = Table(
    name="trades",
    doc="One row per trade, from the trades channels (source=ws) or the history API (source=backfill).",
    segment_by="instrument",
    warm_segmented=False,
    dedup_keys=("ts", "instrument", "trade_id"),
    columns=(
        _TS,
        _RECV,
        _c("instrument", T.SYMBOL, "instrument name", False),
        _c("trade_id", T.VARCHAR, "exchange trade id (string: two formats exist)", False),
        _c("trade_seq", T.LONG, "per-instrument consecutive trade sequence number", False),
        _c("price", T.DOUBLE, "trade price (options: base coin)", False),
        _c("amount", T.DOUBLE, "trade size (options: base coin; perps/futures: USD)", False),
        _c("direction", T.SYMBOL, "taker side: buy or sell", False),
        _c("tick_direction", T.INT, "0 plus, 1 zero-plus, 2 minus, 3 zero-minus"),
        _c("mark_price", T.DOUBLE, "mark price at the trade"),
        _c("index_price", T.DOUBLE, "index price at the trade"),
        _c("iv", T.DOUBLE, "implied volatility of the trade, percent (options)"),
        _c("contracts", T.DOUBLE, "size in contracts (may be absent in history)"),
        _c("block_trade_id", T.VARCHAR, "block trade id, if part of a block trade"),
        _c("liquidation", T.SYMBOL, "M, T or MT when a liquidation was involved"),
        _c("combo_id", T.SYMBOL, "combo instrument, if a leg of a combo trade"),
        _c("combo_trade_id", T.VARCHAR, "combo trade id, if a leg of a combo trade"),
        _c("source", T.SYMBOL, "ws (live) or backfill (history API)", False),
    ),
)

BOOK_CHANGES = Table(
    name="book_changes",
    doc="One row per price-level change of the order book (snapshot levels flagged). Every snapshot resets "
    "the book: its rows are its levels plus one 'empty' row per side it shows empty, so a snapshot is in the "
    "table even when the book is empty.",
    segment_by="instrument",
    dedup_keys=("ts", "instrument", "change_id", "side", "price"),
    columns=(
        _TS,
        _RECV,
        _c("instrument", T.SYMBOL, "instrument name", False),
        _c("change_id", T.LONG, "exchange change id of the message", False),
        _c("prev_change_id", T.LONG, "change id of the previous message; NULL on a snapshot"),
        _c("is_snapshot", T.BOOLEAN, "true for the levels of a full snapshot", False),
        _c("side", T.SYMBOL, "bid or ask", False),
        _c(
            "action",
            T.SYMBOL,
            "new, change, delete, snapshot (a level of a snapshot), or empty (a snapshot's marker for a side it "
            "shows empty: price and amount 0)",
            False,
        ),
        _c("price", T.DOUBLE, "price level (0 on an empty marker)", False),
        _c("amount", T.DOUBLE, "size at the level after the change; 0 on delete and on an empty marker", False),
        _c("channel_interval", T.SYMBOL, "interval of the book channel: raw, 100ms or agg2"),
    ),
)

INDEX_TICKS = Table(
    name="index_ticks",
    doc="One row per price index update (deribit_price_index.*).",
    segment_by="index_name",
    dedup_keys=("ts", "index_name"),
    columns=(
        _TS,
        _RECV,
        _c("index_name", T.SYMBOL, "index name, e.g. eth_usd", False),
        _c("price", T.DOUBLE, "index price (USD)", False),
    ),
)

INSTRUMENTS = Table(
    name="instruments",
    doc="One row per observed instrument state (discovery and instrument.state notifications).",
    segment_by="instrument",
    warm_segmented=False,
    dedup_keys=("ts", "instrument"),
    columns=(
        _TS,
        _RECV,
        _c("instrument", T.SYMBOL, "instrument name", False),
        _c("state", T.SYMBOL, "open, settlement, delivered, inactive, locked, halted, archivized, ...", False),
        _c("kind", T.SYMBOL, "option, future, spot, future_combo, option_combo"),
        _c("base_currency", T.SYMBOL, "base currency, e.g. ETH"),
        _c("quote_currency", T.SYMBOL, "quote currency"),
        _c("settlement_currency", T.SYMBOL, "settlement currency"),
        _c("option_type", T.SYMBOL, "call or put"),
        _c("strike", T.DOUBLE, "strike price (USD)"),
        _c("expiration", T.TIMESTAMP, "expiration time"),
        _c("creation", T.TIMESTAMP, "listing time"),
        _c("tick_size", T.DOUBLE, "minimal price change"),
        _c("contract_size", T.DOUBLE, "contract size"),
        _c("min_trade_amount", T.DOUBLE, "minimal trade size"),
        _c("settlement_period", T.SYMBOL, "day, week, month, perpetual, ..."),
        _c("instrument_id", T.LONG, "exchange numeric instrument id"),
    ),
)

COMBO_LEGS = Table(
    name="combo_legs",
    doc="One row per leg of each combo instrument observed (public/get_combos, at discovery).",
    segment_by="combo",
    dedup_keys=("ts", "combo", "instrument"),
    columns=(
        _TS,
        _RECV,
        _c("combo", T.SYMBOL, "combo instrument name, e.g. BTC-CS-19MAY26-70000_75000", False),
        _c("instrument", T.SYMBOL, "the leg's instrument name", False),
        _c("amount", T.DOUBLE, "signed ratio of the leg per combo contract (+ bought, - sold)", False),
        _c("state", T.SYMBOL, "combo state: active, inactive, ..."),
        _c("combo_instrument_id", T.LONG, "exchange numeric instrument id of the combo"),
    ),
)

GAPS = Table(
    name="gaps",
    doc="Windows in which data may be missing: start (ts), end, instruments, kind, cause, status.",
    segment_by="instrument",
    dedup_keys=("ts", "instrument", "kind", "connection"),
    columns=(
        _c("ts", T.TIMESTAMP, "gap start", False),
        _c("end_ts", T.TIMESTAMP, "gap end; NULL while open"),
        _c("instrument", T.SYMBOL, "instrument name, or '*' for a whole connection", False),
        _c("kind", T.SYMBOL, "disconnect, book_seq, trade_seq, stale, downtime, rejected", False),
        _c("cause", T.VARCHAR, "human-readable cause", False),
        _c("connection", T.SYMBOL, "collector connection id", False),
        _c("status", T.SYMBOL, "open, resolved, backfilled, unrecoverable", False),
    ),
)

HEARTBEATS = Table(
    name="collector_heartbeats",
    doc="One row per collector connection per second: liveness for /health.",
    segment_by="connection",
    dedup_keys=("ts", "connection"),
    columns=(
        _c("ts", T.TIMESTAMP, "time of the heartbeat", False),
        _c("connection", T.SYMBOL, "collector connection id", False),
        _c("connected", T.BOOLEAN, "socket open and subscribed", False),
        _c("subscribed_channels", T.LONG, "channels confirmed by the exchange", False),
        _c("frames_total", T.LONG, "frames received on this connection since start", False),
        _c("last_frame_ts", T.TIMESTAMP, "receive time of the last frame"),
        _c("journal_backlog_bytes", T.LONG, "journal bytes not yet acknowledged by QuestDB", False),
    ),
)

MARKET_TABLES: tuple[Table, ...] = (QUOTES, TRADES, BOOK_CHANGES, INDEX_TICKS, INSTRUMENTS, COMBO_LEGS)
ALL_TABLES: tuple[Table, ...] = (*MARKET_TABLES, GAPS, HEARTBEATS)
BY_NAME: dict[str, Table] = {t.name: t for t in ALL_TABLES}


def table(name: str) -> Table:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(BY_NAME)}") from None
