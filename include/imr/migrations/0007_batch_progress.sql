-- Progress of a running ingestion (imr.progress, the monitor's "Runs in progress"): counted from a
-- run's batches, a few thousand rows for the whole archive, instead of from its manifest rows (1.7
-- million); the manifest stays the source of truth, these columns are its per-batch summary.
-- n_keys: generated, so claim_batches writes nothing new. loaded / quarantined / duplicate: what the
-- batch's load did to its objects, written by load_batch in the transaction that sets finished_at
-- (NULL on batches finished before this migration); keys in none of them went back to pending
-- (changed in S3 while the run held them).
ALTER TABLE imr.batches
    ADD COLUMN n_keys      INT GENERATED ALWAYS AS (cardinality(keys)) STORED,
    ADD COLUMN loaded      INT,
    ADD COLUMN quarantined INT,
    ADD COLUMN duplicate   INT;

-- No new index: a run's batches are found by batches_run_idx and the active runs by
-- batches_run_unfinished_idx (0005); imr.progress reads about 8,500 batch rows in ~10 ms for a
-- 1.7-million-key run, where counting the run's manifest rows takes ~400 ms.
