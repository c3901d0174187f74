"""`make bench-stack`: letters/s through `imr_backfill` on the native production stack (CeleryExecutor,
two workers, concurrency 1 each; `make stack-start` first), as a ratio to `imr parse --jobs 2` on the
same files in the same run. The letters go under a prefix of their own, so the figure is repeatable
on a stack that holds other data; every letter must end loaded.

    python bench/stack_bench.py [--letters 1000] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import httpx
import psycopg2

import imr_synth
from progress_watch import progress_lines  # bench/, beside this file

ROOT = Path(__file__).resolve().parent.parent


def _stack_env() -> dict[str, str]:
    path = ROOT / ".run" / "stack" / "stack.env"
    if not path.exists():
        sys.exit("the native stack is not running: make stack-start")
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        out[key] = shlex.split(value)[0] if value else ""
    return out


def _letters(n: int) -> list[Path]:
    out = ROOT / ".run" / f"bench-{n}"
    if not (out / "expected.jsonl").exists():
        imr_synth.write_sample_set(out, count=n, seed=4242, include_bad=False)
    return sorted((out / "letters").glob("*.pdf"))


def _parse_only(files: list[Path]) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "imr", "parse", "--quiet", "--jobs", "2", *map(str, files)]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


class Api:
    def __init__(self, env: dict[str, str]) -> None:
        self.url = env["AIRFLOW_API_URL"]
        r = httpx.post(
            f"{self.url}/auth/token",
            json={"username": env["IMR_ADMIN_USER"], "password": env["IMR_ADMIN_PASSWORD"]},
            timeout=30,
        )
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, **kw) -> dict:
        r = httpx.request(method, self.url + path, headers=self.headers, timeout=60, **kw)
        r.raise_for_status()
        return r.json()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--letters", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    args = ap.parse_args(argv)
    env = _stack_env()
    files = _letters(args.letters)
    parse_s = _parse_only(files)
    s3 = boto3.client(
        "s3",
        endpoint_url=env["IMR_S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    prefix = f"bench/{uuid.uuid4().hex[:8]}/"
    for f in files:
        s3.put_object(Bucket=env["IMR_BUCKET"], Key=prefix + f.name, Body=f.read_bytes())
    api = Api(env)
    api.call("PATCH", "/api/v2/dags/imr_backfill", json={"is_paused": False})
    run_id = f"bench__{uuid.uuid4().hex[:8]}"
    body = {
        "logical_date": None,
        "dag_run_id": run_id,
        "conf": {"prefix": prefix, "batch_size": args.batch_size},
    }
    api.call("POST", "/api/v2/dags/imr_backfill/dagRuns", json=body)
    with progress_lines(env["IMR_WAREHOUSE_DSN"], run_id=run_id):
        while (run := api.call("GET", f"/api/v2/dags/imr_backfill/dagRuns/{run_id}"))["state"] not in (
            "success",
            "failed",
        ):
            time.sleep(2)
    start, end = (run[k] for k in ("start_date", "end_date"))
    from datetime import datetime

    dag_s = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    conn = psycopg2.connect(env["IMR_WAREHOUSE_DSN"])
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM imr.s3_objects WHERE key LIKE %s AND status = 'loaded'", (prefix + "%",)
        )
        loaded = cur.fetchone()[0]
    conn.close()
    n = len(files)
    print(f"imr parse --jobs 2: {n / parse_s:.1f} letters/s ({parse_s:.0f} s)")
    print(
        f"imr_backfill on the stack (2 workers x 1): {n / dag_s:.1f} letters/s "
        f"({dag_s:.0f} s, {run['state']})"
    )
    print(f"ratio stack / parse-only: {parse_s / dag_s:.2f}; loaded {loaded}/{n}")
    return 0 if run["state"] == "success" and loaded == n else 1


if __name__ == "__main__":
    sys.exit(main())
