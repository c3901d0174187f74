"""imr.read.progress on the real PostgreSQL: a run in progress with known states and timestamps
(tests/support/progress_seed.py) gives exact counts, rate and ETA; finished and abandoned runs are not
active; the batch columns agree with the manifest; the progress line and its polling loop."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest

from imr import warehouse
from imr.console import format_progress_line, poll_progress
from imr.read.progress import active_runs_progress, format_duration
from support.progress_seed import EXPECTED_BATCHES, EXPECTED_COUNTS, KEYS, db_now, letter, seed_active_run

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
BUCKET = "imr-letters"
RUN = "backfill__progress"


def _manifest_counts(conn, run_id: str) -> dict[str, int]:
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT status, count(*) FROM imr.s3_objects WHERE last_run_id = %s GROUP BY 1", (run_id,)
        )
        return dict(cur.fetchall())


def _finished_run(conn, run_id: str, keys: list[str], first_case: int) -> None:
    """A run whose every batch loaded."""
    objects = [{"key": k, "etag": f'"{k}"', "size": 1} for k in keys]
    warehouse.register_objects(conn, BUCKET, objects, run_id)
    case = first_case
    for batch_id in warehouse.claim_batches(conn, BUCKET, run_id, batch_size=2):
        results = []
        for o in warehouse.get_batch(conn, batch_id).objects:
            results.append(
                warehouse.ObjectResult(
                    o.key, o.etag, f"sha-{o.key}", warehouse.Parsed(letter(f"CM16-{case:07d}"))
                )
            )
            case += 1
        warehouse.load_batch(conn, BUCKET, results, run_id, batch_id=batch_id)


def test_counts_rate_and_eta_of_a_run_in_progress(wh_conn):
    t = db_now(wh_conn)
    seed_active_run(wh_conn, BUCKET, RUN, t)
    [p] = active_runs_progress(wh_conn, window_s=300, now=t)
    assert p.run_id == RUN
    assert p.counts == EXPECTED_COUNTS
    assert p.total == 10 and p.done == 6 and p.fraction == pytest.approx(0.6)
    assert p.batches == EXPECTED_BATCHES and p.in_lanes == 2
    assert p.started_at == t - timedelta(seconds=600) and p.as_of == t
    assert p.last_finished_at == t - timedelta(seconds=100)
    # Batches 2 and 3 (four keys) finished in the last 300 s; four keys remain.
    assert (p.window_s, p.done_in_window) == (300, 4)
    assert p.rate_per_s == pytest.approx(4 / 300)
    assert p.eta_s == pytest.approx(300)
    assert (p.eta_at - t).total_seconds() == pytest.approx(300)
    # The batch columns mirror the manifest's rows of the run.
    assert _manifest_counts(wh_conn, RUN) == {k: v for k, v in EXPECTED_COUNTS.items() if v}


@pytest.mark.parametrize(
    ("window_s", "effective_s", "done", "eta_s"),
    [
        (120, 120, 2, 240),  # batch 3 only
        (450, 450, 6, 300),  # all three finished batches
        (3600, 600, 6, 400),  # longer than the run: measured since its start
    ],
)
def test_the_rate_window(wh_conn, window_s, effective_s, done, eta_s):
    t = db_now(wh_conn)
    seed_active_run(wh_conn, BUCKET, RUN, t)
    [p] = active_runs_progress(wh_conn, window_s=window_s, now=t)
    assert (p.window_s, p.done_in_window) == (effective_s, done)
    assert p.rate_per_s == pytest.approx(done / effective_s)
    assert p.eta_s == pytest.approx(eta_s)


def test_no_rate_no_eta(wh_conn):
    t = db_now(wh_conn)
    seed_active_run(wh_conn, BUCKET, RUN, t)
    [p] = active_runs_progress(wh_conn, window_s=60, now=t)
    assert (p.done_in_window, p.rate_per_s, p.eta_s, p.eta_at) == (0, 0.0, None, None)
    assert "0.00 letters/s over 60 s; ETA unknown" in format_progress_line(p)


def test_finished_and_abandoned_runs_are_not_active(wh_conn):
    t = db_now(wh_conn)
    seed_active_run(wh_conn, BUCKET, RUN, t)
    _finished_run(wh_conn, "scheduled__done", [f"done/{n}.pdf" for n in range(4)], first_case=900)
    # A run that failed: its teardown hands back its keys and leases; its batches stay unfinished.
    objects = [{"key": f"dead/{n}.pdf", "etag": '"e"', "size": 1} for n in range(4)]
    warehouse.register_objects(wh_conn, BUCKET, objects, "manual__failed")
    warehouse.claim_batches(wh_conn, BUCKET, "manual__failed", batch_size=2)
    assert [p.run_id for p in active_runs_progress(wh_conn, now=t)] == [RUN, "manual__failed"]
    warehouse.release_leases(wh_conn, "manual__failed")
    assert warehouse.release_claims(wh_conn, "manual__failed") == 4
    assert [p.run_id for p in active_runs_progress(wh_conn, now=t)] == [RUN]
    # The next run takes the handed-back keys: that run is active, the failed one still not.
    warehouse.claim_batches(wh_conn, BUCKET, "manual__next", batch_size=2, prefix="dead/")
    runs = {p.run_id: p for p in active_runs_progress(wh_conn, now=t)}
    assert set(runs) == {RUN, "manual__next"}
    assert runs["manual__next"].counts["processing"] == 4 and runs["manual__next"].total == 4
    assert [p.run_id for p in active_runs_progress(wh_conn, run_id="manual__next")] == ["manual__next"]
    assert active_runs_progress(wh_conn, run_id="scheduled__done") == []


def test_the_last_batch_ends_the_run(wh_conn):
    t = db_now(wh_conn)
    *_, b4, b5 = seed_active_run(wh_conn, BUCKET, RUN, t)
    for batch_id, keys in ((b4, KEYS[6:8]), (b5, KEYS[8:10])):
        results = [
            warehouse.ObjectResult(
                k, f"{k}-etag", f"sha-{k}", warehouse.Parsed(letter(f"CM16-00002{k[-6:-4]}"))
            )
            for k in keys
        ]
        warehouse.load_batch(wh_conn, BUCKET, results, RUN, batch_id=batch_id)
    assert active_runs_progress(wh_conn) == []
    assert _manifest_counts(wh_conn, RUN) == {"loaded": 7, "quarantined": 1, "duplicate": 1, "pending": 1}


def test_json_and_text(wh_conn):
    t = db_now(wh_conn)
    seed_active_run(wh_conn, BUCKET, RUN, t)
    [p] = active_runs_progress(wh_conn, window_s=300, now=t)
    d = p.as_dict()
    assert d["counts"] == EXPECTED_COUNTS and (d["total"], d["done"], d["fraction"]) == (10, 6, 0.6)
    assert (d["rate_per_s"], d["eta_s"], d["window_s"]) == (0.0133, 300.0, 300.0)
    assert d["started_at"] == (t - timedelta(seconds=600)).isoformat()
    assert d["eta_at"][:19] == (t + timedelta(seconds=300)).isoformat()[:19]
    assert format_progress_line(p) == (
        f"run {RUN}: 6/10 done (60.0%): loaded 3, quarantined 1, duplicate 1, pending 1; "
        "processing 4 (2 in lanes); 0.01 letters/s over 300 s; ETA 5 min 00 s"
    )
    assert [format_duration(s) for s in (None, 0, 44.6, 61, 3599, 3600, 7385)] == [
        "unknown",
        "0 s",
        "45 s",
        "1 min 01 s",
        "59 min 59 s",
        "1 h 00 min",
        "2 h 03 min",
    ]
    with pytest.raises(ValueError, match="window_s"):
        active_runs_progress(wh_conn, window_s=0)


def test_poll_progress_prints_lines_until_stopped(wh_conn, pg_dsn):
    seed_active_run(wh_conn, BUCKET, RUN, db_now(wh_conn))
    lines: list[str] = []
    stop = threading.Event()

    def emit(line: str) -> None:
        lines.append(line)
        if len(lines) == 3:
            stop.set()

    worker = threading.Thread(target=poll_progress, args=(lambda: psycopg2.connect(pg_dsn), emit, stop, 0.05))
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and len(lines) == 3
    assert all(line.startswith(f"run {RUN}: 6/10 done (60.0%)") for line in lines)


def test_poll_progress_survives_an_unreachable_warehouse():
    lines: list[str] = []
    stop = threading.Event()

    def broken():
        if len(lines) >= 1:
            stop.set()
        raise psycopg2.OperationalError("connection refused")

    worker = threading.Thread(target=poll_progress, args=(broken, lines.append, stop, 0.02))
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    assert lines == ["progress: warehouse not readable (OperationalError: connection refused)"]


def test_the_benchmarks_progress_thread(wh_conn, pg_dsn):
    """bench/progress_watch.py, as bench/pipeline_bench.py uses it around its DAG run."""
    from progress_watch import progress_lines  # bench/ (pytest's pythonpath, pyproject.toml)

    seed_active_run(wh_conn, BUCKET, RUN, db_now(wh_conn))
    out = io.StringIO()
    with progress_lines(pg_dsn, every_s=0.05, window_s=300, out=out):
        deadline = time.monotonic() + 10
        while out.getvalue().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2
    assert lines[0].startswith(f"  [progress] run {RUN}: 6/10 done (60.0%): loaded 3, quarantined 1")
    assert lines[0].endswith("; ETA 5 min 00 s")
    # Stopped with the block: nothing more is printed.
    n = len(out.getvalue())
    time.sleep(0.3)
    assert len(out.getvalue()) == n
