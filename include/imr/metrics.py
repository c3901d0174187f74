"""The per-run metrics of an ingestion run, as plain data (no Airflow import): what the run did to
the objects it processed, its lanes and its duration. imr_airflow.metrics sends them through
Airflow's `Stats` facade (StatsD or OpenTelemetry, as the deployment configures), under `imr.`.

Names (docs/operations.md): counters imr.letters_loaded, imr.duplicates, imr.quarantined and
imr.quarantined.<code>; gauges imr.letters_per_second and imr.lanes; timer imr.run_duration."""

from __future__ import annotations

from dataclasses import dataclass

from imr.warehouse.db import transaction

PREFIX = "imr"


@dataclass(frozen=True)
class Metric:
    """One value to send: `kind` is "incr" (a counter), "gauge" or "timing" (milliseconds)."""

    kind: str
    name: str
    value: float


def run_counts(conn, run_id: str) -> dict[str, int]:
    """{status: objects} for the objects `run_id` processed (its last run), and {code: n} of its
    quarantined ones under "quarantined.<code>"; read-only."""
    with transaction(conn) as cur:
        cur.execute(
            "SELECT status, error_code, count(*) FROM imr.s3_objects WHERE last_run_id = %s"
            " AND status IN ('loaded', 'quarantined', 'duplicate') GROUP BY 1, 2",
            (run_id,),
        )
        out: dict[str, int] = {}
        for status, code, n in cur.fetchall():
            out[status] = out.get(status, 0) + n
            if status == "quarantined":
                key = f"quarantined.{code or 'unknown'}"
                out[key] = out.get(key, 0) + n
    return out


def run_metrics(counts: dict[str, int], lanes: int, duration_s: float) -> list[Metric]:
    """The run's metrics from run_counts(), its lane count and its duration so far (seconds).
    letters/s is the letters loaded over the run's duration (zero for an instant run)."""
    loaded = counts.get("loaded", 0)
    out = [
        Metric("incr", f"{PREFIX}.letters_loaded", loaded),
        Metric("incr", f"{PREFIX}.duplicates", counts.get("duplicate", 0)),
        Metric("incr", f"{PREFIX}.quarantined", counts.get("quarantined", 0)),
    ]
    out += [
        Metric("incr", f"{PREFIX}.{key}", n)
        for key, n in sorted(counts.items())
        if key.startswith("quarantined.")
    ]
    out += [
        Metric(
            "gauge", f"{PREFIX}.letters_per_second", round(loaded / duration_s, 3) if duration_s > 0 else 0.0
        ),
        Metric("gauge", f"{PREFIX}.lanes", lanes),
        Metric("timing", f"{PREFIX}.run_duration", round(duration_s * 1000.0, 1)),
    ]
    return out
