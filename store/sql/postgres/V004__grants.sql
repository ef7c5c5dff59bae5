-- Warm store, version 4 (same in both dialects): privileges.
--
-- Two NOLOGIN group roles carry the privileges; login roles are made members of them:
--   tickarchive_read   SELECT only (the API's role; postgres.reader_role is a member)
--   tickarchive_write  SELECT, INSERT, UPDATE, DELETE, TRUNCATE and the helper functions
--                      (the rollover's role; postgres.writer_role is a member)
-- The schema owner (postgres.owner_role, who runs these migrations) keeps DDL.
-- ALTER DEFAULT PRIVILEGES extends the grants to tables the owner creates later
-- (new partitions included: tickarchive_ensure_partition runs as the owner).
-- Creating the group roles needs CREATEROLE; against an external server without it,
-- create them once as an administrator:  CREATE ROLE tickarchive_read NOLOGIN; ...

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickarchive_read') THEN
        CREATE ROLE tickarchive_read NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickarchive_write') THEN
        CREATE ROLE tickarchive_write NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO tickarchive_read, tickarchive_write;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO tickarchive_read;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO tickarchive_write;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM tickarchive_write;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO tickarchive_read;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO tickarchive_write;

REVOKE ALL ON FUNCTION tickarchive_ensure_partition(regclass, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tickarchive_ensure_partition(regclass, date) TO tickarchive_write;
REVOKE ALL ON FUNCTION tickarchive_refresh_rollups(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tickarchive_refresh_rollups(timestamptz, timestamptz) TO tickarchive_write;
