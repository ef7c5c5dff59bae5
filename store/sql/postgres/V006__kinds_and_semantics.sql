-- Warm store, plain PostgreSQL dialect, version 6 (issue #15): every Deribit kind and the semantics
-- found on real frames (docs/data-dictionary.md). New columns are appended, as in
-- tickarchive/tables.py: quotes gains the ticker's 24 h stats, the perpetual's
-- interest_value, the delivery price, the combo fields and the channel interval;
-- book_changes the channel interval; combo_legs holds the legs of combo instruments.

ALTER TABLE quotes
    ADD COLUMN IF NOT EXISTS high_24h            double precision,
    ADD COLUMN IF NOT EXISTS low_24h             double precision,
    ADD COLUMN IF NOT EXISTS price_change_24h    double precision,
    ADD COLUMN IF NOT EXISTS volume_usd_24h      double precision,
    ADD COLUMN IF NOT EXISTS volume_notional_24h double precision,
    ADD COLUMN IF NOT EXISTS interest_value      double precision,
    ADD COLUMN IF NOT EXISTS delivery_price      double precision,
    ADD COLUMN IF NOT EXISTS implied_bid         double precision,
    ADD COLUMN IF NOT EXISTS implied_ask         double precision,
    ADD COLUMN IF NOT EXISTS combo_state         text,
    ADD COLUMN IF NOT EXISTS channel_interval    text;
ALTER TABLE book_changes ADD COLUMN IF NOT EXISTS channel_interval text;

-- One row per leg of each combo instrument observed (public/get_combos, at discovery).
CREATE TABLE IF NOT EXISTS combo_legs (
    ts                  timestamptz NOT NULL,
    recv_ts             timestamptz NOT NULL,
    combo               text NOT NULL,
    instrument          text NOT NULL,
    amount              double precision NOT NULL,
    state               text,
    combo_instrument_id bigint
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS combo_legs_dedup ON combo_legs (combo, ts, instrument);
