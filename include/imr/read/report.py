"""Reporting on the warehouse: `summary`, the counts the demo prints and the `publish` task logs."""

from __future__ import annotations

from typing import Any

from ..warehouse.db import transaction
from ..warehouse.manifest import STATUSES

SUMMARY_TABLES = (
    "letters",
    "items",
    "item_citations",
    "s3_objects",
    "batches",
    "parse_failures",
    "dq_results",
)


def summary(conn) -> dict:
    """Counts for the demo printout: objects by status, open quarantine by error code, rows per table
    and the latest result of each data-quality check."""
    out: dict[str, Any] = {}
    with transaction(conn) as cur:
        cur.execute("SELECT status, count(*) FROM imr.s3_objects GROUP BY status ORDER BY status")
        out["objects_by_status"] = {s: 0 for s in STATUSES} | dict(cur.fetchall())
        cur.execute(
            "SELECT error_code, count(*) FROM imr.s3_objects WHERE status = 'quarantined'"
            " GROUP BY error_code ORDER BY count(*) DESC, error_code"
        )
        out["quarantined_by_error_code"] = dict(cur.fetchall())
        rows = {}
        for table in SUMMARY_TABLES:
            cur.execute(f"SELECT count(*) FROM imr.{table}")
            rows[table] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM imr.parse_failures WHERE resolved_at IS NULL")
        rows["parse_failures_open"] = cur.fetchone()[0]
        out["rows"] = rows
        cur.execute(
            """
            SELECT DISTINCT ON (check_name) check_name, run_id, passed, observed, checked_at
            FROM imr.dq_results ORDER BY check_name, checked_at DESC, id DESC
            """
        )
        out["latest_dq"] = [
            {"check": r[0], "run_id": r[1], "passed": r[2], "observed": r[3], "checked_at": r[4].isoformat()}
            for r in cur.fetchall()
        ]
    return out


def insights(conn) -> dict:
    """The headline figures from the analytics views (migration 0006): items and letters, the
    pharmaceutical share of items and the opioid share of pharmaceuticals, the overturn rate per
    category, and median days to decision (from the application's receipt and from assignment)."""
    out: dict[str, Any] = {}
    with transaction(conn) as cur:
        cur.execute("SELECT count(*) FROM imr.letters")
        out["letters"] = cur.fetchone()[0]
        cur.execute("SELECT items, pharmaceutical_items, pharmaceutical_share FROM imr.pharmaceutical_share")
        out["items"], out["pharmaceutical_items"], out["pharmaceutical_share"] = cur.fetchone()
        cur.execute(
            "SELECT coalesce(sum(items) FILTER (WHERE drug_class = 'Opioids'), 0),"
            " sum(items) FILTER (WHERE drug_class = 'Opioids')::numeric / nullif(sum(items), 0)"
            " FROM imr.drug_class_share"
        )
        out["opioid_items"], out["opioid_share_of_pharmaceuticals"] = cur.fetchone()
        cur.execute(
            "SELECT category, sum(items)::int, sum(overturned)::int, sum(overturned)::numeric / sum(items)"
            " FROM imr.decisions_by_category GROUP BY category ORDER BY sum(items) DESC, category"
        )
        out["overturn_by_category"] = [
            {"category": r[0], "items": r[1], "overturned": r[2], "overturn_rate": r[3]}
            for r in cur.fetchall()
        ]
        cur.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY days_from_application),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY days_from_assignment),"
            " avg(over_30_days_from_application::int)"
            " FROM imr.letter_timeliness"
        )
        (
            out["median_days_application_to_decision"],
            out["median_days_assigned_to_decision"],
            out["share_over_30_days_from_application"],
        ) = cur.fetchone()
    return out
