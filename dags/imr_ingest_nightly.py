"""Nightly ingestion: new or changed letters under the prefix -> warehouse, behind quality gates.
Discovery drains the bucket's S3 notifications when the `imr_events_queue_url` Variable names a
queue (docs/discovery.md), else lists the prefix."""

from datetime import datetime

from airflow.sdk import dag

from imr.config import DAG_NIGHTLY
from imr_airflow.alerting import dag_alerting, nightly_deadline
from imr_airflow.params import common_params, discovery_params
from imr_airflow.tasks import discover
from imr_airflow.wiring import COMMON_DAG_ARGS, ingest_tail


@dag(
    dag_id="imr_ingest_nightly",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=common_params() | discovery_params(),
    **COMMON_DAG_ARGS,
    doc_md=__doc__,
    **dag_alerting(nightly_deadline(DAG_NIGHTLY)),
)
def imr_ingest_nightly():
    ingest_tail(discover())  # discover checks the schema first


imr_ingest_nightly()
