"""Backfill an archive (or re-parse letters loaded by an older parser) with the nightly run's code.
Safe alongside the nightly run: keys are claimed per run, never processed by two runs at once."""

from datetime import datetime

from airflow.sdk import Param, dag

from imr_airflow.tasks import discover, ingest_tail, migrate

PARAMS = {
    "bucket": Param("", type="string", description="S3 bucket; empty: the `imr_bucket` Variable"),
    "prefix": Param(
        "", type="string", description="key prefix to backfill; empty: the `imr_prefix` Variable"
    ),
    "modified_since": Param(
        None, type=["null", "string"], description="only objects modified at/after (ISO)"
    ),
    "modified_until": Param(None, type=["null", "string"], description="only objects modified before (ISO)"),
    "batch_size": Param(200, type="integer", minimum=1, maximum=5000, description="letters per batch"),
    "max_lanes": Param(32, type="integer", minimum=1, maximum=32, description="parallel mapped lanes"),
    "reparse": Param(False, type="boolean", description="also re-parse letters from an older parser version"),
    "timeout_s": Param(30, type="number", minimum=1, description="hard per-letter parse timeout"),
}


@dag(
    dag_id="imr_backfill",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=PARAMS,
    tags=["imr"],
    doc_md=__doc__,
)
def imr_backfill():
    ingest_tail(migrate() >> discover())


imr_backfill()
