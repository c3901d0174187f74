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
