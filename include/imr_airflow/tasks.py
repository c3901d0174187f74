"""The @task callables the ingestion DAGs share (their wiring is imr_airflow.wiring). Each takes its
clients from imr_airflow.connections and hands them to plain functions in `imr`; XCom carries counts
and lane numbers, never letters."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, TriggerRule, Variable, get_current_context, task
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from imr import alerts, discovery, metrics, pipeline, quality, warehouse
from imr.config import POOL_WAREHOUSE, VAR_BUCKET, VAR_EVENTS_QUEUE_URL, VAR_PREFIX
from imr.parse.limits import Limits
from imr_airflow import lineage
from imr_airflow import metrics as run_metrics
from imr_airflow.connections import s3_client, warehouse_connection
from imr_airflow.params import DEFAULT_LEASE_S, pool_slots, quarantine_thresholds

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
    No retries: waiting does not fix a schema. The first task of imr_quality_sweep and imr_relabel;
    the ingestion DAGs check in their first task instead (require_schema)."""
    with warehouse_connection() as conn:
        return warehouse.check_schema(conn)


def require_schema(conn) -> None:
    """check_schema inside an ingestion DAG's first task (discover, requeue), which retries on
    outages: a schema out of date fails that task at once, without its retries, before it writes a
    row. One task fewer before the lanes saves a run a task start and a scheduling step (issue 18).

    :param conn: a warehouse connection.
    """
    try:
        warehouse.check_schema(conn)
    except warehouse.SchemaOutOfDate as exc:
        raise AirflowFailException(str(exc)) from exc


def discovery_mode(params: dict[str, Any]) -> tuple[str, str]:
    """The run's discovery mode and queue URL: the `discovery` param (absent, as in the backfill:
    listing) against the `imr_events_queue_url` Variable. "auto" drains the queue when the Variable
    names one; a windowed or reparse run always lists (a queue knows nothing of either)."""
    wanted = params.get("discovery") or "listing"
    if params.get("modified_since") or params.get("modified_until") or params.get("reparse"):
        wanted = "listing"
    if wanted == "listing":
        return wanted, ""  # no Variable read: the backfill's discover pays no extra API call
    queue_url = Variable.get(VAR_EVENTS_QUEUE_URL, default="") or ""
    if wanted == "auto":
        wanted = "events" if queue_url else "listing"
    if wanted == "events" and not queue_url:
        raise ValueError(f"discovery=events needs the {VAR_EVENTS_QUEUE_URL} Variable (the SQS queue URL)")
    return wanted, queue_url


@task(**RETRY)
def discover() -> int:
    """Checks the warehouse schema (require_schema), then registers new or changed objects as
    pending: from the bucket's S3 notifications (events mode, docs/discovery.md: no listing) or by
    listing the prefix page by page."""
    ctx = get_current_context()
    params = ctx["params"]
    bucket, prefix = target(params)
    mode, queue_url = discovery_mode(params)
    if mode == "events":
        from imr_airflow.connections import sqs_client

        with sqs_client() as sqs, warehouse_connection() as conn:
            require_schema(conn)
            report = discovery.drain_events(
                sqs,
                queue_url,
                conn,
                bucket,
                prefix,
                ctx["run_id"],
                max_messages=int(params.get("events_max_messages") or discovery.DEFAULT_MAX_MESSAGES),
            )
        log.info("discovery from events: %s", report.line())
        return report.pending
    with s3_client() as s3, warehouse_connection() as conn:
        require_schema(conn)
        pending = pipeline.discover(
            s3,
            conn,
            bucket,
            prefix,
            ctx["run_id"],
            modified_since=_ts(params.get("modified_since")),
            modified_until=_ts(params.get("modified_until")),
            reparse=bool(params.get("reparse")),
        )
    log.info("discovered %d new or changed object(s) under s3://%s/%s", pending, bucket, prefix)
    return pending


@task(**RETRY)
def reconcile_listing() -> dict[str, Any]:
    """imr_quality_sweep: lists the whole prefix and registers what the manifest lacks (lost or
    never-sent notifications), reporting how many; the next nightly run loads them."""
    ctx = get_current_context()
    params = ctx["params"]
    if params.get("reconcile_listing") is False:
        raise AirflowSkipException("reconcile_listing is off for this run")
    bucket, prefix = target(params)
    with s3_client() as s3, warehouse_connection() as conn:
        found = discovery.reconcile(s3, conn, bucket, prefix, ctx["run_id"])
        quality.record_results(
            conn, ctx["run_id"], [(discovery.UNSEEN_CHECK, found.unseen == 0, found.unseen)]
        )
    run_metrics.emit(
        [
            metrics.Metric("gauge", f"{metrics.PREFIX}.reconciliation_listed", found.listed),
            metrics.Metric("gauge", f"{metrics.PREFIX}.reconciliation_unseen", found.unseen),
            metrics.Metric("gauge", f"{metrics.PREFIX}.reconciliation_changed", found.changed),
            metrics.Metric(
                "timing", f"{metrics.PREFIX}.reconciliation_duration", round(found.seconds * 1000, 1)
            ),
        ],
        tags={"dag_id": ctx["dag"].dag_id},
    )
    (log.warning if found.unseen or found.changed else log.info)(
        "%s under s3://%s/%s", found.line(), bucket, prefix
    )
    return {"listed": found.listed, "unseen": found.unseen, "changed": found.changed}


@task(**RETRY)
def requeue() -> int:
    """imr_reprocess_failures: checks the warehouse schema (require_schema), then puts quarantined
    objects (all, by error code or by key) back to pending."""
    params = get_current_context()["params"]
    bucket, _ = target(params)
    with warehouse_connection() as conn:
        require_schema(conn)
        n = warehouse.requeue_failures(
            conn, bucket, error_codes=params.get("error_codes") or None, keys=params.get("keys") or None
        )
    log.info("re-queued %d quarantined object(s)", n)
    return n


def lane_count(max_lanes: int, batches: int, max_map_length: int, slots: int, parallelism: int = 0) -> int:
    """Lanes for a run: `max_lanes`, or else the pool's slots but no more than the tasks Airflow runs
    at once (core.parallelism: a lane beyond it only starts when another has finished, finds no
    batch left and adds a task start to the run's end); never more than there are batches (an idle
    lane only costs a task start) nor than Airflow maps (core.max_map_length)."""
    default = min(slots, parallelism) if parallelism > 0 else slots
    return max(0, min(max_lanes or default, batches, max_map_length))


@task(**RETRY)
def plan() -> list[dict[str, int]]:
    """Claims this run's pending keys into batches and starts that many lanes (see lane_count); the
    lanes pull the batches themselves, so the plan is just lane numbers."""
    ctx = get_current_context()
    params = ctx["params"]
    bucket, prefix = target(params)
    max_lanes = int(params.get("max_lanes") or 0)
    max_map_length = conf.getint("core", "max_map_length")
    parallelism = conf.getint("core", "parallelism")
    # The lanes there will be unless the batches are fewer: the tail batches are cut for them.
    upto = lane_count(max_lanes, max_map_length, max_map_length, pool_slots(), parallelism)
    with warehouse_connection() as conn:
        batch_ids = warehouse.claim_batches(
            conn, bucket, ctx["run_id"], int(params["batch_size"]), prefix=prefix or None, taper_lanes=upto
        )
    lanes = lane_count(max_lanes, len(batch_ids), max_map_length, pool_slots(), parallelism)
    log.info(
        "claimed %d batch(es) of up to %s keys for %d lane(s)", len(batch_ids), params["batch_size"], lanes
    )
    return [{"lane": i, "lanes": lanes} for i in range(lanes)]


def lane_label(lane: int, lanes: int, totals: dict[str, int] | None) -> str:
    """The mapped task's name in the UI: what the lane did, e.g. "lane 3 of 8: 5 batches, 1,000 letters"."""
    head = f"lane {lane + 1} of {lanes}"
    if totals is None:
        return f"{head}: running"
    batches = totals.get("batches", 0)
    return f"{head}: {batches:,} batch{'es' if batches != 1 else ''}, {totals.get('objects', 0):,} letters"


@task(pool=POOL_WAREHOUSE, map_index_template="{{ lane_label }}", **RETRY)
def process_lane(spec: dict[str, int]) -> dict[str, int]:
    """A lane: pulls the run's free batches one at a time and downloads, parses (killable worker
    process) and loads each in one transaction, until none is left (imr.pipeline.run_lane). A retry
    takes over its earlier try's batch at once; another lane takes a dead lane's batch when its
    lease expires."""
    ctx = get_current_context()
    params = ctx["params"]
    ti = ctx["ti"]
    limits = Limits(timeout_s=float(params.get("timeout_s") or Limits.timeout_s))
    lease = timedelta(seconds=float(params.get("lease_s") or DEFAULT_LEASE_S))
    owner, inherit = pipeline.lane_owner(ctx["run_id"], ti.map_index, ti.try_number)
    ctx["lane_label"] = lane_label(spec["lane"], spec["lanes"], None)
    with s3_client() as s3, warehouse_connection() as conn:
        report = pipeline.run_lane(
            s3,
            conn,
            ctx["run_id"],
            owner,
            inherit=inherit,
            lease=lease,
            limits=limits,
            task_id=ti.task_id,
            map_index=ti.map_index,
        )
        lineage.report_lane(conn, s3, *target(params))
    totals = report.totals()
    # The name shown for this mapped task in the UI (rendered when the task ends).
    ctx["lane_label"] = lane_label(spec["lane"], spec["lanes"], totals)
    log.info("lane %d/%d done: %s", spec["lane"] + 1, spec["lanes"], totals)
    return totals


def _record(conn, run_id: str, extra: list | None = None, **params) -> dict[str, Any]:
    results = quality.run_checks(conn, run_id, **params)
    quality.record_results(conn, run_id, results + (extra or []))
    failed = [f"{r.name}={r.observed}" for r in results if not r.passed]
    log.info("data quality: %d checks, %d failed %s", len(results), len(failed), failed)
    return {"checks": len(results), "failed": failed}


@task(trigger_rule=TriggerRule.ALL_DONE)
def record_quality() -> dict[str, Any]:
    """Runs every data-quality check over the rows this run touched, once, and stores the results in
    imr.dq_results (the gates of imr_airflow.wiring read them back and fail the run; this task only
    records, even after a lane failed, so the results exist whatever the gates decide), with the
    quarantine-rate checks, which alert but never fail; sends the run's metrics."""
    ctx = get_current_context()
    run_id = ctx["run_id"]
    with warehouse_connection() as conn:
        counts = metrics.run_counts(conn, run_id)  # one query for the alert and the metrics
        stats = alerts.quarantine_stats(counts)
        rate = alerts.quarantine_checks(stats, quarantine_thresholds(ctx["params"]))
        warnings = quality.run_warnings(conn, run_id)  # recorded, never a gate
        out = _record(conn, run_id, [*warnings, *rate], scope=quality.SCOPE_RUN)
    run_metrics.emit_run(counts, ctx)
    warned = [f"{r.name}={r.observed}" for r in warnings if not r.passed]
    if warned:
        log.warning("data quality warnings: %s", warned)
    tripped = [r.name for r in rate if not r.passed]
    if tripped:
        _quarantine_alert(ctx, stats, tripped)
    return out | {"warnings": warned, "quarantine_alerts": tripped}


def _quarantine_alert(ctx, stats: alerts.QuarantineStats, tripped: list[str]) -> None:
    """The quarantine-rate alert: counts by code and the monitor filtered to the run. It does not
    fail the run: the letters that parsed are loaded."""
    from imr_airflow import alerting

    base = alerting.base_url()
    alert = alerts.Alert(
        alerts.KIND_QUARANTINE,
        ctx["dag"].dag_id,
        ctx["run_id"],
        counts=stats.by_code,
        processed=stats.processed,
        link=alerts.monitor_url(base, ctx["run_id"]),
        detail=f"Thresholds exceeded: {', '.join(tripped)}",
    )
    log.warning("quarantine alert: %d of %d quarantined %s", stats.quarantined, stats.processed, tripped)
    alerting.send(alert, ctx)


@task(retries=1, retry_delay=timedelta(minutes=5))
def record_sweep() -> dict[str, Any]:
    """imr_quality_sweep: the same checks over the whole archive and manifest, recorded under the
    sweep's run_id for its gates."""
    ctx = get_current_context()
    settle_hours = float(ctx["params"].get("settle_hours") or quality.SETTLE_HOURS)
    with warehouse_connection() as conn:
        return _record(conn, ctx["run_id"], scope=quality.SCOPE_ARCHIVE, settle_hours=settle_hours)


# The imr_quality_sweep DAG schedules on this besides its weekly time: a reparse backfill re-writes
# letters outside any nightly run's scope, so the whole archive is judged again.
REPARSED_ASSET = Asset(name="imr_letters_reparsed")


@task(outlets=[REPARSED_ASSET])
def announce_reparse() -> bool:
    """Emits REPARSED_ASSET after a backfill with reparse passed its gates; skipped (no event)
    otherwise."""
    if not get_current_context()["params"].get("reparse"):
        raise AirflowSkipException("not a reparse backfill")
    return True


@task(outlets=[LETTERS_ASSET])
def publish() -> dict[str, int]:
    """Refreshes the Insights aggregates for the days the run's writes marked (migration 0014),
    marks the letters table updated for downstream DAGs; returns the objects this run ended, by
    status and quarantine code. The run's rows only: whole-table counts here took 18 s of every
    nightly run at 1.7 M letters (`make run`'s summary still prints them)."""
    run_id = get_current_context()["run_id"]
    with warehouse_connection() as conn:
        refreshed = warehouse.refresh_insights(conn)
        counts = metrics.run_counts(conn, run_id)
    log.info("this run ended: %s; insights aggregates: %s", counts, refreshed.as_json())
    return counts


@task(trigger_rule=TriggerRule.ALL_DONE)
def release_claims() -> int:
    """Hands back keys a failed run still holds, so the next run can take them at once, and the
    leases its lanes still hold."""
    run_id = get_current_context()["run_id"]
    with warehouse_connection() as conn:
        warehouse.release_leases(conn, run_id)
        return warehouse.release_claims(conn, run_id)
