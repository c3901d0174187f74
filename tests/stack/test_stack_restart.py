"""Runs last in this folder (file order): stop leaves no process behind, start brings everything back
with the S3 objects and the bucket, and a nightly run then finds nothing new."""

from __future__ import annotations

import random
import time

from stackcheck import make_sample, stack_start, upload


def _manifest(conn) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM imr.s3_objects GROUP BY 1")
        return dict(cur.fetchall())


def test_stop_start_keeps_state_and_finds_nothing_new(stack, stack_ctl, api, s3, prefix, tmp_path) -> None:
    import psycopg2

    sample = make_sample(tmp_path, prefix, count=5, seed=random.randrange(10**9), bad=False)
    upload(s3, stack["IMR_BUCKET"], sample)
    first = api.trigger("imr_ingest_nightly", {"prefix": prefix})
    assert api.wait("imr_ingest_nightly", first) == "success"
    etags = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=stack["IMR_BUCKET"])["Contents"]}

    pids = {name: pid for name, (pid, _) in stack_ctl.status().items()}
    assert stack_ctl.stop() == [], "processes had to be killed after the components stopped"
    assert stack_ctl.leftover_processes() == []
    assert all(not stack_ctl._alive(pid) for pid in pids.values() if pid), pids

    t0 = time.monotonic()
    env = stack_start()
    print(f"\nstack start after stop: {time.monotonic() - t0:.0f} s")
    assert env == stack
    after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=stack["IMR_BUCKET"])["Contents"]}
    assert after == etags

    conn = psycopg2.connect(stack["IMR_WAREHOUSE_DSN"])
    conn.autocommit = True
    try:
        before = _manifest(conn)
        # Every prefix the stack has seen: the whole configured one.
        run = api.trigger("imr_ingest_nightly", {})
        assert api.wait("imr_ingest_nightly", run) == "success"
        assert _manifest(conn) == before
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM imr.s3_objects WHERE last_run_id = %s", (run,))
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()
