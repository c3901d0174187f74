"""The nightly run's quality gates judge only the run's rows and read what record_quality recorded;
the weekly imr_quality_sweep judges the whole archive. Real Airflow runs (`airflow dags test`) on the
embedded PostgreSQL and the moto S3 endpoint, two in all: a bad row outside the nightly run passes
its letters gate while a bad row the run itself loaded fails its items gate; the sweep fails on both."""

from __future__ import annotations

import random

import pytest

import imr_synth
from imr import alerts, discovery, quality
from support.airflow_run import run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# A letter no run loaded, inserted behind the loader's back: outcome Uphold without any item.
BAD_LETTER = (
    "INSERT INTO imr.letters (case_number, decision_date, outcome, source_bucket, source_key,"
    " source_etag, source_sha256, parser_version)"
    " VALUES ('CM16-9999999', '2016-05-01', 'Uphold', 'b', 'letters/elsewhere.pdf', 'e', 's', 'v')"
)

# The run's own bad row: a trigger drops one loaded item's claims administrator evidence value.
SPOIL_ITEM = """
CREATE FUNCTION public.spoil_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.case_number = %(case)s AND NEW.seq = 1 THEN
        NEW.claims_administrator_evidence := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER spoil_item BEFORE INSERT ON imr.items FOR EACH ROW EXECUTE FUNCTION public.spoil_item();
"""


def _recorded(conn, run_id: str) -> dict[str, tuple[bool, str]]:
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT ON (check_name) check_name, passed, observed FROM imr.dq_results"
            " WHERE run_id = %s ORDER BY check_name, id DESC",
            (run_id,),
        )
        return {name: (passed, observed) for name, passed, observed in cur.fetchall()}


def _gates_agree(run, recorded: dict[str, tuple[bool, str]], scope: str) -> dict[str, str]:
    """Each gate task's state against the recorded results of its table's checks; returns the gate
    states."""
    by_table = quality.names_by_table(run_id=run.run_id, scope=scope)
    states = task_states(run)
    gates = {}
    for table, names in by_table.items():
        task_id = f"gate_table_{table.split('.')[-1]}"
        state, _ = states[(task_id, -1)]
        gates[task_id] = state
        failing = [f"{n}={recorded[n][1]}" for n in sorted(names) if not recorded[n][0]]
        assert state == ("failed" if failing else "success"), (task_id, state, failing)
        if failing:  # the task's log names each failing check with the value recorded
            assert ", ".join(failing) in run.log, failing
    # The quarantine-rate checks, the warnings and the reconciliation's count are recorded too; they
    # never gate.
    never_gate = {*alerts.ALERT_CHECKS, *quality.WARNING_CHECKS, discovery.UNSEEN_CHECK}
    assert set(recorded) - never_gate == {n for names in by_table.values() for n in names}
    return gates


def test_nightly_gates_judge_the_run_and_the_sweep_the_archive(pg_dsn, wh_conn, s3_client, bucket) -> None:
    rng = random.Random("scoped")
    letters = [imr_synth.random_letter(rng, n_items=2) for _ in range(3)]
    for truth, pdf in letters:
        s3_client.put_object(Bucket=bucket, Key=f"letters/{truth.case_number}.pdf", Body=pdf)
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute(BAD_LETTER)
        cur.execute(SPOIL_ITEM, {"case": letters[0][0].case_number})

    nightly = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket)
    assert nightly.state == "failed"
    recorded = _recorded(wh_conn, nightly.run_id)
    in_run = {n: v for n, v in recorded.items() if not v[0]}
    # Only the run's own bad item (and, when it had any, its claims administrator citations).
    assert in_run["items_evidence_set"] == (False, "1")
    assert set(in_run) <= {"items_evidence_set", "item_citations_match_evidence"}, in_run
    assert recorded["run_reconciliation"] == (True, "0")
    gates = _gates_agree(nightly, recorded, quality.SCOPE_RUN)
    # The letter outside the run does not fail the nightly letters gate.
    assert gates["gate_table_letters"] == "success" and gates["gate_table_items"] == "failed"
    assert task_states(nightly)[("record_quality", -1)] == ("success", 1)

    sweep = run_dag("imr_quality_sweep", warehouse_dsn=pg_dsn, bucket=bucket)
    assert sweep.state == "failed"
    recorded = _recorded(wh_conn, sweep.run_id)
    assert {n: v for n, v in recorded.items() if not v[0]} == in_run | {
        "letters_have_items": (False, "1"),
        "letters_outcome_matches_items": (False, "1"),
    }
    gates = _gates_agree(sweep, recorded, quality.SCOPE_ARCHIVE)
    assert gates["gate_table_letters"] == "failed" and gates["gate_table_s3_objects"] == "success"
    assert task_states(sweep)[("record_sweep", -1)] == ("success", 1)
