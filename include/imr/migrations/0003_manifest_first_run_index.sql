-- The run reconciliation check looks objects up by first_run_id as well as last_run_id; without
-- this index it scans the whole manifest (a million rows after a backfill) once per run.
CREATE INDEX IF NOT EXISTS s3_objects_first_run_idx ON imr.s3_objects (first_run_id);
