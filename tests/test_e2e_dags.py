"""The DAGs end to end: Airflow runs them (`airflow dags test`) against the embedded PostgreSQL and the
moto S3 endpoint over HTTP, on letters from our generator whose ground truth is known."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import imr_synth
from imr import alerts
from support.airflow_run import run_dag, task_states, xcom_sizes
from support.e2e import assert_matches_truth, count, dq_results, query, records, sample, upload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]


def _snapshot(conn) -> dict:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM imr.s3_objects GROUP BY status")
        statuses = dict(cur.fetchall())
        counts = {}
        for table in ("letters", "items", "s3_objects", "parse_failures"):
            cur.execute(f"SELECT count(*) FROM imr.{table}")
            counts[table] = cur.fetchone()[0]
        cur.execute(
            "SELECT md5(string_agg(case_number || source_key || source_sha256, ',' ORDER BY case_number))"
            " FROM imr.letters"
        )
        counts["letters_digest"] = cur.fetchone()[0]
    return {"statuses": statuses, **counts}


def assert_insights_published(conn) -> None:
    """publish refreshed the Insights aggregates (migration 0014): no marked day is left, and the
    month rows count every letter and item."""
    assert count(conn, "SELECT count(*) FROM imr.insights_stale_days") == 0
    assert count(
        conn, "SELECT coalesce(sum(letters), 0) FROM imr.insights_month_letters WHERE decision_day IS NULL"
    ) == count(conn, "SELECT count(*) FROM imr.letters")
    assert count(
        conn, "SELECT coalesce(sum(items), 0) FROM imr.insights_month_items WHERE decision_day IS NULL"
    ) == count(conn, "SELECT count(*) FROM imr.items")


def test_nightly_loads_truth_quarantines_bad_and_is_idempotent(
    pg_dsn, wh_conn, s3_client, bucket, tmp_path: Path
) -> None:
    good, bad, files = sample(tmp_path / "set", count=50, seed=2026)
    upload(s3_client, bucket, files)

    # A short per-letter deadline so the sample's slow file hits it (production: 30 s).
    run1 = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, conf={"timeout_s": 3})
    assert run1.state == "success", run1.log[-3000:]
    assert_matches_truth(wh_conn, good)
    quarantined = dict(
        query(wh_conn, "SELECT key, error_code FROM imr.s3_objects WHERE status = 'quarantined'")
    )
    assert quarantined == {f"letters/{Path(b['file']).name}": b["error_code"] for b in bad}
    dq = dq_results(wh_conn, run1.run_id)
    # Every gate passes; the quarantine checks alert (9 bad files of 59, 3 with parser-gap codes)
    # without failing the run.
    assert dq and all(v for k, v in dq.items() if k not in alerts.ALERT_CHECKS), dq
    assert [dq[k] for k in alerts.ALERT_CHECKS] == [False, False]
    assert (
        count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status IN ('pending', 'processing')") == 0
    )
    states = task_states(run1)
    assert all(state == "success" for state, _ in states.values()), states
    # Letter text never reaches the task logs at INFO.
    assert good[0]["items"][0]["decision_rationale"][:60] not in run1.log
    assert_insights_published(wh_conn)

    before = _snapshot(wh_conn)
    run2 = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket)
    assert run2.state == "success"
    assert _snapshot(wh_conn) == before
    assert count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE last_run_id = %s", (run2.run_id,)) == 0

    # New letters, a corrected letter for a loaded case, and a byte-identical copy under another key.
    rng = random.Random("new")
    new = [imr_synth.random_letter(rng) for _ in range(3)]
    corrected_truth = imr_synth.random_letter(
        random.Random("fix"), case_number=good[0]["case_number"], n_items=2
    )[0]
    corrected_pdf = imr_synth.render_letter(corrected_truth)
    copy_key = "letters/copies/" + Path(good[1]["file"]).name
    original_key = f"letters/{Path(good[1]['file']).name}"
    uploads = {f"letters/new/{t.case_number}.pdf": pdf for t, pdf in new}
    uploads[f"letters/corrected/{good[0]['case_number']}.pdf"] = corrected_pdf
    uploads[copy_key] = files[original_key]
    upload(s3_client, bucket, uploads)

    run3 = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket)
    assert run3.state == "success", run3.log[-3000:]
    touched = dict(
        query(wh_conn, "SELECT key, status FROM imr.s3_objects WHERE last_run_id = %s", (run3.run_id,))
    )
    assert set(touched) == set(uploads)  # only the new objects were processed
    assert touched[copy_key] == "duplicate"
    corrected = {r["case_number"]: r for r in records(wh_conn)}[good[0]["case_number"]]
    assert corrected["source_key"] == f"letters/corrected/{good[0]['case_number']}.pdf"
    assert [i["request"] for i in corrected["items"]] == [i.request for i in corrected_truth.items]
    assert count(wh_conn, "SELECT count(*) FROM imr.letters") == len(good) + len(new)
    assert_insights_published(wh_conn)  # the correction's days too
    assert (
        count(
            wh_conn,
            "SELECT count(*) FROM imr.letters l WHERE NOT EXISTS "
            "(SELECT 1 FROM imr.items i WHERE i.case_number = l.case_number)",
        )
        == 0
    )


def test_backfill_of_a_thousand_letters_keeps_fan_out_and_xcom_small(
    pg_dsn, wh_conn, s3_client, bucket, tmp_path: Path
) -> None:
    good, bad, files = sample(tmp_path / "set", count=1000, seed=77)
    upload(s3_client, bucket, files)

    run = run_dag("imr_backfill", warehouse_dsn=pg_dsn, bucket=bucket, conf={"batch_size": 50})
    assert run.state == "success", run.log[-3000:]
    lanes = [m for (task, m) in task_states(run) if task == "process_lane"]
    assert 2 <= len(lanes) <= 32
    sizes = xcom_sizes(run)
    assert sizes and max(sizes.values()) <= 4096, sizes
    assert count(wh_conn, "SELECT count(*) FROM imr.letters") == len(good)
    # Every key in exactly one batch of at most 50 (the tail batches are smaller: claim_batches).
    sizes_by_batch = [
        r[0]
        for r in query(
            wh_conn,
            "SELECT cardinality(keys) FROM imr.batches WHERE run_id = %s ORDER BY batch_id",
            (run.run_id,),
        )
    ]
    assert sum(sizes_by_batch) == len(files) and max(sizes_by_batch) == 50
    assert sizes_by_batch == sorted(sizes_by_batch, reverse=True)
    assert count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status = 'quarantined'") == len(bad)
    expected_items = sum(len(g["items"]) for g in good)
    assert count(wh_conn, "SELECT count(*) FROM imr.items") == expected_items


FAULT_SQL = """
CREATE TABLE public.fault_switch (mode TEXT NOT NULL);
CREATE SEQUENCE public.fault_calls;
CREATE FUNCTION public.inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- 'always': every load of this case fails; 'once': only the first one does.
    IF NEW.case_number = %(case)s AND EXISTS (SELECT 1 FROM public.fault_switch WHERE mode = 'always'
        OR (mode = 'once' AND nextval('public.fault_calls') = 1)) THEN
        RAISE EXCEPTION 'injected fault while loading items of %%', NEW.case_number;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER inject_fault BEFORE INSERT ON imr.items FOR EACH ROW EXECUTE FUNCTION public.inject_fault();
"""


def test_fault_mid_batch_leaves_no_partial_letter_and_retry_completes(
    pg_dsn, wh_conn, s3_client, bucket, tmp_path: Path
) -> None:
    """A real database error (a trigger raising on one letter's items, after earlier letters of the
    same batch were written in the transaction) rolls the whole batch back; Airflow's retry loads it."""
    rng = random.Random("fault")
    letters = [imr_synth.random_letter(rng, n_items=rng.randint(2, 4)) for _ in range(15)]
    upload(s3_client, bucket, {f"letters/{t.case_number}.pdf": pdf for t, pdf in letters})
    ordered = sorted(t.case_number for t, _ in letters)
    victim = ordered[7]  # second batch of five (batches are dealt in key order), not its first letter
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute(FAULT_SQL, {"case": victim})
        cur.execute("INSERT INTO public.fault_switch VALUES ('always')")
    conf = {"batch_size": 5, "max_lanes": 1}

    failed = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, conf=conf)
    assert failed.state == "failed"
    assert task_states(failed)[("process_lane", 0)] == ("failed", 2)  # tried, retried, failed
    loaded = {r[0] for r in query(wh_conn, "SELECT case_number FROM imr.letters")}
    assert loaded == set(ordered[:5])  # batch 1 committed; nothing of batch 2 (no partial letters)
    assert (
        count(
            wh_conn,
            "SELECT count(*) FROM imr.letters l WHERE NOT EXISTS "
            "(SELECT 1 FROM imr.items i WHERE i.case_number = l.case_number)",
        )
        == 0
    )
    assert count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status = 'processing'") == 0  # released

    with wh_conn, wh_conn.cursor() as cur:
        cur.execute("UPDATE public.fault_switch SET mode = 'once'")
    retried = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, conf=conf)
    assert retried.state == "success", retried.log[-3000:]
    assert task_states(retried)[("process_lane", 0)] == ("success", 2)  # the first try hit the fault
    truth = {t.case_number: t for t, _ in letters}
    assert {r[0] for r in query(wh_conn, "SELECT case_number FROM imr.letters")} == set(truth)
    assert count(wh_conn, "SELECT count(*) FROM imr.items") == sum(len(t.items) for t in truth.values())
    assert count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status = 'loaded'") == len(truth)


def test_reprocess_failures_after_fix(pg_dsn, wh_conn, s3_client, bucket) -> None:
    """Quarantined objects go back through the pipeline when re-queued (here: a file replaced in place
    would be re-discovered anyway; re-queueing by key covers a parser fix with unchanged bytes)."""
    _truth, pdf = imr_synth.random_letter(random.Random("requeue"), n_items=1)
    broken = imr_synth.bad_files()["not_pdf"]
    upload(s3_client, bucket, {"letters/ok.pdf": pdf, "letters/broken.pdf": broken})
    run = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket)
    assert run.state == "success"
    assert query(wh_conn, "SELECT key, error_code FROM imr.s3_objects WHERE status = 'quarantined'") == [
        ("letters/broken.pdf", "not_pdf")
    ]
    rerun = run_dag(
        "imr_reprocess_failures", warehouse_dsn=pg_dsn, bucket=bucket, conf={"keys": ["letters/broken.pdf"]}
    )
    assert rerun.state == "success"
    attempts = query(
        wh_conn, "SELECT attempts, last_run_id FROM imr.s3_objects WHERE key = 'letters/broken.pdf'"
    )
    assert attempts == [(2, rerun.run_id)]
    assert count(wh_conn, "SELECT count(*) FROM imr.parse_failures WHERE key = 'letters/broken.pdf'") == 2


def test_backfill_with_more_lanes_than_the_old_ceiling_loads_everything(
    pg_dsn, wh_conn, s3_client, bucket
) -> None:
    """40 batches of one letter, max_lanes 40: forty mapped lanes (more than the former 32-lane
    ceiling), each pulling batches until none is left; every letter loaded once, XCom small."""
    rng = random.Random("forty")
    letters = [imr_synth.random_letter(rng, n_items=1) for _ in range(40)]
    upload(s3_client, bucket, {f"letters/{t.case_number}.pdf": pdf for t, pdf in letters})
    run = run_dag(
        "imr_backfill", warehouse_dsn=pg_dsn, bucket=bucket, conf={"batch_size": 1, "max_lanes": 40}
    )
    assert run.state == "success", run.log[-3000:]
    lanes = [m for (task, m) in task_states(run) if task == "process_lane"]
    assert len(lanes) == 40
    sizes = xcom_sizes(run)
    assert sizes and max(sizes.values()) <= 4096, sizes
    assert count(wh_conn, "SELECT count(*) FROM imr.letters") == 40
    assert count(wh_conn, "SELECT count(*) FROM imr.items") == 40
    assert count(wh_conn, "SELECT count(*) FROM imr.batches WHERE finished_at IS NULL") == 0
    assert count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status <> 'loaded'") == 0
