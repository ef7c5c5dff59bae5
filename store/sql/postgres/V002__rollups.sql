-- Warm store, plain PostgreSQL dialect, version 2: one-minute rollup TABLES with the same
-- columns as the TimescaleDB continuous aggregates (store/sql/timescaledb/V002__rollups.sql),
-- daily range partitions on bucket, filled by tickarchive_refresh_rollups(start, end),
-- which the rollover calls after loading a day.
--
-- trades_1m: OHLC (open/close by trade_seq), volume, taker buy/sell volume, count, vwap.
-- quotes_1m: last bid/ask/mark/mark_iv/underlying of the minute (by ts), mean spread, updates.

CREATE TABLE IF NOT EXISTS trades_1m (
    bucket      timestamptz NOT NULL,
    instrument  text NOT NULL,
    open        double precision,
    high        double precision,
    low         double precision,
    close       double precision,
    volume      double precision,
    buy_volume  double precision,
    sell_volume double precision,
    trade_count bigint NOT NULL,
    vwap        double precision,
    PRIMARY KEY (instrument, bucket)
) PARTITION BY RANGE (bucket);

CREATE TABLE IF NOT EXISTS quotes_1m (
    bucket           timestamptz NOT NULL,
    instrument       text NOT NULL,
    bid_price        double precision,
    ask_price        double precision,
    mark_price       double precision,
    mark_iv          double precision,
    underlying_price double precision,
    mean_spread      double precision,
    updates          bigint NOT NULL,
    PRIMARY KEY (instrument, bucket)
) PARTITION BY RANGE (bucket);

-- Recompute the rollups of every whole minute in [start_ts, end_ts) (the window is
-- rounded to minutes, like refresh_continuous_aggregate) from the raw tables.
-- Idempotent: the window's rows are replaced. Creates the rollup partitions it needs.
CREATE OR REPLACE FUNCTION tickarchive_refresh_rollups(start_ts timestamptz, end_ts timestamptz)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    lo timestamptz := date_bin(INTERVAL '1 minute', start_ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');
    hi timestamptz := date_bin(INTERVAL '1 minute', end_ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');
    d date;
BEGIN
    IF lo IS NULL OR hi IS NULL THEN
        RAISE EXCEPTION 'tickarchive_refresh_rollups: start and end must not be NULL';
    END IF;
    IF hi <= lo THEN
        RETURN;
    END IF;
    d := (lo AT TIME ZONE 'UTC')::date;
    WHILE d <= ((hi - INTERVAL '1 microsecond') AT TIME ZONE 'UTC')::date LOOP
        PERFORM tickarchive_ensure_partition('trades_1m', d);
        PERFORM tickarchive_ensure_partition('quotes_1m', d);
        d := d + 1;
    END LOOP;

    DELETE FROM trades_1m WHERE bucket >= lo AND bucket < hi;
    INSERT INTO trades_1m
    SELECT
        date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
        instrument,
        (array_agg(price ORDER BY trade_seq))[1],
        max(price),
        min(price),
        (array_agg(price ORDER BY trade_seq DESC))[1],
        sum(amount),
        coalesce(sum(amount) FILTER (WHERE direction = 'buy'), 0),
        coalesce(sum(amount) FILTER (WHERE direction = 'sell'), 0),
        count(*),
        sum(price * amount) / nullif(sum(amount), 0)
    FROM trades
    WHERE ts >= lo AND ts < hi
    GROUP BY 1, 2;

    DELETE FROM quotes_1m WHERE bucket >= lo AND bucket < hi;
    INSERT INTO quotes_1m
    SELECT
        date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
        instrument,
        (array_agg(bid_price ORDER BY ts DESC))[1],
        (array_agg(ask_price ORDER BY ts DESC))[1],
        (array_agg(mark_price ORDER BY ts DESC))[1],
        (array_agg(mark_iv ORDER BY ts DESC))[1],
        (array_agg(underlying_price ORDER BY ts DESC))[1],
        avg(ask_price - bid_price),
        count(*)
    FROM quotes
    WHERE ts >= lo AND ts < hi
    GROUP BY 1, 2;
END
$$;
