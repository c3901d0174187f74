"""Re-queue quarantined letters (all, by error code, or by key) after a parser fix, and run them
through the same parse, load and quality gates as the nightly run."""

from datetime import datetime

from airflow.sdk import Param, dag

from imr_airflow.alerting import dag_alerting
from imr_airflow.params import common_params
from imr_airflow.tasks import requeue
from imr_airflow.wiring import COMMON_DAG_ARGS, ingest_tail

PARAMS = common_params("only keys under this prefix") | {
    "error_codes": Param([], type="array", description="only these error codes (empty: all)"),
    "keys": Param([], type="array", description="only these keys (empty: all)"),
}


@dag(
    dag_id="imr_reprocess_failures",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=PARAMS,
    **COMMON_DAG_ARGS,
    doc_md=__doc__,
    **dag_alerting(),
)
def imr_reprocess_failures():
    ingest_tail(requeue())  # requeue checks the schema first


imr_reprocess_failures()
