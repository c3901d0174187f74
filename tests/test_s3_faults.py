"""S3 misbehaving (issue 8, fault 3): the DAG's S3 traffic goes through tests/faultproxy.py, which
answers 503 SlowDown or resets the connection for 20% of the requests (listing and GETs alike). The
retries configured in the `aws_default` connection's extra (devservices.service_env) absorb them all:
the run succeeds at the first try of every task, with exact counts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from airflow_run import run_dag, task_states
from faultproxy import FaultProxy
from imr import alerts
from test_e2e_dags import _assert_matches_truth, _count, _dq, _query, _sample, _upload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_nightly_through_a_faulty_s3_needs_no_task_retry(
    services, pg_dsn, wh_conn, s3_client, bucket, tmp_path: Path
) -> None:
    good, bad, files = _sample(tmp_path / "set", count=30, seed=8)
    _upload(s3_client, bucket, files)  # directly: the faults are for the DAG's traffic

    aws = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["config_kwargs"]["retries"] == {"mode": "standard", "max_attempts": 10}
    with FaultProxy(services["IMR_S3_ENDPOINT_URL"], fault_rate=0.2, seed="s3-faults") as proxy:
        aws["extra"]["endpoint_url"] = proxy.url
        started = time.monotonic()
        run = run_dag(
            "imr_ingest_nightly",
            warehouse_dsn=pg_dsn,
            bucket=bucket,
            conf={"timeout_s": 3},  # the sample's slow file hits it, as in test_e2e_dags
            extra_env={"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws)},
        )
        elapsed = time.monotonic() - started
        counts = proxy.counts()
    print(f"faulty-S3 nightly run: {elapsed:.1f} s, proxy {counts}")

    assert run.state == "success", run.log[-3000:]
    states = task_states(run)
    assert states and all(s == ("success", 1) for s in states.values()), states  # no task retried
    assert counts["slowdown"] > 0 and counts["reset"] > 0, counts
    # Every object was fetched through the proxy (plus at least one listing page).
    assert counts["forwarded"] >= len(files) + 1, counts

    _assert_matches_truth(wh_conn, good)
    assert _count(wh_conn, "SELECT count(*) FROM imr.items") == sum(len(g["items"]) for g in good)
    quarantined = dict(
        _query(wh_conn, "SELECT key, error_code FROM imr.s3_objects WHERE status = 'quarantined'")
    )
    assert quarantined == {f"letters/{Path(b['file']).name}": b["error_code"] for b in bad}
    assert _count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status = 'loaded'") == len(good)
    assert (
        _count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status IN ('pending', 'processing')") == 0
    )
    dq = _dq(wh_conn, run.run_id)
    # The gates pass (the quarantine-rate checks alert on the sample's bad files; they never gate).
    assert dq and all(v for k, v in dq.items() if k not in alerts.ALERT_CHECKS), dq
