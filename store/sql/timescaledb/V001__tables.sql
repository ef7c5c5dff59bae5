-- Warm store, TimescaleDB dialect, version 1: the tables of tickarchive/tables.py as
-- hypertables with 1-day chunks, compressed per segment_by column (instrument for the
-- market tables) ordered by ts, then the rest of the dedup key (so inserts into a
-- compressed chunk can check the unique index segment by segment). The unique indexes on the dedup keys make loads idempotent
-- (INSERT ... ON CONFLICT DO NOTHING); they lead with the segment_by column so they also
-- serve the API's per-instrument time-range reads. Chunks are compressed by the rollover once loaded
-- (no compression policy: a day is compressed only after it is complete and verified).

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- One row per ticker notification: top of book, IVs, greeks, mark, underlying.
CREATE TABLE IF NOT EXISTS quotes (
    ts                       timestamptz NOT NULL,
    recv_ts                  timestamptz NOT NULL,
    instrument               text NOT NULL,
    bid_price                double precision,
    bid_amount               double precision,
    ask_price                double precision,
    ask_amount               double precision,
    bid_iv                   double precision,
    ask_iv                   double precision,
    mark_iv                  double precision,
    mark_price               double precision,
    underlying_price         double precision,
    underlying_index         text,
    index_price              double precision,
    delta                    double precision,
    gamma                    double precision,
    vega                     double precision,
    theta                    double precision,
    rho                      double precision,
    open_interest            double precision,
    last_price               double precision,
    settlement_price         double precision,
    min_price                double precision,
    max_price                double precision,
    interest_rate            double precision,
    volume_24h               double precision,
    current_funding          double precision,
    funding_8h               double precision,
    estimated_delivery_price double precision,
    state                    text
);
CREATE UNIQUE INDEX IF NOT EXISTS quotes_dedup ON quotes (instrument, ts);
SELECT create_hypertable('quotes', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);
ALTER TABLE quotes SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument',
    timescaledb.compress_orderby = 'ts'
);

-- One row per trade, from the trades channels (source=ws) or the history API (source=backfill).
CREATE TABLE IF NOT EXISTS trades (
    ts             timestamptz NOT NULL,
    recv_ts        timestamptz NOT NULL,
    instrument     text NOT NULL,
    trade_id       text NOT NULL,
    trade_seq      bigint NOT NULL,
    price          double precision NOT NULL,
    amount         double precision NOT NULL,
    direction      text NOT NULL,
    tick_direction integer,
    mark_price     double precision,
    index_price    double precision,
    iv             double precision,
    contracts      double precision,
    block_trade_id text,
    liquidation    text,
    combo_id       text,
    combo_trade_id text,
    source         text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS trades_dedup ON trades (instrument, ts, trade_id);
SELECT create_hypertable('trades', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);
ALTER TABLE trades SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument',
    timescaledb.compress_orderby = 'ts, trade_id'
);

-- One row per price-level change of the order book (snapshot levels flagged).
CREATE TABLE IF NOT EXISTS book_changes (
    ts             timestamptz NOT NULL,
    recv_ts        timestamptz NOT NULL,
    instrument     text NOT NULL,
    change_id      bigint NOT NULL,
    prev_change_id bigint,
    is_snapshot    boolean NOT NULL,
    side           text NOT NULL,
    action         text NOT NULL,
    price          double precision NOT NULL,
    amount         double precision NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS book_changes_dedup ON book_changes (instrument, ts, change_id, side, price);
SELECT create_hypertable('book_changes', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);
ALTER TABLE book_changes SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument',
    timescaledb.compress_orderby = 'ts, change_id, side, price'
);

-- One row per price index update (deribit_price_index.*).
CREATE TABLE IF NOT EXISTS index_ticks (
    ts         timestamptz NOT NULL,
    recv_ts    timestamptz NOT NULL,
    index_name text NOT NULL,
    price      double precision NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS index_ticks_dedup ON index_ticks (index_name, ts);
SELECT create_hypertable('index_ticks', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);
ALTER TABLE index_ticks SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'index_name',
    timescaledb.compress_orderby = 'ts'
);

-- One row per observed instrument state (discovery and instrument.state notifications).
CREATE TABLE IF NOT EXISTS instruments (
    ts                  timestamptz NOT NULL,
    recv_ts             timestamptz NOT NULL,
    instrument          text NOT NULL,
    state               text NOT NULL,
    kind                text,
    base_currency       text,
    quote_currency      text,
    settlement_currency text,
    option_type         text,
    strike              double precision,
    expiration          timestamptz,
    creation            timestamptz,
    tick_size           double precision,
    contract_size       double precision,
    min_trade_amount    double precision,
    settlement_period   text,
    instrument_id       bigint
);
CREATE UNIQUE INDEX IF NOT EXISTS instruments_dedup ON instruments (instrument, ts);
SELECT create_hypertable('instruments', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);
ALTER TABLE instruments SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument',
    timescaledb.compress_orderby = 'ts'
);

-- Windows in which data may be missing: start (ts), end, instruments, kind, cause, status.
CREATE TABLE IF NOT EXISTS gaps (
    ts         timestamptz NOT NULL,
    end_ts     timestamptz,
    instrument text NOT NULL,
    kind       text NOT NULL,
    cause      text NOT NULL,
    connection text NOT NULL,
    status     text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS gaps_dedup ON gaps (instrument, ts, kind);
SELECT create_hypertable('gaps', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);
ALTER TABLE gaps SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument',
    timescaledb.compress_orderby = 'ts, kind'
);

-- One row per collector connection per second: liveness for /health.
CREATE TABLE IF NOT EXISTS collector_heartbeats (
    ts                    timestamptz NOT NULL,
    connection            text NOT NULL,
    connected             boolean NOT NULL,
    subscribed_channels   bigint NOT NULL,
    frames_total          bigint NOT NULL,
    last_frame_ts         timestamptz,
    journal_backlog_bytes bigint NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS collector_heartbeats_dedup ON collector_heartbeats (connection, ts);
SELECT create_hypertable('collector_heartbeats', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE);
ALTER TABLE collector_heartbeats SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'connection',
    timescaledb.compress_orderby = 'ts'
);

-- The plain dialect's partition helper, so loaders can call one function in both dialects.
-- Hypertables create their chunks on insert: here it only checks the table and returns it.
CREATE OR REPLACE FUNCTION tickarchive_ensure_partition(parent regclass, day date)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF day IS NULL THEN
        RAISE EXCEPTION 'tickarchive_ensure_partition: day is NULL';
    END IF;
    RETURN parent;
END
$$;
