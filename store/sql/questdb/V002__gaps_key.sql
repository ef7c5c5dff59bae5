-- QuestDB, version 2: a gap is identified by its connection too.
--
-- Two gaps of one kind and instrument that start at the same microsecond on different
-- connections (a fault that drops every connection at once; one downtime gap per
-- connection after a crash) are different gaps: with (ts, instrument, kind) alone the
-- upsert kept one of them.
ALTER TABLE gaps DEDUP ENABLE UPSERT KEYS(ts, instrument, kind, connection);
