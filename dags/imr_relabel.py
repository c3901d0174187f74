"""Relabel the stored items with the deployed request classifier, without re-parsing any PDF.

Run it after deploying a change to `imr.enrich` (rules, drug lexicon, taxonomy) with a bumped
`imr.enrich.CLASSIFIER_VERSION`: every item of an older version gets `category`, `subcategory`,
`label_basis`, the evidence columns and its citations recomputed from its stored text, in batches of
`batch_letters` letters (one transaction each). Idempotent: a rerun or a retry only finishes what is
left; `force` relabels every item again. Each run is a row of `imr.relabel_runs`; the analytics
views show the new labels as soon as each batch commits."""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag

from imr.config import DAG_RELABEL
from imr_airflow.alerting import dag_alerting
from imr_airflow.relabel import relabel_items
from imr_airflow.tasks import check_schema

PARAMS = {
    "batch_letters": Param(500, type="integer", minimum=1, description="letters per transaction"),
    "force": Param(False, type="boolean", description="also relabel items already of the current version"),
}


@dag(
    dag_id=DAG_RELABEL,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=PARAMS,
    max_active_runs=1,
    tags=["imr", "labels"],
    default_args={"owner": "imr", "retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
    **dag_alerting(),
)
def imr_relabel():
    check_schema() >> relabel_items()


imr_relabel()
