"""Sends imr.metrics' per-run values through Airflow's `Stats` facade (the task SDK's), which the
task runner sets up from [metrics] (statsd_on / otel_on). Nothing configured: Stats drops them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.configuration import conf
from airflow.sdk.observability import stats
from airflow.sdk.observability.metrics import stats_utils
from airflow.sdk.observability.stats import Stats

from imr import metrics

log = logging.getLogger(__name__)
_initialized = False


def _ensure_backend() -> None:
    """Set up Stats from [metrics] once per process, as the task runner's main() does. A task run
    in-process (`airflow dags test`, the demo and the tests) never passes through that main(), and
    its Stats would drop everything; where it did, this only makes the same backend anew."""
    global _initialized
    if not _initialized:
        stats.initialize(
            factory=stats_utils.get_stats_factory(),
            export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=False),
        )
        _initialized = True


def emit(items: list[metrics.Metric], tags: dict[str, Any] | None = None) -> None:
    """Send each metric (counters with their count, gauges, timers in ms); a metrics backend that
    fails is logged, never fails the task."""
    _ensure_backend()
    for m in items:
        try:
            if m.kind == "incr":
                Stats.incr(m.name, count=int(m.value), tags=tags)
            elif m.kind == "gauge":
                Stats.gauge(m.name, m.value, tags=tags)
            else:
                Stats.timing(m.name, m.value, tags=tags)
        except Exception:
            log.exception("could not send metric %s", m.name)


def emit_run(counts: dict[str, int], ctx: dict[str, Any]) -> list[metrics.Metric]:
    """The run's metrics (imr.metrics.run_metrics) from its manifest counts (imr.metrics.run_counts)
    and the task context: the lane
    count is the plan's, the duration the run's so far (this task follows every lane)."""
    plan = ctx["ti"].xcom_pull(task_ids="plan") or []
    started = getattr(ctx.get("dag_run"), "start_date", None)
    duration = (datetime.now(UTC) - started).total_seconds() if started else 0.0
    items = metrics.run_metrics(counts, len(plan), duration)
    emit(items, tags={"dag_id": ctx["dag"].dag_id})
    log.info("metrics: %s", {m.name: m.value for m in items})
    return items
