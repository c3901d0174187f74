"""The monitor's one call to Airflow's REST API: triggering imr_reprocess_failures with the caller's
token (so Airflow checks their permission again), one run per bucket, and where that API is.

The caller's token goes only to an https:// URL or to plain http:// on a loopback address (the
api-server reaching itself). A failure is logged with what went wrong (URL, exception, Airflow's
status and body) under a request id; the client gets a generic message with that id only."""

from __future__ import annotations

import ipaddress
import logging
import os
import uuid
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
from fastapi import HTTPException

from imr.config import DAG_REPROCESS

from .links import run_url

log = logging.getLogger(__name__)

AIRFLOW_URL_ENV = "IMR_MONITOR_AIRFLOW_URL"
DEFAULT_AIRFLOW_URL = "http://localhost:8080"
TRIGGER_TIMEOUT_S = 30
# How much of Airflow's answer to a failed trigger goes to the log (never to the client).
LOGGED_BODY_CHARS = 500


def get_airflow_url() -> str:
    """Dependency: where this process reaches Airflow's REST API (the api-server itself, by default)."""
    return (os.environ.get(AIRFLOW_URL_ENV) or DEFAULT_AIRFLOW_URL).rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_may_go_to(url: str) -> bool:
    """Whether a user's JWT may be sent to `url`: https, or http to a loopback address only (a
    token sent in clear over a network can be replayed by anyone on the path).

    :param url: the Airflow REST API's base URL
    :return: True for https://host or http://localhost, 127.0.0.0/8, [::1]
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))


def _fail(status: int, public: str, what: str, *args: Any) -> NoReturn:
    """Log `what` (a %-format with args) under a new request id and raise HTTPException(status)
    whose detail is `public` and the id, nothing of `what`."""
    request_id = uuid.uuid4().hex[:16]
    log.warning("reprocess trigger failed [request %s]: " + what, request_id, *args)
    raise HTTPException(status, f"{public} (request id {request_id})", headers={"X-Request-ID": request_id})


_NOT_QUEUED = "the run could not be queued; an operator can find the cause in the api-server log"


def trigger_reprocess(airflow_url: str, token: str, bucket: str, keys: list[str], who: str) -> dict:
    """POST /api/v2/dags/imr_reprocess_failures/dagRuns; raises HTTPException with Airflow's status
    (401/403 as Airflow answered, 502 for anything else that is not a success, or for a URL the
    token may not go to).

    :param airflow_url: the REST API's base URL (get_airflow_url)
    :param token: the caller's Airflow JWT
    :param bucket: the bucket of `keys`
    :param keys: the keys to re-queue
    :param who: the caller's name, for the run's note
    :return: Airflow's answer (the new DAG run)
    """
    if not token_may_go_to(airflow_url):
        _fail(
            502,
            _NOT_QUEUED,
            "%s=%r is neither https:// nor http:// on loopback",
            AIRFLOW_URL_ENV,
            airflow_url,
        )
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
        _fail(502, _NOT_QUEUED, "could not reach Airflow at %s: %r", airflow_url, err)
    if r.status_code in (401, 403):
        _fail(
            r.status_code, f"Airflow refused to trigger {DAG_REPROCESS}", "Airflow answered %s", r.status_code
        )
    if r.status_code >= 300:
        _fail(
            502,
            _NOT_QUEUED,
            "Airflow at %s answered %s: %r",
            airflow_url,
            r.status_code,
            r.text[:LOGGED_BODY_CHARS],
        )
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
