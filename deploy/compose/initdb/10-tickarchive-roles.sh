#!/bin/sh
# Runs once, when the timescaledb container initialises an empty data directory
# (/docker-entrypoint-initdb.d). Creates the group roles the migrations grant to
# (store/sql/*/V004__grants.sql) and the API's read-only login role. The schema owner is
# POSTGRES_USER (tickarchive_owner), who runs `tickarchive migrate`.
set -eu
psql -X -w -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v reader_password="$TICKARCHIVE_READER_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', r) FROM unnest(ARRAY['tickarchive_read', 'tickarchive_write']) AS r
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
SELECT format('CREATE ROLE tickarchive_reader LOGIN PASSWORD %L IN ROLE tickarchive_read', :'reader_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickarchive_reader') \gexec
SQL
