-- Least privilege for whatever loads letters: a NOLOGIN group role; grant it to a login role
-- (GRANT imr_loader TO etl_user). It may read and write imr's tables and nothing else: no DDL, no
-- access to other schemas. Roles are cluster-wide, so another database may have created it already
-- (possibly at this very moment: a concurrent CREATE ROLE fails with unique_violation).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'imr_loader') THEN
        CREATE ROLE imr_loader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- TEMPORARY: load_batch COPYs into temp staging tables.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO imr_loader', current_database());
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

GRANT USAGE ON SCHEMA imr TO imr_loader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA imr TO imr_loader;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA imr TO imr_loader;
-- Tables added by later migrations (run by the same owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA imr GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO imr_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA imr GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO imr_loader;
-- The migration history is the owner's business.
REVOKE INSERT, UPDATE, DELETE ON imr.schema_migrations FROM imr_loader;
