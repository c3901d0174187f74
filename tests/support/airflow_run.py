"""The tests' use of imr_devtools.airflow_runner: a DAG run on the embedded services pointed at a test's
own warehouse database and bucket, through the same AIRFLOW_CONN_*/AIRFLOW_VAR_* variables production
uses, with quick task retries. The run, its state and its task instances come from the runner, which
reads them from Airflow's metadata database."""

from __future__ import annotations

import os
from pathlib import Path

from imr.config import CONN_WAREHOUSE, VAR_BUCKET, VAR_PREFIX
from imr_devtools.airflow_runner import DagRun, dsn_to_uri, metadata_query
from imr_devtools.airflow_runner import run_dag as _run_dag
from imr_devtools.scratch import migrate as migrate_warehouse

REPO = Path(__file__).resolve().parents[2]
__all__ = ["DagRun", "dsn_to_uri", "run_dag", "task_states", "xcom_sizes"]


def run_dag(
    dag_id: str,
    *,
    warehouse_dsn: str,
    bucket: str,
    conf: dict | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: int = 1500,
    migrate: bool = True,
) -> DagRun:
    if migrate:
        migrate_warehouse(
            warehouse_dsn
        )  # what deployment does before any run (the DAGs only check the schema)
    env = dict(os.environ)
    env.update(
        {
            f"AIRFLOW_CONN_{CONN_WAREHOUSE.upper()}": dsn_to_uri(warehouse_dsn),
            f"AIRFLOW_VAR_{VAR_BUCKET.upper()}": bucket,
            f"AIRFLOW_VAR_{VAR_PREFIX.upper()}": "letters/",
            "IMR_TASK_RETRIES": "1",
            "IMR_RETRY_DELAY_SECONDS": "1",
        }
    )
    env.update(extra_env or {})
    log_path = REPO / "artifacts" / "dag-runs" / f"{dag_id}.log"
    return _run_dag(dag_id, conf=conf, env=env, timeout=timeout, log_path=log_path)


def task_states(run: DagRun) -> dict[tuple[str, int], tuple[str, int]]:
    return run.task_states()


def xcom_sizes(run: DagRun) -> dict[tuple[str, int], int]:
    rows = metadata_query(
        "SELECT task_id, map_index, length(value::text) FROM xcom WHERE dag_id = %s AND run_id = %s",
        (run.dag_id, run.run_id),
    )
    return {(t, m): n or 0 for t, m, n in rows}
