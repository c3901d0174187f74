"""Links from a failure into the Airflow UI: the UI's root path, the run and task-instance URLs, the
lookup of a run's DAG in Airflow's metadata database (imr.parse_failures stores the run id only),
and the JSON-ready rows that carry those links."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.configuration import conf

from imr.config import DAG_IDS

# {run_id: dag_id} for some run ids: how a row finds the DAG its run belongs to.
RunDags = Callable[[Iterable[str]], dict[str, str]]


def ui_root() -> str:
    """Path of the Airflow UI's root ([api] base_url's path), ending in '/'."""
    path = urlsplit(conf.get("api", "base_url", fallback="") or "/").path or "/"
    return path if path.endswith("/") else path + "/"


def quote_segment(value: str) -> str:
    """`value` as one URL path segment (every reserved character escaped, '/' included)."""
    return quote(str(value), safe="")


def dag_url(dag_id: str) -> str:
    """The Airflow UI's page of a DAG.

    :param dag_id: the DAG.
    :return: the URL.
    """
    return f"{ui_root()}dags/{quote_segment(dag_id)}"


def run_url(dag_id: str, run_id: str) -> str:
    """The Airflow UI's page of a DAG run.

    :param dag_id: the DAG.
    :param run_id: the run.
    :return: the URL.
    """
    return f"{dag_url(dag_id)}/runs/{quote_segment(run_id)}"


def task_instance_url(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """The task instance's page in the Airflow 3 UI; its default tab is the log."""
    url = f"{run_url(dag_id, run_id)}/tasks/{quote_segment(task_id)}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{int(map_index)}"
    return url


def run_dags_from_metadata(run_ids: Iterable[str]) -> dict[str, str]:
    """{run_id: dag_id} for the runs of the ingestion DAGs (imr.config.DAG_IDS) among `run_ids`,
    from Airflow's metadata DB. A run id two DAGs share maps to the first in DAG_IDS."""
    run_ids = sorted({r for r in run_ids if r})
    if not run_ids:
        return {}
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_id, DagRun.dag_id).where(DagRun.run_id.in_(run_ids), DagRun.dag_id.in_(DAG_IDS))
        ).all()
    found: dict[str, str] = {}
    for run_id, dag_id in sorted(rows, key=lambda r: DAG_IDS.index(r[1]), reverse=True):
        found[run_id] = dag_id
    return found


def get_run_dags() -> RunDags:
    """Dependency: how rows find their DAG (the tests override it)."""
    return run_dags_from_metadata


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _log_url(dag_id: str | None, row: dict[str, Any]) -> str | None:
    if not (dag_id and row["task_id"]):
        return None
    return task_instance_url(dag_id, row["run_id"], row["task_id"], row["map_index"])


def annotate(rows: list[dict[str, Any]], run_dags: RunDags) -> list[dict[str, Any]]:
    """JSON-ready rows with the links the page shows: the run and task instance in the Airflow UI
    (when the run is found among the ingestion DAGs' runs)."""
    dags = run_dags(r["run_id"] for r in rows)
    out = []
    for r in rows:
        row = {k: _iso(v) for k, v in r.items()}
        dag_id = dags.get(r["run_id"])
        row["dag_id"] = dag_id
        row["run_url"] = run_url(dag_id, r["run_id"]) if dag_id else None
        row["log_url"] = _log_url(dag_id, r)
        out.append(row)
    return out
