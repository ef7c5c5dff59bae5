-- Warm store, version 7 (same in both dialects): the API's keys and metered usage, and
-- the outcome of every lifecycle job run.
--
-- api_keys: one row per issued API key. Only the SHA-256 of the key is stored (the key
--   itself is shown once by `tickarchive keys add`); plan names a plan of api.plans;
--   revoked_at set = the key is refused (within api.keys_refresh_s).
-- api_usage: per key and UTC day, what it used (requests, rows returned, bytes sent,
--   stream messages, requests refused by a limit). The API adds to it every
--   api.usage_flush_s, so its reader role may INSERT and UPDATE this one table.
-- job_runs: one row per run of a lifecycle job (archive export, archive verify, ...), ok or
--   failed with a message; tickarchive_archive_failures_total counts the failed archive runs.

CREATE TABLE IF NOT EXISTS api_keys (
    key_id     text PRIMARY KEY,
    key_sha256 text NOT NULL UNIQUE,
    plan       text NOT NULL,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE IF NOT EXISTS api_usage (
    key_id          text NOT NULL,
    day             date NOT NULL,
    requests        bigint NOT NULL DEFAULT 0,
    rows            bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    stream_messages bigint NOT NULL DEFAULT 0,
    limited         bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, day)
);

CREATE TABLE IF NOT EXISTS job_runs (
    job         text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL CHECK (status IN ('ok', 'failed')),
    detail      text NOT NULL DEFAULT '',
    PRIMARY KEY (job, started_at)
);

GRANT SELECT ON api_keys, api_usage, job_runs TO tickarchive_read;
GRANT INSERT, UPDATE ON api_usage TO tickarchive_read;
GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys, api_usage, job_runs TO tickarchive_write;
