-- Warm store, TimescaleDB dialect, version 9 (none in the plain PostgreSQL dialect, which
-- does not compress): quotes are stored as exact decimals, which TimescaleDB compresses to
-- ~30 instead of ~53 bytes per row (issue #18; docs/architecture.md, "Warm-tier compression";
-- `tickarchive bench warm-compression` measures both forms per column).
--
-- Deribit sends every price, size, IV and greek of a ticker as a decimal with a few digits
-- (greeks 5, IVs 2, option prices 4, mark prices up to 8, sizes 1). TimescaleDB compresses
-- a double column with Gorilla (XOR of consecutive values): a decimal such as 0.36967 has a
-- binary mantissa of random-looking bits, ~3 bytes per row per changing column. The same
-- value as the integer 36967 (scaled by 1e5) compresses with delta-of-delta to ~1 byte.
--
-- quotes_data (the hypertable) holds each double column x of quotes as a pair:
--   x_m bigint = x * 1e<k> when that integer gives x back exactly (x_m / 1e<k>::float8 = x,
--                bit for bit: -0.0, NaN, infinities, magnitudes of 2^53 / 1e<k> and more,
--                and values with more than k decimals do not), else NULL;
--   x_f double = x when x_m is NULL (NULL when x is).
-- k per column is the number of decimals Deribit sends for it (docs/architecture.md); a
-- value with more digits is kept, exactly, in x_f. The view quotes gives the rows back with
-- the columns of tickarchive/tables.py: coalesce(x_m / 1e<k>::float8, x_f), an IEEE division
-- of two exact doubles: the float the exchange sent. Writes: INSERT INTO quotes (an INSTEAD
-- OF trigger encodes each row; ON CONFLICT DO NOTHING is honoured) or, in bulk as the
-- loaders do (store/warm_load.py), INSERT INTO quotes_data SELECT e.* FROM <rows>,
-- tickarchive_encode_quotes(ROW(<columns>)::quotes) e ON CONFLICT DO NOTHING.
-- Chunks, compression and retention are those of quotes_data; quotes_1m is rebuilt on it.
--
-- Rows already stored are moved in this transaction, a day at a time (days that were compressed
-- are compressed again): on a store holding months of quotes this costs about what loading them
-- again does, in time and (until the commit frees the replaced files) in disk; see
-- docs/architecture.md. quotes_1m is created empty: `tickarchive migrate` refreshes it after
-- this file (store/migrate.py).

CREATE OR REPLACE FUNCTION tickarchive_dec(x double precision, scale double precision)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN abs(x) < 9007199254740992::float8 / scale
             AND round(x * scale) / scale = x
             AND (x <> 0 OR float8send(x) = float8send(0::float8))
        THEN round(x * scale)::bigint
    END
$$;

CREATE OR REPLACE FUNCTION tickarchive_dec_rest(x double precision, scale double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN tickarchive_dec(x, scale) IS NULL THEN x END
$$;

DROP MATERIALIZED VIEW IF EXISTS quotes_1m;
ALTER TABLE quotes RENAME TO quotes_v008;
ALTER INDEX quotes_dedup RENAME TO quotes_v008_dedup;

CREATE TABLE quotes_data (
    ts                         timestamptz NOT NULL,
    recv_ts                    timestamptz NOT NULL,
    instrument                 text NOT NULL,
    bid_price_m                bigint,            -- bid_price * 1e4, when exact
    bid_price_f                double precision,  -- bid_price otherwise
    bid_amount_m               bigint,            -- bid_amount * 1e1, when exact
    bid_amount_f               double precision,  -- bid_amount otherwise
    ask_price_m                bigint,            -- ask_price * 1e4, when exact
    ask_price_f                double precision,  -- ask_price otherwise
    ask_amount_m               bigint,            -- ask_amount * 1e1, when exact
    ask_amount_f               double precision,  -- ask_amount otherwise
    bid_iv_m                   bigint,            -- bid_iv * 1e2, when exact
    bid_iv_f                   double precision,  -- bid_iv otherwise
    ask_iv_m                   bigint,            -- ask_iv * 1e2, when exact
    ask_iv_f                   double precision,  -- ask_iv otherwise
    mark_iv_m                  bigint,            -- mark_iv * 1e2, when exact
    mark_iv_f                  double precision,  -- mark_iv otherwise
    mark_price_m               bigint,            -- mark_price * 1e8, when exact
    mark_price_f               double precision,  -- mark_price otherwise
    underlying_price_m         bigint,            -- underlying_price * 1e4, when exact
    underlying_price_f         double precision,  -- underlying_price otherwise
    underlying_index           text,
    index_price_m              bigint,            -- index_price * 1e4, when exact
    index_price_f              double precision,  -- index_price otherwise
    delta_m                    bigint,            -- delta * 1e5, when exact
    delta_f                    double precision,  -- delta otherwise
    gamma_m                    bigint,            -- gamma * 1e5, when exact
    gamma_f                    double precision,  -- gamma otherwise
    vega_m                     bigint,            -- vega * 1e5, when exact
    vega_f                     double precision,  -- vega otherwise
    theta_m                    bigint,            -- theta * 1e5, when exact
    theta_f                    double precision,  -- theta otherwise
    rho_m                      bigint,            -- rho * 1e5, when exact
    rho_f                      double precision,  -- rho otherwise
    open_interest_m            bigint,            -- open_interest * 1e4, when exact
    open_interest_f            double precision,  -- open_interest otherwise
    last_price_m               bigint,            -- last_price * 1e4, when exact
    last_price_f               double precision,  -- last_price otherwise
    settlement_price_m         bigint,            -- settlement_price * 1e8, when exact
    settlement_price_f         double precision,  -- settlement_price otherwise
    min_price_m                bigint,            -- min_price * 1e4, when exact
    min_price_f                double precision,  -- min_price otherwise
    max_price_m                bigint,            -- max_price * 1e4, when exact
    max_price_f                double precision,  -- max_price otherwise
    interest_rate_m            bigint,            -- interest_rate * 1e4, when exact
    interest_rate_f            double precision,  -- interest_rate otherwise
    volume_24h_m               bigint,            -- volume_24h * 1e4, when exact
    volume_24h_f               double precision,  -- volume_24h otherwise
    current_funding_m          bigint,            -- current_funding * 1e10, when exact
    current_funding_f          double precision,  -- current_funding otherwise
    funding_8h_m               bigint,            -- funding_8h * 1e10, when exact
    funding_8h_f               double precision,  -- funding_8h otherwise
    estimated_delivery_price_m bigint,            -- estimated_delivery_price * 1e4, when exact
    estimated_delivery_price_f double precision,  -- estimated_delivery_price otherwise
    state                      text,
    high_24h_m                 bigint,            -- high_24h * 1e4, when exact
    high_24h_f                 double precision,  -- high_24h otherwise
    low_24h_m                  bigint,            -- low_24h * 1e4, when exact
    low_24h_f                  double precision,  -- low_24h otherwise
    price_change_24h_m         bigint,            -- price_change_24h * 1e4, when exact
    price_change_24h_f         double precision,  -- price_change_24h otherwise
    volume_usd_24h_m           bigint,            -- volume_usd_24h * 1e2, when exact
    volume_usd_24h_f           double precision,  -- volume_usd_24h otherwise
    volume_notional_24h_m      bigint,            -- volume_notional_24h * 1e4, when exact
    volume_notional_24h_f      double precision,  -- volume_notional_24h otherwise
    interest_value_m           bigint,            -- interest_value * 1e10, when exact
    interest_value_f           double precision,  -- interest_value otherwise
    delivery_price_m           bigint,            -- delivery_price * 1e4, when exact
    delivery_price_f           double precision,  -- delivery_price otherwise
    implied_bid_m              bigint,            -- implied_bid * 1e4, when exact
    implied_bid_f              double precision,  -- implied_bid otherwise
    implied_ask_m              bigint,            -- implied_ask * 1e4, when exact
    implied_ask_f              double precision,  -- implied_ask otherwise
    combo_state                text,
    channel_interval           text
);
CREATE UNIQUE INDEX quotes_dedup ON quotes_data (instrument, ts);
SELECT create_hypertable('quotes_data', by_range('ts', INTERVAL '1 day'));
ALTER TABLE quotes_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument',
    timescaledb.compress_orderby = 'ts'
);

CREATE VIEW quotes AS
SELECT
    ts,
    recv_ts,
    instrument,
    coalesce(bid_price_m / 1e4::float8, bid_price_f) AS bid_price,
    coalesce(bid_amount_m / 1e1::float8, bid_amount_f) AS bid_amount,
    coalesce(ask_price_m / 1e4::float8, ask_price_f) AS ask_price,
    coalesce(ask_amount_m / 1e1::float8, ask_amount_f) AS ask_amount,
    coalesce(bid_iv_m / 1e2::float8, bid_iv_f) AS bid_iv,
    coalesce(ask_iv_m / 1e2::float8, ask_iv_f) AS ask_iv,
    coalesce(mark_iv_m / 1e2::float8, mark_iv_f) AS mark_iv,
    coalesce(mark_price_m / 1e8::float8, mark_price_f) AS mark_price,
    coalesce(underlying_price_m / 1e4::float8, underlying_price_f) AS underlying_price,
    underlying_index,
    coalesce(index_price_m / 1e4::float8, index_price_f) AS index_price,
    coalesce(delta_m / 1e5::float8, delta_f) AS delta,
    coalesce(gamma_m / 1e5::float8, gamma_f) AS gamma,
    coalesce(vega_m / 1e5::float8, vega_f) AS vega,
    coalesce(theta_m / 1e5::float8, theta_f) AS theta,
    coalesce(rho_m / 1e5::float8, rho_f) AS rho,
    coalesce(open_interest_m / 1e4::float8, open_interest_f) AS open_interest,
    coalesce(last_price_m / 1e4::float8, last_price_f) AS last_price,
    coalesce(settlement_price_m / 1e8::float8, settlement_price_f) AS settlement_price,
    coalesce(min_price_m / 1e4::float8, min_price_f) AS min_price,
    coalesce(max_price_m / 1e4::float8, max_price_f) AS max_price,
    coalesce(interest_rate_m / 1e4::float8, interest_rate_f) AS interest_rate,
    coalesce(volume_24h_m / 1e4::float8, volume_24h_f) AS volume_24h,
    coalesce(current_funding_m / 1e10::float8, current_funding_f) AS current_funding,
    coalesce(funding_8h_m / 1e10::float8, funding_8h_f) AS funding_8h,
    coalesce(estimated_delivery_price_m / 1e4::float8, estimated_delivery_price_f) AS estimated_delivery_price,
    state,
    coalesce(high_24h_m / 1e4::float8, high_24h_f) AS high_24h,
    coalesce(low_24h_m / 1e4::float8, low_24h_f) AS low_24h,
    coalesce(price_change_24h_m / 1e4::float8, price_change_24h_f) AS price_change_24h,
    coalesce(volume_usd_24h_m / 1e2::float8, volume_usd_24h_f) AS volume_usd_24h,
    coalesce(volume_notional_24h_m / 1e4::float8, volume_notional_24h_f) AS volume_notional_24h,
    coalesce(interest_value_m / 1e10::float8, interest_value_f) AS interest_value,
    coalesce(delivery_price_m / 1e4::float8, delivery_price_f) AS delivery_price,
    coalesce(implied_bid_m / 1e4::float8, implied_bid_f) AS implied_bid,
    coalesce(implied_ask_m / 1e4::float8, implied_ask_f) AS implied_ask,
    combo_state,
    channel_interval
FROM quotes_data;

CREATE FUNCTION tickarchive_encode_quotes(q quotes)
RETURNS SETOF quotes_data
ROWS 1
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT
        q.ts,
        q.recv_ts,
        q.instrument,
        tickarchive_dec(q.bid_price, 1e4), tickarchive_dec_rest(q.bid_price, 1e4),
        tickarchive_dec(q.bid_amount, 1e1), tickarchive_dec_rest(q.bid_amount, 1e1),
        tickarchive_dec(q.ask_price, 1e4), tickarchive_dec_rest(q.ask_price, 1e4),
        tickarchive_dec(q.ask_amount, 1e1), tickarchive_dec_rest(q.ask_amount, 1e1),
        tickarchive_dec(q.bid_iv, 1e2), tickarchive_dec_rest(q.bid_iv, 1e2),
        tickarchive_dec(q.ask_iv, 1e2), tickarchive_dec_rest(q.ask_iv, 1e2),
        tickarchive_dec(q.mark_iv, 1e2), tickarchive_dec_rest(q.mark_iv, 1e2),
        tickarchive_dec(q.mark_price, 1e8), tickarchive_dec_rest(q.mark_price, 1e8),
        tickarchive_dec(q.underlying_price, 1e4), tickarchive_dec_rest(q.underlying_price, 1e4),
        q.underlying_index,
        tickarchive_dec(q.index_price, 1e4), tickarchive_dec_rest(q.index_price, 1e4),
        tickarchive_dec(q.delta, 1e5), tickarchive_dec_rest(q.delta, 1e5),
        tickarchive_dec(q.gamma, 1e5), tickarchive_dec_rest(q.gamma, 1e5),
        tickarchive_dec(q.vega, 1e5), tickarchive_dec_rest(q.vega, 1e5),
        tickarchive_dec(q.theta, 1e5), tickarchive_dec_rest(q.theta, 1e5),
        tickarchive_dec(q.rho, 1e5), tickarchive_dec_rest(q.rho, 1e5),
        tickarchive_dec(q.open_interest, 1e4), tickarchive_dec_rest(q.open_interest, 1e4),
        tickarchive_dec(q.last_price, 1e4), tickarchive_dec_rest(q.last_price, 1e4),
        tickarchive_dec(q.settlement_price, 1e8), tickarchive_dec_rest(q.settlement_price, 1e8),
        tickarchive_dec(q.min_price, 1e4), tickarchive_dec_rest(q.min_price, 1e4),
        tickarchive_dec(q.max_price, 1e4), tickarchive_dec_rest(q.max_price, 1e4),
        tickarchive_dec(q.interest_rate, 1e4), tickarchive_dec_rest(q.interest_rate, 1e4),
        tickarchive_dec(q.volume_24h, 1e4), tickarchive_dec_rest(q.volume_24h, 1e4),
        tickarchive_dec(q.current_funding, 1e10), tickarchive_dec_rest(q.current_funding, 1e10),
        tickarchive_dec(q.funding_8h, 1e10), tickarchive_dec_rest(q.funding_8h, 1e10),
        tickarchive_dec(q.estimated_delivery_price, 1e4), tickarchive_dec_rest(q.estimated_delivery_price, 1e4),
        q.state,
        tickarchive_dec(q.high_24h, 1e4), tickarchive_dec_rest(q.high_24h, 1e4),
        tickarchive_dec(q.low_24h, 1e4), tickarchive_dec_rest(q.low_24h, 1e4),
        tickarchive_dec(q.price_change_24h, 1e4), tickarchive_dec_rest(q.price_change_24h, 1e4),
        tickarchive_dec(q.volume_usd_24h, 1e2), tickarchive_dec_rest(q.volume_usd_24h, 1e2),
        tickarchive_dec(q.volume_notional_24h, 1e4), tickarchive_dec_rest(q.volume_notional_24h, 1e4),
        tickarchive_dec(q.interest_value, 1e10), tickarchive_dec_rest(q.interest_value, 1e10),
        tickarchive_dec(q.delivery_price, 1e4), tickarchive_dec_rest(q.delivery_price, 1e4),
        tickarchive_dec(q.implied_bid, 1e4), tickarchive_dec_rest(q.implied_bid, 1e4),
        tickarchive_dec(q.implied_ask, 1e4), tickarchive_dec_rest(q.implied_ask, 1e4),
        q.combo_state,
        q.channel_interval
$$;

CREATE FUNCTION tickarchive_quotes_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO quotes_data SELECT e.* FROM tickarchive_encode_quotes(NEW) e ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    RETURN NULL;  -- already there: not counted, as ON CONFLICT DO NOTHING
END
$$;
CREATE TRIGGER quotes_insert INSTEAD OF INSERT ON quotes
    FOR EACH ROW EXECUTE FUNCTION tickarchive_quotes_insert();

-- the rows stored so far, a chunk (day) at a time in time order, each day that was compressed
-- compressed again right after its move
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT range_start, range_end, is_compressed FROM timescaledb_information.chunks
        WHERE hypertable_schema = 'public' AND hypertable_name = 'quotes_v008' ORDER BY range_start
    LOOP
        INSERT INTO quotes_data
            SELECT e.* FROM quotes_v008 q, tickarchive_encode_quotes(ROW(q.*)::quotes) e
            WHERE q.ts >= c.range_start AND q.ts < c.range_end;
        IF c.is_compressed THEN
            PERFORM compress_chunk(n, if_not_compressed => true)
            FROM show_chunks('quotes_data', older_than => c.range_end, newer_than => c.range_start) n;
        END IF;
    END LOOP;
END
$$;
DROP TABLE quotes_v008;

-- quotes_1m as in V002, on the stored form
CREATE MATERIALIZED VIEW quotes_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT
    time_bucket(INTERVAL '1 minute', ts) AS bucket,
    instrument,
    last(coalesce(bid_price_m / 1e4::float8, bid_price_f), ts) AS bid_price,
    last(coalesce(ask_price_m / 1e4::float8, ask_price_f), ts) AS ask_price,
    last(coalesce(mark_price_m / 1e8::float8, mark_price_f), ts) AS mark_price,
    last(coalesce(mark_iv_m / 1e2::float8, mark_iv_f), ts) AS mark_iv,
    last(coalesce(underlying_price_m / 1e4::float8, underlying_price_f), ts) AS underlying_price,
    avg(coalesce(ask_price_m / 1e4::float8, ask_price_f) - coalesce(bid_price_m / 1e4::float8, bid_price_f)) AS mean_spread,
    count(*) AS updates
FROM quotes_data
GROUP BY bucket, instrument
WITH NO DATA;

GRANT SELECT ON quotes, quotes_data, quotes_1m TO tickarchive_read;
GRANT SELECT ON quotes_1m TO tickarchive_write;
GRANT SELECT, INSERT, DELETE ON quotes TO tickarchive_write;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON quotes_data TO tickarchive_write;
