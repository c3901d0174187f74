-- Least privilege for the read-only UI (the api-server: monitor, progress, insights): a NOLOGIN group
-- role; grant it to a login role (compose and the native stack: imr_ui). SELECT on exactly what
-- imr.monitor, imr.progress and imr.insights read (and the manifest row /download looks up), nothing
-- else: no INSERT/UPDATE/DELETE, no DDL, no sequences. No default privileges either: a
-- table added later is readable only once a migration grants it here. Roles are cluster-wide, so
-- another database may have created it already (see 0002).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'imr_reader') THEN
        CREATE ROLE imr_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO imr_reader', current_database());
END
$$;

GRANT USAGE ON SCHEMA imr TO imr_reader;
GRANT SELECT ON imr.s3_objects, imr.parse_failures, imr.batches, imr.letters, imr.items,
    imr.item_citations, imr.letter_timeliness TO imr_reader;
