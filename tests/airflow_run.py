"""Runs a DAG for real with `airflow dags test` on the embedded services and reads the outcome from
Airflow's metadata database. Each call points the DAG at a test's own warehouse database and bucket
through the same AIRFLOW_CONN_*/AIRFLOW_VAR_* variables production uses."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[1]


@dataclass
class DagRun:
    dag_id: str
    run_id: str
    state: str
    log: str


def dsn_to_uri(dsn: str) -> str:
    kv = dict(part.split("=", 1) for part in dsn.split())
    return f"postgresql://{kv['user']}@{kv['host']}:{kv['port']}/{kv['dbname']}"


def _migrate(dsn: str) -> None:
    """What deployment does before any run (the DAGs only check the schema)."""
    from imr import warehouse

    conn = psycopg2.connect(dsn)
    try:
        warehouse.upgrade(conn)
    finally:
        conn.close()


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
        _migrate(warehouse_dsn)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_CONN_IMR_WAREHOUSE": dsn_to_uri(warehouse_dsn),
            "AIRFLOW_VAR_IMR_BUCKET": bucket,
            "AIRFLOW_VAR_IMR_PREFIX": "letters/",
            "IMR_TASK_RETRIES": "1",
            "IMR_RETRY_DELAY_SECONDS": "1",
        }
    )
    env.update(extra_env or {})
    cmd = ["bash", str(REPO / "scripts" / "airflow.sh"), "dags", "test", dag_id]
    if conf:
        cmd += ["-c", json.dumps(conf)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    artifacts = REPO / "artifacts" / "dag-runs"
    artifacts.mkdir(parents=True, exist_ok=True)
    with (artifacts / f"{dag_id}.log").open("a") as f:
        f.write(log)
    m = re.search(r"DagRun Finished: dag_id=\S+ logical_date=.*?run_id=(\S+?), .*?state=(\w+)", log)
    if not m:
        raise AssertionError(
            f"`airflow dags test {dag_id}` did not finish a run (exit {proc.returncode}):\n" + log[-4000:]
        )
    return DagRun(dag_id, m.group(1), m.group(2), log)


def metadata_query(sql: str, params: tuple) -> list[tuple]:
    uri = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")
    conn = psycopg2.connect(uri)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def task_states(run: DagRun) -> dict[tuple[str, int], tuple[str, int]]:
    rows = metadata_query(
        "SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
        (run.dag_id, run.run_id),
    )
    return {(t, m): (s, n) for t, m, s, n in rows}


def xcom_sizes(run: DagRun) -> dict[tuple[str, int], int]:
    rows = metadata_query(
        "SELECT task_id, map_index, length(value::text) FROM xcom WHERE dag_id = %s AND run_id = %s",
        (run.dag_id, run.run_id),
    )
    return {(t, m): n or 0 for t, m, n in rows}
