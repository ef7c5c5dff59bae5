-- Warm store, version 3 (same in both dialects): the bookkeeping the rollover fills.
--
-- coverage_daily: per UTC day, instrument and table, how much we hold and how complete it
--   is: rows, the trade_seq range and how many sequence numbers inside it are missing
--   (trades only; NULL elsewhere), and the seconds covered by recorded gaps.
-- rollover_ledger: one row per (day, table) moved from QuestDB to the warm store, with the
--   row counts and content checksums of both sides. status is the rollover's state
--   machine (e.g. loaded, verified, dropped, failed); the hot partition is dropped only
--   once the row says verified.

CREATE TABLE IF NOT EXISTS coverage_daily (
    day               date NOT NULL,
    instrument        text NOT NULL,
    table_name        text NOT NULL,
    rows              bigint NOT NULL,
    trade_seq_min     bigint,
    trade_seq_max     bigint,
    trade_seq_missing bigint,
    gap_seconds       double precision NOT NULL DEFAULT 0,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, table_name, instrument)
);

CREATE TABLE IF NOT EXISTS rollover_ledger (
    day           date NOT NULL,
    table_name    text NOT NULL,
    rows_hot      bigint,
    rows_warm     bigint,
    checksum_hot  text,
    checksum_warm text,
    status        text NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, table_name)
);
