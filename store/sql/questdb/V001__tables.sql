-- QuestDB hot store, version 1: the tables of tickarchive/tables.py (DESIGN.md §4).
-- WAL tables, one partition per UTC day, designated timestamp ts, and DEDUP UPSERT KEYS
-- equal to each table's dedup key, so a re-delivered row replaces itself (exactly-once rows).
-- SYMBOL for repeating strings (instrument names, enums), VARCHAR for mostly unique ones.
-- A test (tests/store/test_migrations_questdb.py) checks this file against the registry.

-- One row per ticker notification: top of book, IVs, greeks, mark, underlying.
CREATE TABLE IF NOT EXISTS quotes (
    ts                       TIMESTAMP,
    recv_ts                  TIMESTAMP,
    instrument               SYMBOL CAPACITY 16384 CACHE,
    bid_price                DOUBLE,
    bid_amount               DOUBLE,
    ask_price                DOUBLE,
    ask_amount               DOUBLE,
    bid_iv                   DOUBLE,
    ask_iv                   DOUBLE,
    mark_iv                  DOUBLE,
    mark_price               DOUBLE,
    underlying_price         DOUBLE,
    underlying_index         SYMBOL CAPACITY 256 CACHE,
    index_price              DOUBLE,
    delta                    DOUBLE,
    gamma                    DOUBLE,
    vega                     DOUBLE,
    theta                    DOUBLE,
    rho                      DOUBLE,
    open_interest            DOUBLE,
    last_price               DOUBLE,
    settlement_price         DOUBLE,
    min_price                DOUBLE,
    max_price                DOUBLE,
    interest_rate            DOUBLE,
    volume_24h               DOUBLE,
    current_funding          DOUBLE,
    funding_8h               DOUBLE,
    estimated_delivery_price DOUBLE,
    state                    SYMBOL CAPACITY 256 CACHE
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, instrument);

-- One row per trade, from the trades channels (source=ws) or the history API (source=backfill).
CREATE TABLE IF NOT EXISTS trades (
    ts             TIMESTAMP,
    recv_ts        TIMESTAMP,
    instrument     SYMBOL CAPACITY 16384 CACHE,
    trade_id       VARCHAR,
    trade_seq      LONG,
    price          DOUBLE,
    amount         DOUBLE,
    direction      SYMBOL CAPACITY 256 CACHE,
    tick_direction INT,
    mark_price     DOUBLE,
    index_price    DOUBLE,
    iv             DOUBLE,
    contracts      DOUBLE,
    block_trade_id VARCHAR,
    liquidation    SYMBOL CAPACITY 256 CACHE,
    combo_id       SYMBOL CAPACITY 16384 CACHE,
    combo_trade_id VARCHAR,
    source         SYMBOL CAPACITY 256 CACHE
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, instrument, trade_id);

-- One row per price-level change of the order book (snapshot levels flagged).
CREATE TABLE IF NOT EXISTS book_changes (
    ts             TIMESTAMP,
    recv_ts        TIMESTAMP,
    instrument     SYMBOL CAPACITY 16384 CACHE,
    change_id      LONG,
    prev_change_id LONG,
    is_snapshot    BOOLEAN,
    side           SYMBOL CAPACITY 256 CACHE,
    action         SYMBOL CAPACITY 256 CACHE,
    price          DOUBLE,
    amount         DOUBLE
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, instrument, change_id, side, price);

-- One row per price index update (deribit_price_index.*).
CREATE TABLE IF NOT EXISTS index_ticks (
    ts         TIMESTAMP,
    recv_ts    TIMESTAMP,
    index_name SYMBOL CAPACITY 256 CACHE,
    price      DOUBLE
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, index_name);

-- One row per observed instrument state (discovery and instrument.state notifications).
CREATE TABLE IF NOT EXISTS instruments (
    ts                  TIMESTAMP,
    recv_ts             TIMESTAMP,
    instrument          SYMBOL CAPACITY 16384 CACHE,
    state               SYMBOL CAPACITY 256 CACHE,
    kind                SYMBOL CAPACITY 256 CACHE,
    base_currency       SYMBOL CAPACITY 256 CACHE,
    quote_currency      SYMBOL CAPACITY 256 CACHE,
    settlement_currency SYMBOL CAPACITY 256 CACHE,
    option_type         SYMBOL CAPACITY 256 CACHE,
    strike              DOUBLE,
    expiration          TIMESTAMP,
    creation            TIMESTAMP,
    tick_size           DOUBLE,
    contract_size       DOUBLE,
    min_trade_amount    DOUBLE,
    settlement_period   SYMBOL CAPACITY 256 CACHE,
    instrument_id       LONG
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, instrument);

-- Windows in which data may be missing: start (ts), end, instruments, kind, cause, status.
CREATE TABLE IF NOT EXISTS gaps (
    ts         TIMESTAMP,
    end_ts     TIMESTAMP,
    instrument SYMBOL CAPACITY 16384 CACHE,
    kind       SYMBOL CAPACITY 256 CACHE,
    cause      VARCHAR,
    connection SYMBOL CAPACITY 256 CACHE,
    status     SYMBOL CAPACITY 256 CACHE
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, instrument, kind);

-- One row per collector connection per second: liveness for /health.
CREATE TABLE IF NOT EXISTS collector_heartbeats (
    ts                    TIMESTAMP,
    connection            SYMBOL CAPACITY 256 CACHE,
    connected             BOOLEAN,
    subscribed_channels   LONG,
    frames_total          LONG,
    last_frame_ts         TIMESTAMP,
    journal_backlog_bytes LONG
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, connection);
