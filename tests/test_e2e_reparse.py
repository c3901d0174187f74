"""Issue 10, Must show 3 through Airflow: letters loaded by the pre-0004 parser (version 1.0.0, no
enriched fields) are filled by `imr_backfill` with `{"reparse": true}`, and nothing else changes."""

from __future__ import annotations

import random

import pytest

import imr_synth
from imr import PARSER_VERSION
from imr_devtools.airflow_runner import metadata_query
from support.airflow_run import run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LETTER_COLS = (
    "case_number, date_assigned, date_of_injury, decision_date, ur_denial_date, application_received,"
    " priority, reviewer_specialty, reviewer_licensure_states, patient_age, patient_sex, outcome,"
    " clinical_case_summary, warnings, source_bucket, source_key, source_etag, source_sha256,"
    " source_last_modified"
)
ITEM_COLS = (
    "case_number, seq, request, original_request, decision, claims_administrator_guideline,"
    " maximus_guideline, decision_rationale"
)
ENRICHED = "case_number, seq, category, subcategory, claims_administrator_evidence, expert_reviewer_evidence"


def _q(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _state(conn) -> dict:
    return {
        "letters": _q(conn, f"SELECT {LETTER_COLS} FROM imr.letters ORDER BY 1"),
        "items": _q(conn, f"SELECT {ITEM_COLS} FROM imr.items ORDER BY 1, 2"),
        "enriched": _q(conn, f"SELECT {ENRICHED} FROM imr.items ORDER BY 1, 2"),
        "citations": _q(conn, "SELECT * FROM imr.item_citations ORDER BY 1, 2, 3, 4"),
        "versions": _q(conn, "SELECT DISTINCT parser_version FROM imr.letters"),
    }


def test_backfill_reparse_fills_enriched_fields(pg_dsn, wh_conn, s3_client, bucket) -> None:
    rng = random.Random("reparse")
    for n in range(4):
        truth, pdf = imr_synth.random_letter(rng, n_items=2)
        s3_client.put_object(Bucket=bucket, Key=f"letters/{n}-{truth.case_number}.pdf", Body=pdf)
    run = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket)
    assert run.state == "success", run.log[-3000:]
    current = _state(wh_conn)
    assert current["versions"] == [(PARSER_VERSION,)] and len(current["letters"]) == 4
    assert current["citations"] and all(r[2] is not None and r[4] is not None for r in current["enriched"])

    # The warehouse as the pre-0004 parser left it once 0004 was applied: version 1.0.0 everywhere,
    # the new columns NULL, no citation rows.
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute("UPDATE imr.letters SET parser_version = '1.0.0'")
        cur.execute("UPDATE imr.s3_objects SET parser_version = '1.0.0' WHERE status = 'loaded'")
        cur.execute(
            "UPDATE imr.items SET category = NULL, subcategory = NULL,"
            " claims_administrator_evidence = NULL, expert_reviewer_evidence = NULL"
        )
        cur.execute("DELETE FROM imr.item_citations")
    old = _state(wh_conn)

    backfill = run_dag("imr_backfill", warehouse_dsn=pg_dsn, bucket=bucket, conf={"reparse": True})
    assert backfill.state == "success", backfill.log[-3000:]
    # The reparse passed its gates, so the whole-archive sweep is due: the backfill updated its asset.
    assert task_states(backfill)[("announce_reparse", -1)][0] == "success"
    assert metadata_query(
        "SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id"
        " WHERE a.name = 'imr_letters_reparsed' AND e.source_run_id = %s",
        (backfill.run_id,),
    ) == [(1,)]
    after = _state(wh_conn)
    assert after["letters"] == old["letters"] and after["items"] == old["items"]
    assert after["enriched"] == current["enriched"] and after["citations"] == current["citations"]
    assert after["versions"] == [(PARSER_VERSION,)]
    reparsed = _q(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE last_run_id = %s", (backfill.run_id,))
    assert reparsed == [(4,)]
