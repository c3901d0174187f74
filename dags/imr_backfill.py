"""Backfill an archive (or re-parse letters loaded by an older parser) with the nightly run's code.
Safe alongside the nightly run: keys are claimed per run, never processed by two runs at once.
A reparse that passes its gates triggers `imr_quality_sweep` (the `imr_letters_reparsed` asset)."""

from datetime import datetime

from airflow.sdk import Param, dag

from imr.config import DAG_BACKFILL
from imr_airflow.alerting import backfill_deadline, dag_alerting
from imr_airflow.params import common_params
from imr_airflow.tasks import announce_reparse, discover
from imr_airflow.wiring import COMMON_DAG_ARGS, ingest_tail

PARAMS = common_params("key prefix to backfill") | {
    "modified_since": Param(
        None, type=["null", "string"], description="only objects modified at/after (ISO)"
    ),
    "modified_until": Param(None, type=["null", "string"], description="only objects modified before (ISO)"),
    "reparse": Param(False, type="boolean", description="also re-parse letters from an older parser version"),
}


@dag(
    dag_id="imr_backfill",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=PARAMS,
    **COMMON_DAG_ARGS,
    doc_md=__doc__,
    **dag_alerting(backfill_deadline(DAG_BACKFILL)),
)
def imr_backfill():
    ingest_tail(discover()) >> announce_reparse()  # discover checks the schema first


imr_backfill()
