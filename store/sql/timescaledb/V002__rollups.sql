-- Warm store, TimescaleDB dialect, version 2: one-minute rollups as continuous aggregates.
--
-- trades_1m: OHLC (open/close by trade_seq, the exchange's per-instrument order), volume,
--   taker buy/sell volume, trade count and volume-weighted average price.
-- quotes_1m: the last bid/ask/mark/mark_iv/underlying of the minute (by ts), the mean
--   bid-ask spread and the number of ticker updates.
--
-- Created WITH NO DATA and materialized_only = true: the warm store is loaded a whole day
-- at a time by the rollover, which refreshes the day's window right after loading
-- (CALL refresh_continuous_aggregate('trades_1m', day, day + 1)); reads then hit only
-- the materialization, never a union with raw rows.

CREATE MATERIALIZED VIEW IF NOT EXISTS trades_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT
    time_bucket(INTERVAL '1 minute', ts) AS bucket,
    instrument,
    first(price, trade_seq) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, trade_seq) AS close,
    sum(amount) AS volume,
    coalesce(sum(amount) FILTER (WHERE direction = 'buy'), 0) AS buy_volume,
    coalesce(sum(amount) FILTER (WHERE direction = 'sell'), 0) AS sell_volume,
    count(*) AS trade_count,
    sum(price * amount) / nullif(sum(amount), 0) AS vwap
FROM trades
GROUP BY bucket, instrument
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS quotes_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT
    time_bucket(INTERVAL '1 minute', ts) AS bucket,
    instrument,
    last(bid_price, ts) AS bid_price,
    last(ask_price, ts) AS ask_price,
    last(mark_price, ts) AS mark_price,
    last(mark_iv, ts) AS mark_iv,
    last(underlying_price, ts) AS underlying_price,
    avg(ask_price - bid_price) AS mean_spread,
    count(*) AS updates
FROM quotes
GROUP BY bucket, instrument
WITH NO DATA;
