-- Warm store, plain PostgreSQL dialect, version 1: the tables of tickarchive/tables.py,
-- declaratively range-partitioned by ts into one partition per UTC day. Partitions are
-- created by tickarchive_ensure_partition(table, day) (below) before a day is loaded;
-- there is no default partition, so a row for a day without a partition is refused
-- rather than parked where it would block that day's partition later.
-- The unique indexes on the dedup keys make loads idempotent (ON CONFLICT DO NOTHING);
-- they lead with the segment_by column so they also serve per-instrument time-range reads.

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
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS quotes_dedup ON quotes (instrument, ts);
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
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS trades_dedup ON trades (instrument, ts, trade_id);
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
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS book_changes_dedup ON book_changes (instrument, ts, change_id, side, price);
-- One row per price index update (deribit_price_index.*).
CREATE TABLE IF NOT EXISTS index_ticks (
    ts         timestamptz NOT NULL,
    recv_ts    timestamptz NOT NULL,
    index_name text NOT NULL,
    price      double precision NOT NULL
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS index_ticks_dedup ON index_ticks (index_name, ts);
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
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS instruments_dedup ON instruments (instrument, ts);
-- Windows in which data may be missing: start (ts), end, instruments, kind, cause, status.
CREATE TABLE IF NOT EXISTS gaps (
    ts         timestamptz NOT NULL,
    end_ts     timestamptz,
    instrument text NOT NULL,
    kind       text NOT NULL,
    cause      text NOT NULL,
    connection text NOT NULL,
    status     text NOT NULL
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS gaps_dedup ON gaps (instrument, ts, kind);
-- One row per collector connection per second: liveness for /health.
CREATE TABLE IF NOT EXISTS collector_heartbeats (
    ts                    timestamptz NOT NULL,
    connection            text NOT NULL,
    connected             boolean NOT NULL,
    subscribed_channels   bigint NOT NULL,
    frames_total          bigint NOT NULL,
    last_frame_ts         timestamptz,
    journal_backlog_bytes bigint NOT NULL
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX IF NOT EXISTS collector_heartbeats_dedup ON collector_heartbeats (connection, ts);
-- Create the partition of `parent` (a table partitioned by RANGE on one timestamptz
-- column) that holds the UTC day `day`, unless it exists; returns it. Idempotent and safe
-- to call concurrently. SECURITY DEFINER: partitions are owned by the schema owner, so the
-- default privileges (reader SELECT, writer DML) apply to them.
CREATE OR REPLACE FUNCTION tickarchive_ensure_partition(parent regclass, day date)
RETURNS regclass
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    parent_schema text;
    parent_table text;
    part_name text;
    part regclass;
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF day IS NULL THEN
        RAISE EXCEPTION 'tickarchive_ensure_partition: day is NULL';
    END IF;
    SELECT n.nspname, c.relname INTO parent_schema, parent_table
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = parent;
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table p WHERE p.partrelid = parent AND p.partstrat = 'r') THEN
        RAISE EXCEPTION 'tickarchive_ensure_partition: % is not range-partitioned', parent;
    END IF;
    part_name := parent_table || '_' || to_char(day, 'YYYYMMDD');
    PERFORM pg_advisory_xact_lock(hashtext(parent_schema || '.' || part_name));
    part := to_regclass(format('%I.%I', parent_schema, part_name));
    IF part IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
            parent_schema, part_name, parent, lo, hi
        );
        part := to_regclass(format('%I.%I', parent_schema, part_name));
    END IF;
    RETURN part;
END
$$;
