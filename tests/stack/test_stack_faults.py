"""The faults a production deployment meets, each caused for real on the running stack, each ending
with exact counts (stackcheck.assert_exact). Recovery times are printed for the closing note."""

from __future__ import annotations

import os
import random
import signal
import time

from stackcheck import assert_exact, fault_counts, make_sample, set_faults, upload, wait_for_running_lane

NIGHTLY, BACKFILL = "imr_ingest_nightly", "imr_backfill"
CONF = {"batch_size": 10, "timeout_s": 5}


def _start(api, s3, stack, tmp_path, prefix, count=40, dag_id=NIGHTLY, bad=True):
    sample = make_sample(tmp_path, prefix, count=count, seed=random.randrange(10**9), bad=bad)
    upload(s3, stack["IMR_BUCKET"], sample)
    return sample, api.trigger(dag_id, {**CONF, "prefix": prefix})


def _lane_tries(api, dag_id: str, run_id: str) -> dict[int, tuple[str, int]]:
    return {
        t["map_index"]: (t["state"], t["try_number"])
        for t in api.task_instances(dag_id, run_id)
        if t["task_id"] == "process_lane"
    }


def test_worker_killed_mid_lane(stack, stack_ctl, api, s3, owner, prefix, tmp_path) -> None:
    """SIGKILL a whole worker process group while it runs a lane: the heartbeat timeout fails the
    lane, its retry runs on the surviving worker, its claimed batches are finished exactly once."""
    sample, run_id = _start(api, s3, stack, tmp_path, prefix, count=60)
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        wait_for_running_lane(api, NIGHTLY, run_id)
        for worker in ("worker-1", "worker-2"):
            log = (stack_ctl.stack_dir() / "logs" / f"{worker}.log").read_text(errors="replace")
            if f"run_id={run_id}/task_id=process_lane" in log:
                victim = worker
                break
        time.sleep(0.5)
    assert victim, "no worker picked up a lane"
    pid = stack_ctl.pid_of(victim)
    killed_at = time.monotonic()
    os.killpg(pid, signal.SIGKILL)
    try:
        assert api.wait(NIGHTLY, run_id) == "success"
        recovered = time.monotonic() - killed_at
        tries = _lane_tries(api, NIGHTLY, run_id)
        assert all(state == "success" for state, _ in tries.values()), tries
        assert any(n >= 2 for _, n in tries.values()), f"no lane was retried after the kill: {tries}"
        assert_exact(owner, sample, [run_id])
        print(f"\nworker kill: run finished {recovered:.0f} s after the SIGKILL")
    finally:
        stack_ctl.start()  # the victim back, for the next tests


def test_warehouse_restarts_mid_run(stack, stack_ctl, api, s3, owner, prefix, tmp_path) -> None:
    sample, run_id = _start(api, s3, stack, tmp_path, prefix)
    wait_for_running_lane(api, NIGHTLY, run_id)
    owner.close()
    cluster = stack_ctl.warehouse_cluster(stack_ctl._secrets())
    t0 = time.monotonic()
    cluster.stop(mode="immediate")  # as a crash: open transactions are lost, not finished
    time.sleep(10)
    cluster.start()
    assert api.wait(NIGHTLY, run_id) == "success"
    print(f"\nwarehouse restart: run finished {time.monotonic() - t0:.0f} s after the stop")
    import psycopg2

    conn = psycopg2.connect(stack["IMR_WAREHOUSE_DSN"])
    conn.autocommit = True
    try:
        assert_exact(conn, sample, [run_id])
    finally:
        conn.close()


def test_s3_faults_need_no_task_retry(stack, api, s3, owner, prefix, tmp_path) -> None:
    """About 20% of S3 requests (listing and GETs) answer 503 SlowDown or reset the connection:
    botocore's retries (aws_default extra) absorb them; no task fails."""
    sample = make_sample(tmp_path, prefix, count=40, seed=random.randrange(10**9))
    upload(s3, stack["IMR_BUCKET"], sample)
    before = fault_counts(stack)
    set_faults(stack, fault_rate=0.2, reset_share=0.5)
    try:
        t0 = time.monotonic()
        run_id = api.trigger(NIGHTLY, {**CONF, "prefix": prefix})
        assert api.wait(NIGHTLY, run_id) == "success"
        took = time.monotonic() - t0
    finally:
        set_faults(stack, fault_rate=0.0)
    after = fault_counts(stack)
    injected = {k: after[k] - before[k] for k in ("slowdown", "reset", "forwarded")}
    assert injected["slowdown"] > 0 and injected["reset"] > 0, injected
    tis = api.task_instances(NIGHTLY, run_id)
    assert all(t["try_number"] == 1 for t in tis if t["state"] == "success"), [
        (t["task_id"], t["map_index"], t["try_number"]) for t in tis if t["try_number"] != 1
    ]
    assert_exact(owner, sample, [run_id])
    print(f"\nS3 faults: {injected} in a run of {took:.0f} s")


def test_redis_restarts_mid_run(stack, stack_ctl, api, s3, owner, prefix, tmp_path) -> None:
    sample, run_id = _start(api, s3, stack, tmp_path, prefix)
    wait_for_running_lane(api, NIGHTLY, run_id)
    t0 = time.monotonic()
    os.killpg(stack_ctl.pid_of("redis"), signal.SIGTERM)  # a restart: it writes its AOF and exits
    while stack_ctl.pid_of("redis"):
        time.sleep(0.2)
    time.sleep(5)
    stack_ctl.start_redis()
    assert api.wait(NIGHTLY, run_id) == "success"
    print(f"\nredis restart: run finished {time.monotonic() - t0:.0f} s after the kill")
    assert_exact(owner, sample, [run_id])


def test_overlapping_nightly_and_backfill(stack, api, s3, owner, prefix, tmp_path) -> None:
    """Both DAGs on the same prefix at once: every key is processed by exactly one of them."""
    sample = make_sample(tmp_path, prefix, count=60, seed=random.randrange(10**9))
    upload(s3, stack["IMR_BUCKET"], sample)
    runs = {
        NIGHTLY: api.trigger(NIGHTLY, {**CONF, "prefix": prefix}),
        BACKFILL: api.trigger(BACKFILL, {**CONF, "prefix": prefix}),
    }
    for dag_id, run_id in runs.items():
        assert api.wait(dag_id, run_id) == "success"
    with owner.cursor() as cur:
        cur.execute(
            "SELECT k, array_agg(run_id) FROM imr.batches, unnest(keys) AS k"
            " WHERE run_id = ANY(%s) GROUP BY k",
            (list(runs.values()),),
        )
        claims = dict(cur.fetchall())
    assert set(claims) == set(sample.files), "a key was never claimed, or a foreign one was"
    twice = {k: v for k, v in claims.items() if len(v) != 1}
    assert not twice, f"keys claimed by both runs: {twice}"
    assert_exact(owner, sample, list(runs.values()))


def test_stack_status_lists_every_component(stack, stack_ctl) -> None:
    st = stack_ctl.status()
    # The SMTP sink stands in for the mail relay the alerts go through (docs/operations.md).
    expected = {
        "redis",
        "metadata-pg",
        "warehouse-pg",
        "s3",
        "s3-proxy",
        "smtp",
        *stack_ctl.AIRFLOW_COMPONENTS,
    }
    assert set(st) == expected
    assert all(up and pid for pid, up in st.values()), st
