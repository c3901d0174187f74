"""Lanes that pull batches (imr.warehouse.claim_next_batch, imr.pipeline.run_lane) against the real
PostgreSQL and S3 endpoint: leases, a lane SIGKILLed mid-batch, lanes of different speed, and an
Airflow run with more than 32 lanes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest

import imr_synth
from imr import pipeline, warehouse
from imr.parse.workers import ParserPool
from imr.read.progress import active_runs_progress

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
RUN = "run-lanes"


def _one(conn, sql: str, *args):
    with conn, conn.cursor() as cur:
        cur.execute(sql, args or None)
        return cur.fetchone()[0]


def _expire(conn, batch_id: int) -> None:
    """Make a lease look as if its lane stopped renewing it long ago."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE imr.batches SET lease_expires_at = now() - interval '1 second' WHERE batch_id = %s",
            (batch_id,),
        )


def _batches(conn, n_keys: int, batch_size: int, run_id: str = RUN) -> list[int]:
    objs = [{"key": f"letters/{i:04d}.pdf", "etag": f'"e{i}"', "size": 1} for i in range(n_keys)]
    warehouse.register_objects(conn, "b", objs, run_id)
    return warehouse.claim_batches(conn, "b", run_id, batch_size)


# --------------------------------------------------------------------------- leases, no parsing


def test_tail_batches_are_smaller_so_lanes_run_out_together(wh_conn) -> None:
    """taper_lanes=2, batch 100, 1,000 keys: 800 keys in full batches, the last 2 x 100 in batches of
    13 (100 / 8, rounded up), claimed last; every key in exactly one batch, in key order."""
    objs = [{"key": f"letters/{i:04d}.pdf", "etag": f'"e{i}"', "size": 1} for i in range(1000)]
    warehouse.register_objects(wh_conn, "b", objs, RUN)
    ids = warehouse.claim_batches(wh_conn, "b", RUN, 100, taper_lanes=2)
    batches = [warehouse.get_batch(wh_conn, i) for i in ids]
    sizes = [len(b.objects) for b in batches]
    assert sizes == [100] * 8 + [13] * 15 + [5]
    keys = [o.key for b in batches for o in b.objects]
    assert keys == [o["key"] for o in objs]
    # Lanes take batches in id order: the small ones come last.
    assert warehouse.claim_next_batch(wh_conn, RUN, "a") == ids[0]


def test_taper_leaves_a_run_smaller_than_the_tail_in_small_batches_only(wh_conn) -> None:
    objs = [{"key": f"letters/{i:04d}.pdf", "etag": f'"e{i}"', "size": 1} for i in range(30)]
    warehouse.register_objects(wh_conn, "b", objs, RUN)
    ids = warehouse.claim_batches(wh_conn, "b", RUN, 100, taper_lanes=4)
    assert [len(warehouse.get_batch(wh_conn, i).objects) for i in ids] == [13, 13, 4]


def test_two_lanes_never_get_the_same_batch(wh_conn, pg_dsn) -> None:
    ids = _batches(wh_conn, 60, 1)
    got: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def lane(name: str) -> None:
        conn = psycopg2.connect(pg_dsn)
        try:
            start.wait()
            while (b := warehouse.claim_next_batch(conn, RUN, name)) is not None:
                got[name].append(b)
        finally:
            conn.close()

    threads = [threading.Thread(target=lane, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == sorted(ids)
    # Each claim is a lease, not a finish: nothing is left to claim, yet nothing is finished.
    assert warehouse.claim_next_batch(wh_conn, RUN, "c") is None
    # What the monitor shows for the run (imr.read.progress): every batch in a lane, none waiting.
    [shown] = active_runs_progress(wh_conn, run_id=RUN)
    assert shown.batches == {"total": 60, "finished": 0, "in_lanes": 60, "waiting": 0}


def test_expired_lease_is_claimable_an_unexpired_one_is_not(wh_conn) -> None:
    first, second = _batches(wh_conn, 2, 1)
    assert warehouse.claim_next_batch(wh_conn, RUN, "a", timedelta(minutes=2)) == first
    assert warehouse.claim_next_batch(wh_conn, RUN, "b", timedelta(minutes=2)) == second
    assert warehouse.claim_next_batch(wh_conn, RUN, "c") is None  # both leases run
    assert warehouse.renew_lease(wh_conn, first, "a")
    assert not warehouse.renew_lease(wh_conn, first, "b")  # only the holder renews
    _expire(wh_conn, first)
    assert warehouse.claim_next_batch(wh_conn, RUN, "c") == first
    assert not warehouse.renew_lease(wh_conn, first, "a")  # "a" lost it
    assert _one(wh_conn, "SELECT lease_owner FROM imr.batches WHERE batch_id = %s", first) == "c"
    # Another run's lanes never see this run's batches.
    assert warehouse.claim_next_batch(wh_conn, "other-run", "x") is None


def test_finished_batch_is_never_claimed(wh_conn) -> None:
    (only,) = _batches(wh_conn, 3, 5)
    assert warehouse.claim_next_batch(wh_conn, RUN, "a") == only
    warehouse.load_batch(wh_conn, "b", [], RUN, batch_id=only, lease_owner="a")
    _expire(wh_conn, only)
    assert warehouse.claim_next_batch(wh_conn, RUN, "b") is None
    assert _one(wh_conn, "SELECT count(finished_at) FROM imr.batches WHERE run_id = %s", RUN) == 1
    assert active_runs_progress(wh_conn, run_id=RUN) == []  # its only batch is done: not in progress


def test_guarded_load_refuses_a_lost_lease(wh_conn) -> None:
    """A slow lane whose lease expired and was taken over must not load: its transaction rolls back,
    and the batch is loaded once, by the lane that holds it."""
    (only,) = _batches(wh_conn, 1, 1)
    assert warehouse.claim_next_batch(wh_conn, RUN, "slow") == only
    _expire(wh_conn, only)
    assert warehouse.claim_next_batch(wh_conn, RUN, "fast") == only
    with pytest.raises(warehouse.LeaseLost):
        warehouse.load_batch(wh_conn, "b", [], RUN, batch_id=only, lease_owner="slow")
    assert _one(wh_conn, "SELECT finished_at IS NULL FROM imr.batches WHERE batch_id = %s", only)
    warehouse.load_batch(wh_conn, "b", [], RUN, batch_id=only, lease_owner="fast")
    with pytest.raises(warehouse.LeaseLost):  # finished: nobody loads it again
        warehouse.load_batch(wh_conn, "b", [], RUN, batch_id=only, lease_owner="fast")


def test_the_runs_retry_takes_expired_leases_and_its_own_earlier_try_at_once(wh_conn) -> None:
    ids = _batches(wh_conn, 3, 1)
    lane0_try1, inherit0 = pipeline.lane_owner(RUN, 0, 1)
    lane1_try1, _ = pipeline.lane_owner(RUN, 1, 1)
    assert warehouse.claim_next_batch(wh_conn, RUN, lane0_try1, inherit=inherit0) == ids[0]
    assert warehouse.claim_next_batch(wh_conn, RUN, lane1_try1) == ids[1]
    # Lane 0's retry: its own earlier try's batch at once (Airflow retries a try only once it ended) ...
    lane0_try2, _ = pipeline.lane_owner(RUN, 0, 2)
    assert warehouse.claim_next_batch(wh_conn, RUN, lane0_try2, inherit=inherit0) == ids[0]
    assert warehouse.claim_next_batch(wh_conn, RUN, lane0_try2, inherit=inherit0) == ids[2]
    # ... but lane 1's batch only once its lease expired.
    assert warehouse.claim_next_batch(wh_conn, RUN, lane0_try2, inherit=inherit0) is None
    _expire(wh_conn, ids[1])
    assert warehouse.claim_next_batch(wh_conn, RUN, lane0_try2, inherit=inherit0) == ids[1]
    # A stopped run hands its leases back.
    assert warehouse.release_leases(wh_conn, RUN) == 3


# --------------------------------------------------------------------------- real lanes


def _upload_letters(s3, bucket: str, conn, n: int, seed: str, slow: set[int] = frozenset()) -> dict:
    """n generated letters under letters/ (keys of `slow` letters contain "slow"); registered as pending.
    Returns {case_number: item count}."""
    rng = random.Random(seed)
    truth = {}
    objects = []
    for i in range(n):
        letter, pdf = imr_synth.random_letter(rng, n_items=rng.randint(1, 3))
        key = f"letters/{i:04d}-{'slow' if i in slow else 'fast'}-{letter.case_number}.pdf"
        head = s3.put_object(Bucket=bucket, Key=key, Body=pdf)
        objects.append({"key": key, "etag": head["ETag"], "size": len(pdf)})
        truth[letter.case_number] = len(letter.items)
    warehouse.register_objects(conn, bucket, objects, RUN)
    return truth


def _assert_exact(conn, truth: dict[str, int]) -> None:
    """Every letter once with its items; nothing pending or processing; every batch finished."""
    assert _one(conn, "SELECT count(*) FROM imr.letters") == len(truth)
    assert _one(conn, "SELECT count(DISTINCT case_number) FROM imr.letters") == len(truth)
    assert _one(conn, "SELECT count(*) FROM imr.items") == sum(truth.values())
    assert _one(conn, "SELECT count(*) FROM imr.s3_objects WHERE status = 'loaded'") == len(truth)
    assert _one(conn, "SELECT count(*) FROM imr.s3_objects WHERE status IN ('pending', 'processing')") == 0
    assert _one(conn, "SELECT count(*) FROM imr.batches WHERE finished_at IS NULL") == 0


# The lane run in a subprocess: every letter sleeps (a test hook, here only) so the lane is surely
# mid-batch when the test kills it.
KILLED_LANE = textwrap.dedent(
    """
    import os, sys, time
    from datetime import timedelta
    import boto3, psycopg2
    from imr import pipeline

    real = pipeline.parse_objects

    def slow(s3, bucket, objects, pool, on_letter=None):
        time.sleep(2.0 * len(objects))
        return real(s3, bucket, objects, pool, on_letter)

    pipeline.parse_objects = slow
    s3 = boto3.client("s3", endpoint_url=os.environ["IMR_S3_ENDPOINT_URL"])
    conn = psycopg2.connect(sys.argv[1])
    pipeline.run_lane(s3, conn, sys.argv[2], "doomed|0|1", lease=timedelta(seconds=3))
    """
)


def test_a_lane_killed_mid_batch_hands_its_batch_over_after_the_lease(
    pg_dsn, wh_conn, s3_client, bucket
) -> None:
    truth = _upload_letters(s3_client, bucket, wh_conn, 12, "killed")
    ids = warehouse.claim_batches(wh_conn, bucket, RUN, 4)
    assert len(ids) == 3
    lane = subprocess.Popen([sys.executable, "-c", KILLED_LANE, pg_dsn, RUN], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while _one(wh_conn, "SELECT count(*) FROM imr.batches WHERE lease_owner = 'doomed|0|1'") == 0:
            assert lane.poll() is None and time.monotonic() < deadline, "the lane never claimed a batch"
            time.sleep(0.1)
        time.sleep(1.0)  # inside its 8 s batch
    finally:
        lane.send_signal(signal.SIGKILL)
        lane.wait()
    assert lane.returncode == -signal.SIGKILL
    held = _one(wh_conn, "SELECT batch_id FROM imr.batches WHERE lease_owner = 'doomed|0|1'")
    assert held == ids[0]
    assert _one(wh_conn, "SELECT count(*) FROM imr.letters") == 0  # killed before its load committed
    # Its batch is held until the lease runs out: a lane now gets only the other batches.
    assert warehouse.claim_next_batch(wh_conn, RUN, "probe", timedelta(seconds=1)) == ids[1]
    while _one(wh_conn, "SELECT count(*) FROM imr.batches WHERE lease_expires_at >= now()"):
        time.sleep(0.2)
    report = pipeline.run_lane(s3_client, wh_conn, RUN, "survivor|1|1", lease=timedelta(seconds=3))
    assert sorted(r.batch_id for r in report.batches) == sorted(ids)
    assert report.lost == []
    _assert_exact(wh_conn, truth)


def test_lanes_of_different_speed_finish_in_the_shared_time_not_the_static_share(
    pg_dsn, wh_conn, s3_client, bucket, monkeypatch
) -> None:
    """One batch holds the slow letters (a per-letter sleep hook: 2 s against 0.1 s). Two pulling
    lanes finish in about max(total / 2, slowest batch); the static deal (`batch n % 2`) would put
    the slow batch and half the others on one lane."""
    batch_size = 4
    n_batches = 14
    slow_letters = set(range(batch_size))  # batch 0
    truth = _upload_letters(s3_client, bucket, wh_conn, batch_size * n_batches, "speed", slow_letters)
    ids = warehouse.claim_batches(wh_conn, bucket, RUN, batch_size)
    assert len(ids) == n_batches

    real = pipeline.parse_objects

    def hooked(s3, bucket, objects, pool, on_letter=None):
        time.sleep(sum(2.0 if "-slow-" in o.key else 0.1 for o in objects))
        return real(s3, bucket, objects, pool, on_letter)

    monkeypatch.setattr(pipeline, "parse_objects", hooked)
    reports: dict[str, pipeline.LaneReport] = {}
    ready = threading.Barrier(3)

    def lane(name: str) -> None:
        # The parser workers start before the clock does: both deals pay that once per lane.
        conn = psycopg2.connect(pg_dsn)
        try:
            with ParserPool(1) as pool:
                ready.wait()
                reports[name] = pipeline.run_lane(s3_client, conn, RUN, name, parser_pool=pool)
        finally:
            conn.close()

    threads = [threading.Thread(target=lane, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    ready.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - started

    seconds = {r.batch_id: r.seconds for rep in reports.values() for r in rep.batches}
    assert sorted(seconds) == sorted(ids)
    static = max(sum(seconds[b] for i, b in enumerate(sorted(ids)) if i % 2 == lane) for lane in (0, 1))
    shared = max(sum(seconds.values()) / 2, max(seconds.values()))
    print(f"wall {wall:.2f} s, static deal {static:.2f} s, max(total/2, slowest batch) {shared:.2f} s")
    assert wall < static
    assert wall < shared * 1.15 + 1.0  # a lane start and the last claims, not another batch's worth
    assert all(rep.lost == [] for rep in reports.values())
    # The fast lane took more batches than the static deal would have given it.
    assert max(len(rep.batches) for rep in reports.values()) > n_batches // 2
    _assert_exact(wh_conn, truth)


def test_lane_count_and_label(monkeypatch) -> None:
    """Lanes default to the pool's slots (at most core.parallelism), capped by the batches and
    core.max_map_length (no 32)."""
    from imr_airflow import params
    from imr_airflow.tasks import lane_count, lane_label

    monkeypatch.setenv("IMR_WAREHOUSE_POOL_SLOTS", "48")
    assert params.pool_slots() == 48
    assert lane_count(0, 10_000, 1024, params.pool_slots()) == 48
    assert lane_count(40, 10_000, 1024, 4) == 40
    assert lane_count(0, 3, 1024, 48) == 3
    assert lane_count(5000, 10_000, 1024, 4) == 1024
    assert lane_count(0, 0, 1024, 4) == 0
    # By default no more lanes than Airflow runs at once; an explicit max_lanes is the user's call.
    assert lane_count(0, 10_000, 1024, 4, parallelism=2) == 2
    assert lane_count(0, 10_000, 1024, 4, parallelism=32) == 4
    assert lane_count(40, 10_000, 1024, 4, parallelism=2) == 40
    assert lane_label(2, 8, {"batches": 5, "objects": 1000}) == "lane 3 of 8: 5 batches, 1,000 letters"
    assert lane_label(0, 1, {"batches": 1, "objects": 7}) == "lane 1 of 1: 1 batch, 7 letters"
    assert lane_label(0, 2, None) == "lane 1 of 2: running"
