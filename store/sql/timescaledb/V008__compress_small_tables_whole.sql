-- Warm store, TimescaleDB dialect, version 8 (none in the plain
-- PostgreSQL dialect, which does not compress): trades and instruments are compressed without
-- a segmentby column, ordered by instrument, ts (then the rest of the dedup key).
-- Segmenting by instrument gave each instrument its own compressed batch per day: with ~20
-- trades and one or two instrument rows per instrument-day the batches were nearly empty
-- and compression made these tables 3-4 times *larger* (measured by `tickarchive bench
-- cost` and on the PGlite TimescaleDB test server: trades 349 -> 1367 bytes/row, instruments
-- 250 -> 848; without segmentby 155 and 57). quotes, book_changes, index_ticks and
-- heartbeats have thousands of rows per segment and day and keep their settings (other
-- segmentby/orderby choices compressed them within 1 %: docs/cost-model.md).
-- Every unique-index column stays an orderby column (compressed unique inserts).
-- Chunks compressed under the old settings are decompressed, re-set and compressed again.
CREATE TEMP TABLE v008_compressed ON COMMIT DROP AS
    SELECT format('%I.%I', chunk_schema, chunk_name)::regclass AS chunk
    FROM timescaledb_information.chunks
    WHERE hypertable_schema = 'public' AND hypertable_name IN ('trades', 'instruments') AND is_compressed;
SELECT decompress_chunk(chunk, if_compressed => true) FROM v008_compressed;
ALTER TABLE trades SET (
    timescaledb.compress_segmentby = '',
    timescaledb.compress_orderby = 'instrument, ts, trade_id'
);
ALTER TABLE instruments SET (
    timescaledb.compress_segmentby = '',
    timescaledb.compress_orderby = 'instrument, ts'
);
SELECT compress_chunk(chunk, if_not_compressed => true) FROM v008_compressed;
