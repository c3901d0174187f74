"""The monitor's one call to Airflow's REST API: triggering imr_reprocess_failures with the caller's
token (so Airflow checks their permission again), one run per bucket, and where that API is."""

from __future__ import annotations

import os
from typing import Any

import httpx
from fastapi import HTTPException

from imr.config import DAG_REPROCESS

from .links import run_url

AIRFLOW_URL_ENV = "IMR_MONITOR_AIRFLOW_URL"
DEFAULT_AIRFLOW_URL = "http://localhost:8080"
TRIGGER_TIMEOUT_S = 30


def get_airflow_url() -> str:
    """Dependency: where this process reaches Airflow's REST API (the api-server itself, by default)."""
    return (os.environ.get(AIRFLOW_URL_ENV) or DEFAULT_AIRFLOW_URL).rstrip("/")


def trigger_reprocess(airflow_url: str, token: str, bucket: str, keys: list[str], who: str) -> dict:
    """POST /api/v2/dags/imr_reprocess_failures/dagRuns; raises HTTPException with Airflow's status
    (401/403 as Airflow answered, 502 for anything else that is not a success)."""
    body = {
        "logical_date": None,
        "conf": {"bucket": bucket, "keys": keys},
        "note": f"Queued from the IMR monitor by {who}: {len(keys)} object(s) in {bucket}",
    }
    try:
        r = httpx.post(
            f"{airflow_url}/api/v2/dags/{DAG_REPROCESS}/dagRuns",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TRIGGER_TIMEOUT_S,
        )
    except httpx.HTTPError as err:
        raise HTTPException(502, f"could not reach Airflow at {airflow_url}: {err}") from err
    if r.status_code in (401, 403):
        raise HTTPException(r.status_code, f"Airflow refused to trigger {DAG_REPROCESS}")
    if r.status_code >= 300:
        raise HTTPException(502, f"Airflow answered {r.status_code} to the trigger: {r.text[:300]}")
    return r.json()


def queue_reprocess(
    airflow_url: str, token: str, by_bucket: dict[str, list[str]], who: str
) -> list[dict[str, Any]]:
    """One imr_reprocess_failures run per bucket of {bucket: [key, ...]}:
    [{"bucket", "keys", "dag_id", "dag_run_id", "state", "run_url"}]."""
    queued = []
    for bucket, keys in by_bucket.items():
        run = trigger_reprocess(airflow_url, token, bucket, keys, who)
        run_id = run.get("dag_run_id")
        queued.append(
            {
                "bucket": bucket,
                "keys": keys,
                "dag_id": DAG_REPROCESS,
                "dag_run_id": run_id,
                "state": run.get("state"),
                "run_url": run_url(DAG_REPROCESS, run_id) if run_id else None,
            }
        )
    return queued
