"""Whole-archive data-quality sweep: the nightly runs judge only the rows they touched, so this
runs the same checks (same names, recorded in imr.dq_results under this run's id, gated the same
way) over every letter, item and citation and reconciles the whole manifest. It first lists the
prefix and registers any object the manifest lacks (an S3 notification the nightly run never got:
docs/discovery.md), counted in the `discovery_unseen_objects` result. Weekly, and after a
backfill with reparse (the `imr_letters_reparsed` asset)."""

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag

from imr.config import DAG_SWEEP
from imr.quality import SETTLE_HOURS
from imr_airflow.alerting import dag_alerting
from imr_airflow.tasks import REPARSED_ASSET, check_schema, reconcile_listing
from imr_airflow.wiring import sweep_tail

PARAMS = {
    "settle_hours": Param(
        SETTLE_HOURS,
        type="number",
        minimum=0,
        description="reconcile only objects unchanged for this long (a run in progress holds newer ones)",
    ),
    "reconcile_listing": Param(
        True,
        type="boolean",
        description="list the prefix first and register what the manifest lacks (missed S3 notifications)",
    ),
}


@dag(
    dag_id=DAG_SWEEP,
    # Sundays 04:00 UTC, after the nightly run of 02:00.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 4 * * 0", timezone="UTC"), assets=REPARSED_ASSET
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    default_args={"owner": "imr", "retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["imr", "quality"],
    doc_md=__doc__,
    **dag_alerting(),  # a failing sweep mails like a failed run; it has no deadline
)
def imr_quality_sweep():
    sweep_tail(check_schema() >> reconcile_listing())


imr_quality_sweep()
