-- Lanes pull batches instead of being dealt them: a lane leases the next unfinished batch of its run
-- (claim_next_batch), renews the lease while it works, and loses it when it stops renewing (its
-- worker died), so another lane of the run, or the run's retry, takes the batch over. lease_owner is
-- the lane attempt ("run_id|map_index|try"); NULL when no lane ever held the batch.
ALTER TABLE imr.batches
    ADD COLUMN lease_owner      TEXT,
    ADD COLUMN lease_expires_at TIMESTAMPTZ;

-- The claim looks only at a run's unfinished batches: keep that lookup small on an archive's worth
-- of finished ones.
CREATE INDEX IF NOT EXISTS batches_run_unfinished_idx ON imr.batches (run_id, batch_id)
    WHERE finished_at IS NULL;
