"""The @task callables the ingestion DAGs share (their wiring is imr_airflow.wiring). Each takes its
clients from imr_airflow.connections and hands them to plain functions in `imr`; XCom carries counts
and lane numbers, never letters."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, TriggerRule, Variable, get_current_context, task

from imr import PARSER_VERSION, pipeline, quality, warehouse
from imr.config import POOL_WAREHOUSE, VAR_BUCKET, VAR_PREFIX
from imr.limits import Limits
from imr.s3_io import iter_pages
from imr_airflow.connections import s3_client, warehouse_connection
from imr_airflow.params import MAX_LANES

log = logging.getLogger(__name__)

# Downstream DAGs schedule on this: it is updated after a run's letters pass the quality gates.
LETTERS_ASSET = Asset(name="imr_letters", uri="postgres://imr_warehouse/imr/imr/letters")

# Transient S3 and database errors are retried with exponential backoff. The env overrides exist so
# tests can retry in seconds rather than minutes.
RETRY = {
    "retries": int(os.environ.get("IMR_TASK_RETRIES", "3")),
    "retry_delay": timedelta(seconds=float(os.environ.get("IMR_RETRY_DELAY_SECONDS", "20"))),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


def target(params: dict[str, Any]) -> tuple[str, str]:
    """Bucket and prefix: the run's params, falling back to the Airflow Variables."""
    bucket = params.get("bucket") or Variable.get(VAR_BUCKET)
    prefix = params.get("prefix")
    if prefix is None or prefix == "":
        prefix = Variable.get(VAR_PREFIX, default="")
    return bucket, prefix


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@task(retries=0)
def check_schema() -> list[str]:
    """Fails the run at once when the warehouse is not migrated to this package's version: the
    DAGs' login (imr_loader) has no DDL rights, so migrations belong to deployment, not to runs.
    No retries: waiting does not fix a schema."""
    with warehouse_connection() as conn:
        return warehouse.check_schema(conn)


@task(**RETRY)
def discover() -> int:
    """Lists the prefix page by page and registers new or changed objects as pending."""
    ctx = get_current_context()
    params = ctx["params"]
    bucket, prefix = target(params)
    with s3_client() as s3, warehouse_connection() as conn:
        pending = 0
        for page in iter_pages(
            s3, bucket, prefix, _ts(params.get("modified_since")), _ts(params.get("modified_until"))
        ):
            pending += warehouse.register_objects(conn, bucket, page, ctx["run_id"])
        if params.get("reparse"):
            pending += warehouse.mark_for_reparse(conn, bucket, PARSER_VERSION, prefix=prefix or None)
    log.info("discovered %d new or changed object(s) under s3://%s/%s", pending, bucket, prefix)
    return pending


@task(**RETRY)
def requeue() -> int:
    """imr_reprocess_failures: quarantined objects (all, by error code or by key) back to pending."""
    params = get_current_context()["params"]
    bucket, _ = target(params)
    with warehouse_connection() as conn:
        n = warehouse.requeue_failures(
            conn, bucket, error_codes=params.get("error_codes") or None, keys=params.get("keys") or None
        )
    log.info("re-queued %d quarantined object(s)", n)
    return n


@task(**RETRY)
def plan() -> list[dict[str, int]]:
    """Claims this run's pending keys into batches and deals them over at most MAX_LANES lanes."""
    ctx = get_current_context()
    params = ctx["params"]
    bucket, prefix = target(params)
    with warehouse_connection() as conn:
        batch_ids = warehouse.claim_batches(
            conn, bucket, ctx["run_id"], int(params["batch_size"]), prefix=prefix or None
        )
    lanes = min(MAX_LANES, int(params.get("max_lanes") or MAX_LANES), len(batch_ids))
    log.info(
        "claimed %d batch(es) of up to %s keys over %d lane(s)", len(batch_ids), params["batch_size"], lanes
    )
    return [{"lane": i, "lanes": lanes} for i in range(lanes)]


@task(pool=POOL_WAREHOUSE, map_index_template="{{ lane_label }}", **RETRY)
def process_lane(spec: dict[str, int]) -> dict[str, int]:
    """Downloads, parses (killable worker process) and loads this lane's batches, one transaction per
    batch. A retry resumes with the lane's unfinished batches; loads are idempotent."""
    ctx = get_current_context()
    params = ctx["params"]
    limits = Limits(timeout_s=float(params.get("timeout_s") or Limits.timeout_s))
    with s3_client() as s3, warehouse_connection() as conn:
        batch_ids = warehouse.unfinished_batches(conn, ctx["run_id"], spec["lane"], spec["lanes"])
        # The name shown for this mapped task in the UI (rendered when the task ends).
        span = (
            f"batches {batch_ids[0]}-{batch_ids[-1]} ({len(batch_ids)})" if batch_ids else "no batches left"
        )
        ctx["lane_label"] = f"lane {spec['lane'] + 1} of {spec['lanes']}: {span}"
        totals = pipeline.ingest_batches(
            s3, conn, batch_ids, limits=limits, task_id=ctx["ti"].task_id, map_index=ctx["ti"].map_index
        )
    log.info("lane %d/%d done: %s", spec["lane"] + 1, spec["lanes"], totals)
    return totals


@task(trigger_rule=TriggerRule.ALL_DONE)
def record_quality() -> dict[str, Any]:
    """Runs every data-quality check and stores the results in imr.dq_results (the gates of
    imr_airflow.wiring fail the run; this task only records, so the results exist even when a gate
    fails)."""
    ctx = get_current_context()
    with warehouse_connection() as conn:
        results = quality.run_checks(conn, ctx["run_id"])
        quality.record_results(conn, ctx["run_id"], results)
    failed = [f"{r.name}={r.observed}" for r in results if not r.passed]
    log.info("data quality: %d checks, %d failed %s", len(results), len(failed), failed)
    return {"checks": len(results), "failed": failed}


@task(outlets=[LETTERS_ASSET])
def publish() -> dict[str, Any]:
    """Marks the letters table updated for downstream DAGs; returns the run's counts."""
    with warehouse_connection() as conn:
        s = warehouse.summary(conn)
    log.info("warehouse: %s", s["rows"])
    return {"objects_by_status": s["objects_by_status"], "rows": s["rows"]}


@task(trigger_rule=TriggerRule.ALL_DONE)
def release_claims() -> int:
    """Hands back keys a failed run still holds, so the next run can take them at once."""
    with warehouse_connection() as conn:
        return warehouse.release_claims(conn, get_current_context()["run_id"])
