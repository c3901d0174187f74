"""run_reconciliation when two runs overlap on one prefix (the nightly run and a backfill): a key one
run registered but the other claimed is the claiming run's to finish, not a gap in the first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imr import quality, warehouse

pytestmark = pytest.mark.integration
BUCKET = "imr-letters"


def _objects(*keys: str) -> list[dict]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [{"key": k, "etag": f'"{k}"', "size": 10, "last_modified": t0} for k in keys]


def _reconciled(conn, run_id: str) -> tuple[bool, float]:
    (result,) = [r for r in quality.run_checks(conn, run_id) if r.name == "run_reconciliation"]
    return result.passed, result.observed


def test_reconciliation_with_an_overlapping_run(wh_conn) -> None:
    warehouse.register_objects(wh_conn, BUCKET, _objects("letters/a.pdf", "letters/b.pdf"), "nightly")
    assert _reconciled(wh_conn, "nightly") == (False, 2)  # registered, nobody claimed them yet
    warehouse.claim_batches(wh_conn, BUCKET, "backfill", batch_size=10)
    # The backfill holds both claims and is still working: the nightly run is not short of anything,
    # the backfill is (until it loads them).
    assert _reconciled(wh_conn, "nightly") == (True, 0)
    assert _reconciled(wh_conn, "backfill") == (False, 2)
    warehouse.register_objects(wh_conn, BUCKET, _objects("letters/c.pdf"), "nightly")
    assert _reconciled(wh_conn, "nightly") == (False, 1)  # a key of its own left pending
