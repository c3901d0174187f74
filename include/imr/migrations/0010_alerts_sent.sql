-- Alerts the DAGs sent (include/imr/alerts.py record_sent): the monitor's "last alert per DAG", so
-- whoever is on call sees what was sent and when. A handful of rows a day; imr_loader writes them
-- (0002's default privileges grant it the table and its sequence).
CREATE TABLE imr.alerts_sent (
    id       BIGSERIAL PRIMARY KEY,
    dag_id   TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    channels TEXT[] NOT NULL DEFAULT '{}',
    sent_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alerts_sent_dag_idx ON imr.alerts_sent (dag_id, sent_at DESC);
