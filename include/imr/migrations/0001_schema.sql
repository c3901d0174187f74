-- The warehouse: letters and their items (contract v1, ../shared/letter-record.md), the S3 manifest
-- that drives incremental loads, the quarantine log and data-quality results.
-- imr.schema_migrations is created by imr.warehouse.upgrade() itself.

CREATE TABLE imr.letters (
    case_number                TEXT PRIMARY KEY,
    date_assigned              DATE,
    date_of_injury             DATE,
    decision_date              DATE,
    ur_denial_date             DATE,
    application_received       DATE,
    priority                   TEXT,
    reviewer_specialty         TEXT,
    reviewer_licensure_states  TEXT[],
    patient_age                INT,
    patient_sex                TEXT,
    outcome                    TEXT CHECK (outcome IN ('Uphold', 'Overturn', 'Partially Overturn')),
    clinical_case_summary      TEXT,
    warnings                   JSONB NOT NULL DEFAULT '[]',
    -- Lineage: which object supplied the current version. The newest object (S3 LastModified) wins
    -- when several objects carry the same case (a corrected letter re-issued under a new key).
    source_bucket              TEXT NOT NULL,
    source_key                 TEXT NOT NULL,
    source_etag                TEXT NOT NULL,
    source_sha256              TEXT NOT NULL,
    source_last_modified       TIMESTAMPTZ,
    parser_version             TEXT NOT NULL,
    loaded_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE imr.items (
    case_number                     TEXT NOT NULL REFERENCES imr.letters ON DELETE CASCADE,
    seq                             INT NOT NULL CHECK (seq > 0),
    request                         TEXT NOT NULL,
    original_request                TEXT,
    decision                        TEXT NOT NULL CHECK (decision IN ('Upheld', 'Overturned')),
    claims_administrator_guideline  TEXT,
    maximus_guideline               TEXT,
    decision_rationale              TEXT,
    PRIMARY KEY (case_number, seq)
);

-- One row per S3 object ever listed. status: pending (to parse) -> processing (claimed by a run)
-- -> loaded | quarantined (parse failed; error_code) | duplicate (byte-identical to the object that
-- supplied the case's current version).
CREATE TABLE imr.s3_objects (
    bucket          TEXT NOT NULL,
    key             TEXT NOT NULL,
    etag            TEXT NOT NULL,
    size            BIGINT,
    last_modified   TIMESTAMPTZ,
    sha256          TEXT,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'loaded', 'quarantined', 'duplicate')),
    case_number     TEXT,
    parser_version  TEXT,
    attempts        INT NOT NULL DEFAULT 0,
    first_run_id    TEXT,
    last_run_id     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    -- The run holding the object, so a nightly run and a backfill never process one key at once.
    claimed_by      TEXT,
    claimed_at      TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, key)
);
CREATE INDEX s3_objects_status_idx ON imr.s3_objects (bucket, status);
CREATE INDEX s3_objects_last_run_idx ON imr.s3_objects (last_run_id);
CREATE INDEX s3_objects_case_number_idx ON imr.s3_objects (case_number);

-- Claimed work, so XCom carries batch ids rather than key lists.
CREATE TABLE imr.batches (
    batch_id     BIGSERIAL PRIMARY KEY,
    run_id       TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    keys         TEXT[] NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ
);
CREATE INDEX batches_run_idx ON imr.batches (run_id);

-- Every failed parse (history); the open ones (resolved_at IS NULL) are the current quarantine.
CREATE TABLE imr.parse_failures (
    id           BIGSERIAL PRIMARY KEY,
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    etag         TEXT NOT NULL,
    dag_run_id   TEXT NOT NULL,
    task_id      TEXT,
    map_index    INT,
    error_code   TEXT NOT NULL,
    message      TEXT,
    occurred_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at  TIMESTAMPTZ
);
CREATE INDEX parse_failures_key_idx ON imr.parse_failures (key, resolved_at);
-- A task retry of the same batch logs a failure once, not once per try.
CREATE UNIQUE INDEX parse_failures_open_once ON imr.parse_failures (bucket, key, etag, dag_run_id, error_code)
    WHERE resolved_at IS NULL;

CREATE TABLE imr.dq_results (
    id          BIGSERIAL PRIMARY KEY,
    check_name  TEXT NOT NULL,
    run_id      TEXT,
    passed      BOOLEAN NOT NULL,
    observed    TEXT,
    observed_numeric NUMERIC,
    checked_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX dq_results_check_idx ON imr.dq_results (check_name, checked_at DESC);
