"""Nightly ingestion: new or changed letters under the prefix -> warehouse, behind quality gates."""

from datetime import datetime

from airflow.sdk import Param, dag

from imr_airflow.tasks import discover, ingest_tail, migrate

PARAMS = {
    "bucket": Param("", type="string", description="S3 bucket; empty: the `imr_bucket` Variable"),
    "prefix": Param("", type="string", description="key prefix; empty: the `imr_prefix` Variable"),
    "batch_size": Param(200, type="integer", minimum=1, maximum=5000, description="letters per batch"),
    "max_lanes": Param(32, type="integer", minimum=1, maximum=32, description="parallel mapped lanes"),
    "timeout_s": Param(30, type="number", minimum=1, description="hard per-letter parse timeout"),
}


@dag(
    dag_id="imr_ingest_nightly",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["imr"],
    doc_md=__doc__,
)
def imr_ingest_nightly():
    ingest_tail(migrate() >> discover())


imr_ingest_nightly()
