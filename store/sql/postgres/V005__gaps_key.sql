-- Warm store, version 5 (same in both dialects): a gap is identified by its connection too
-- (QuestDB's dedup key: two gaps of one kind and instrument starting at the same microsecond
-- on different connections are different gaps).
DROP INDEX IF EXISTS gaps_dedup;
CREATE UNIQUE INDEX IF NOT EXISTS gaps_dedup ON gaps (instrument, ts, kind, connection);
