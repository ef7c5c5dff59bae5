-- Warm store, version 5 (same in both dialects): a gap is identified by its connection too
-- (QuestDB's dedup key: two gaps of one kind and instrument starting at the same microsecond
-- on different connections are different gaps).
-- TimescaleDB changes no unique index of compressed chunks: gaps is small, its chunks are
-- decompressed first (the rollover compresses each day again when it loads one).
SELECT decompress_chunk(c, if_compressed => true) FROM show_chunks('gaps') c;
DROP INDEX IF EXISTS gaps_dedup;
CREATE UNIQUE INDEX IF NOT EXISTS gaps_dedup ON gaps (instrument, ts, kind, connection);
-- every unique-index column is a segmentby or orderby column (what TimescaleDB needs for
-- compressed inserts to keep the index's promise)
ALTER TABLE gaps SET (timescaledb.compress_orderby = 'ts, kind, connection');
