-- QuestDB hot store, version 3 (issue #15): every Deribit kind and the semantics found on
-- real frames (docs/data-dictionary.md).
-- quotes: the ticker's 24 h stats (high, low, price change, USD and notional volume), the
--   perpetual's interest_value, the delivery price of an expired instrument, the combo
--   fields (implied bid/ask, combo_state) and the channel interval (raw, 100ms, agg2);
-- book_changes: the channel interval;
-- combo_legs: the legs of combo instruments (public/get_combos).
-- New columns are appended (QuestDB adds at the end), as in tickarchive/tables.py.

ALTER TABLE quotes ADD COLUMN IF NOT EXISTS high_24h DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS low_24h DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS price_change_24h DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS volume_usd_24h DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS volume_notional_24h DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS interest_value DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS delivery_price DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS implied_bid DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS implied_ask DOUBLE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS combo_state SYMBOL CAPACITY 256 CACHE;
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS channel_interval SYMBOL CAPACITY 256 CACHE;
ALTER TABLE book_changes ADD COLUMN IF NOT EXISTS channel_interval SYMBOL CAPACITY 256 CACHE;

-- One row per leg of each combo instrument observed (public/get_combos, at discovery).
CREATE TABLE IF NOT EXISTS combo_legs (
    ts                  TIMESTAMP,
    recv_ts             TIMESTAMP,
    combo               SYMBOL CAPACITY 4096 CACHE,
    instrument          SYMBOL CAPACITY 16384 CACHE,
    amount              DOUBLE,
    state               SYMBOL CAPACITY 256 CACHE,
    combo_instrument_id LONG
) TIMESTAMP(ts) PARTITION BY DAY WAL
DEDUP UPSERT KEYS(ts, combo, instrument);
