"""`make run`: the main job end to end on the embedded defaults.

Generated sample letters (some bad) -> the S3 endpoint -> `imr_ingest_nightly` run by Airflow ->
the warehouse -> a summary. Running it again uploads identical bytes, so the run finds nothing new
and no count changes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

import boto3
import psycopg2
from botocore.exceptions import ClientError

import imr_synth
from imr import alerts, quality, warehouse
from imr.config import DAG_NIGHTLY
from imr.read import report
from imr_devtools import devservices
from imr_devtools.airflow_runner import DagRun, DagRunError, run_dag

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("IMR_RUN_DIR", REPO / ".run"))


def load_services_env() -> None:
    """The local engines' variables (imr_devtools.devservices), unless the caller set them."""
    for key, value in devservices.service_env().items():
        os.environ.setdefault(key, value)


def sample_set(count: int, seed: int) -> Path:
    out = RUN_DIR / "sample"
    if not (out / "expected.jsonl").exists():
        imr_synth.write_sample_set(out, count=count, seed=seed)
    return out


def upload(sample: Path, bucket: str, prefix: str) -> int:
    s3 = boto3.client("s3", endpoint_url=os.environ["IMR_S3_ENDPOINT_URL"])
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    files = sorted((sample / "letters").glob("*.pdf")) + sorted((sample / "bad").glob("*.pdf"))
    for f in files:
        s3.put_object(Bucket=bucket, Key=prefix + f.name, Body=f.read_bytes())
    return len(files)


def run_nightly(timeout_s: float) -> DagRun:
    log = RUN_DIR / "logs" / "demo-nightly.log"
    log.unlink(missing_ok=True)
    try:
        return run_dag(DAG_NIGHTLY, conf={"timeout_s": timeout_s}, log_path=log)
    except DagRunError as exc:
        sys.exit(f"the DAG run did not finish: {str(exc).splitlines()[0]}; see {log}")


def run_figures(conn, run_id: str) -> dict:
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT status, count(*) FROM imr.s3_objects WHERE last_run_id = %s GROUP BY status", (run_id,)
        )
        touched = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM imr.s3_objects")
        found = cur.fetchone()[0]
        cur.execute(
            "SELECT check_name, passed, observed FROM imr.dq_results WHERE run_id = %s ORDER BY id", (run_id,)
        )
        dq = cur.fetchall()
    return {"touched": touched, "found": found, "dq": dq}


def _verdict(name: str, passed: bool) -> str:
    if passed:
        return "PASS"
    if name in alerts.ALERT_CHECKS:
        return "ALERT"  # the sample's bad files trip the quarantine-rate alert on purpose
    return "WARN " if name in quality.WARNING_CHECKS else "FAIL"


def print_summary(run: DagRun, figures: dict, s: dict) -> None:
    print(f"\n{run.dag_id} run {run.run_id}: {run.state} in {run.seconds:.0f} s")
    tasks = Counter(t.state for t in run.task_instances)
    print("task instances: " + ", ".join(f"{n} {state}" for state, n in tasks.most_common()))
    touched = figures["touched"]
    print(
        f"objects in the manifest: {figures['found']}; processed by this run: {sum(touched.values())} "
        + (str(touched) if touched else "(nothing new)")
    )
    by_status = s["objects_by_status"]
    print(
        f"loaded {by_status['loaded']}, duplicate {by_status['duplicate']}, quarantined "
        f"{by_status['quarantined']}, pending {by_status['pending']}, processing {by_status['processing']}"
    )
    for code, n in s["quarantined_by_error_code"].items():
        print(f"  quarantined {code:<22} {n}")
    print("data-quality checks (this run; ALERT and WARN never fail a run):")
    for name, passed, observed in figures["dq"]:
        print(f"  {_verdict(name, passed)}  {name:<36} observed {observed}")
    print("rows: " + ", ".join(f"imr.{t} {n}" for t, n in s["rows"].items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=60, help="good sample letters")
    ap.add_argument("--seed", type=int, default=2026)
    # The sample's deliberately slow PDF must hit the deadline quickly in a demo.
    ap.add_argument("--timeout-s", type=float, default=5.0)
    args = ap.parse_args(argv)
    load_services_env()
    # Set-up, not the DAG, migrates the warehouse (the DAGs' login may have no DDL rights).
    conn = psycopg2.connect(os.environ["IMR_WAREHOUSE_DSN"])
    try:
        applied = warehouse.upgrade(conn)
    finally:
        conn.close()
    if applied:
        print(f"warehouse migrated: {', '.join(applied)}")
    sample = sample_set(args.count, args.seed)
    n = upload(sample, os.environ["AIRFLOW_VAR_IMR_BUCKET"], os.environ["AIRFLOW_VAR_IMR_PREFIX"])
    print(
        f"uploaded {n} sample objects to s3://{os.environ['AIRFLOW_VAR_IMR_BUCKET']}/"
        f"{os.environ['AIRFLOW_VAR_IMR_PREFIX']} ({os.environ['IMR_S3_ENDPOINT_URL']})"
    )
    print(f"running {DAG_NIGHTLY} with Airflow (airflow dags test) ...", flush=True)
    run = run_nightly(args.timeout_s)
    conn = psycopg2.connect(os.environ["IMR_WAREHOUSE_DSN"])
    try:
        print_summary(run, run_figures(conn, run.run_id), report.summary(conn))
    finally:
        conn.close()
    return 0 if run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
