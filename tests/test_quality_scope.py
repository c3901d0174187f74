"""The data-quality checks scoped to a run (imr.quality.SCOPE_RUN) against a real PostgreSQL: they
judge the rows the run touched and only those, through indexes, and the gates' statement over
imr.dq_results gives back exactly what was recorded. The whole-archive scope (the sweep) still sees
everything."""

from __future__ import annotations

import pytest

import quality_scope  # bench/ is on pytest's pythonpath (pyproject.toml)
from imr import quality

pytestmark = pytest.mark.integration
NIGHT = quality_scope.NIGHT_RUN


def _failed(conn, **params) -> dict[str, object]:
    return {r.name: r.observed for r in quality.run_checks(conn, NIGHT, **params) if not r.passed}


def _exec(conn, sql: str) -> None:
    with conn, conn.cursor() as cur:
        cur.execute(sql)


def _night_case(conn) -> str:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT min(case_number) FROM imr.s3_objects WHERE last_run_id = %s", (NIGHT,))
        return cur.fetchone()[0]


def _gate(conn, scope: str) -> list[tuple[bool, str]]:
    rows = []
    with conn, conn.cursor() as cur:
        for names in quality.names_by_table(run_id=NIGHT, scope=scope).values():
            cur.execute(quality.gate_sql(names, "%s"), (NIGHT,))
            rows.append(cur.fetchone())
    return rows


def test_scoped_checks_read_only_the_runs_rows_through_indexes(wh_conn) -> None:
    # 20,000 archive letters and a night of 20 (0.1%, a nightly run's share of the archive).
    quality_scope.generate(wh_conn, 20_000, 20)
    assert quality_scope.seq_scans(wh_conn, NIGHT) == {
        c.name: [] for c in quality.checks(NIGHT, scope=quality.SCOPE_RUN)
    }
    assert _failed(wh_conn, scope=quality.SCOPE_RUN) == {}
    assert _failed(wh_conn, scope=quality.SCOPE_ARCHIVE) == {}

    # Bad rows outside the run: an archive letter loses its items (with their citations), another
    # gets an impossible age, a citation appears for an item whose evidence says none.
    _exec(wh_conn, "DELETE FROM imr.items WHERE case_number = 'CM13-0000010'")
    _exec(wh_conn, "UPDATE imr.letters SET patient_age = 200 WHERE case_number = 'CM14-0000011'")
    _exec(
        wh_conn,
        "UPDATE imr.items SET claims_administrator_evidence = 'none'"
        " WHERE case_number = 'CM15-0000012' AND seq = 1",
    )
    assert _failed(wh_conn, scope=quality.SCOPE_RUN) == {}
    outside = {
        "letters_have_items": 1,  # (no items derive Partially Overturn, which is what it says)
        "letters_patient_age_range": 1,
        "item_citations_match_evidence": 1,
    }
    assert _failed(wh_conn, scope=quality.SCOPE_ARCHIVE) == outside

    # A bad row inside the run is caught by the scoped checks.
    inside = _night_case(wh_conn)
    _exec(wh_conn, f"UPDATE imr.letters SET outcome = 'Uphold' WHERE case_number = '{inside}'")
    _exec(
        wh_conn,
        f"UPDATE imr.items SET expert_reviewer_evidence = NULL WHERE case_number = '{inside}' AND seq = 2",
    )
    run_failed = _failed(wh_conn, scope=quality.SCOPE_RUN)
    # Its expert reviewer's two citation rows now stand for an unset evidence value.
    assert run_failed == {
        "letters_outcome_matches_items": 1,
        "items_evidence_set": 1,
        "item_citations_match_evidence": 1,
    }


def test_gate_statement_reads_back_the_recorded_results(wh_conn) -> None:
    quality_scope.generate(wh_conn, 200, 5)
    by_table = quality.names_by_table(run_id=NIGHT, scope=quality.SCOPE_RUN)
    # Nothing recorded yet: every gate fails, naming what is missing.
    gates = _gate(wh_conn, quality.SCOPE_RUN)
    assert [ok for ok, _ in gates] == [False] * len(by_table)
    assert "letters_have_items=not recorded" in gates[0][1]

    quality.record_results(wh_conn, NIGHT, quality.run_checks(wh_conn, NIGHT, scope=quality.SCOPE_RUN))
    assert _gate(wh_conn, quality.SCOPE_RUN) == [(True, "none failed")] * len(by_table)

    _exec(wh_conn, f"DELETE FROM imr.items WHERE case_number = '{_night_case(wh_conn)}'")
    results = quality.run_checks(wh_conn, NIGHT, scope=quality.SCOPE_RUN)
    quality.record_results(wh_conn, NIGHT, results)
    # The latest result of each check decides, with its observed value in the gate's row.
    failing = {r.name: r.observed for r in results if not r.passed}
    assert failing == {"letters_have_items": 1}
    gates = dict(zip(by_table, _gate(wh_conn, quality.SCOPE_RUN), strict=True))
    assert gates["imr.letters"] == (False, "letters_have_items=1")
    assert all(g == (True, "none failed") for t, g in gates.items() if t != "imr.letters")
