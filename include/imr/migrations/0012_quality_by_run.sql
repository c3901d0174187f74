-- The quality gates read the run's recorded results (imr.quality.gate_sql: the latest result of each
-- check for one run_id) instead of running every check a second time. Without this index each gate
-- scans imr.dq_results, which grows by a few dozen rows every run. Numbered 0012: 0008-0010 belong
-- to changes developed alongside this one.
--
-- The run-scoped checks themselves need no new index: they select the run's case numbers through
-- s3_objects_last_run_idx and reach letters, items and item_citations by their primary keys, all of
-- which lead with case_number (checked with EXPLAIN at 400 k letters: bench/quality_scope.py).
CREATE INDEX IF NOT EXISTS dq_results_run_check_idx ON imr.dq_results (run_id, check_name, id DESC);
