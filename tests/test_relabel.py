"""Label basis in the warehouse (migration 0013) and re-labelling without re-parsing
(imr.warehouse.relabel, `imr relabel`): issue 19, Must show 3 and 4."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime

import psycopg2
import pytest

from imr import warehouse
from imr.enrich import CLASSIFIER_VERSION, classify, enrich_letter
from imr.records import Item, Letter
from imr.warehouse import ObjectResult, Parsed
from imr.warehouse.relabel import relabel

pytestmark = pytest.mark.integration

BUCKET = "imr-relabel"
MTUS = "Decision based on MTUS Chronic Pain Medical Treatment 2016, Section(s): Opioids."
LABELS = "case_number, seq, category, subcategory, label_basis, claims_administrator_evidence"
NONE_CITED = "The Claims Administrator did not cite any medical evidence for its decision."
# Requests of every basis: the wording decides, the rationale decides, nothing decides (default).
REQUESTS = (
    ("Norco 10/325mg #60", "Opioids are not indicated."),
    ("Right knee arthroscopy with evaluation of the ACL", "Surgery is supported."),
    ("PT/PTT blood tests", "Labs are supported."),
    ("Unknown medication", "The request for Norco 10/325mg #60 is not medically necessary."),
    ("Item nobody knows", "No useful text."),
    ("Hygiene supplies", "Supplies are not medical treatment."),
)


def _letter(n: int) -> Letter:
    items = [
        Item(
            seq=k + 1,
            request=REQUESTS[(n + k) % len(REQUESTS)][0],
            decision="Upheld" if (n + k) % 2 else "Overturned",
            claims_administrator_guideline=MTUS if k % 2 else NONE_CITED,
            maximus_guideline=MTUS,
            decision_rationale=REQUESTS[(n + k) % len(REQUESTS)][1],
        )
        for k in range(1 + n % 3)
    ]
    letter = Letter(
        case_number=f"CM16-{n:07d}",
        date_assigned=date(2016, 12, 1),
        decision_date=date(2016, 12, 20),
        priority="Standard",
        items=items,
        letter_format="final_2016",
    )
    return enrich_letter(letter)


def load(conn, letters: list[Letter], run_id: str = "load1", batch: int = 200) -> None:
    """register -> claim -> load, as an ingest run does, `batch` letters per batch."""
    t0 = datetime(2017, 2, 1, tzinfo=UTC)
    objects = [
        {"key": f"k/{x.case_number}.pdf", "etag": f'"e{x.case_number}"', "size": 1, "last_modified": t0}
        for x in letters
    ]
    warehouse.register_objects(conn, BUCKET, objects, run_id)
    by_key = {o["key"]: x for o, x in zip(objects, letters, strict=True)}
    for batch_id in warehouse.claim_batches(conn, BUCKET, run_id, batch):
        keys = [o.key for o in warehouse.get_batch(conn, batch_id).objects]
        results = [ObjectResult(k, f"e{by_key[k].case_number}", f"sha-{k}", Parsed(by_key[k])) for k in keys]
        warehouse.load_batch(conn, BUCKET, results, run_id, "load", 0)


def q(conn, sql: str, *args) -> list[tuple]:
    with warehouse.transaction(conn) as cur:
        cur.execute(sql, args or None)
        return cur.fetchall()


def counts(conn) -> tuple:
    return q(
        conn,
        "SELECT (SELECT count(*) FROM imr.letters), (SELECT count(*) FROM imr.items),"
        " (SELECT count(*) FROM imr.item_citations), (SELECT sum(items) FROM imr.decisions_by_category)",
    )[0]


def age_the_labels(conn) -> None:
    """What an older classifier left: another label on every item, no basis, no version, and the
    citations of half the letters missing."""
    with warehouse.transaction(conn) as cur:
        cur.execute(
            "UPDATE imr.items SET category = 'Evaluation & Management', subcategory = 'Medical Specialties',"
            " label_basis = NULL, classifier_version = NULL;"
            "DELETE FROM imr.item_citations WHERE right(case_number, 1) IN ('0', '2', '4', '6', '8')"
        )


def test_loader_writes_label_basis_and_version_and_the_column_is_checked(wh_conn):
    load(wh_conn, [_letter(n) for n in range(6)])
    rows = q(
        wh_conn,
        "SELECT request, decision_rationale, category, subcategory, label_basis, classifier_version"
        " FROM imr.items",
    )
    assert {r[4] for r in rows} == {"rule", "rationale", "default"}
    for request, rationale, category, subcategory, basis, version in rows:
        label = classify(request, rationale)
        assert (category, subcategory, basis) == (label.category, label.subcategory, label.basis)
        assert version == CLASSIFIER_VERSION
    with pytest.raises(psycopg2.errors.CheckViolation), warehouse.transaction(wh_conn) as cur:
        cur.execute("UPDATE imr.items SET label_basis = 'guess'")


def test_views_show_the_default_share_and_the_requests_nobody_knew(wh_conn):
    load(wh_conn, [_letter(n) for n in range(30)])
    shares = dict((b, (n, float(s))) for b, n, s in q(wh_conn, "SELECT * FROM imr.label_basis_share"))
    total = q(wh_conn, "SELECT count(*) FROM imr.items")[0][0]
    defaults = q(wh_conn, "SELECT count(*) FROM imr.items WHERE label_basis = 'default'")[0][0]
    assert shares["default"] == (defaults, pytest.approx(defaults / total)) and defaults > 0
    assert sum(n for n, _ in shares.values()) == total
    assert q(wh_conn, "SELECT request, items FROM imr.default_label_requests") == [
        ("item nobody knows", defaults)
    ]


def test_letter_with_an_unknown_label_basis_is_quarantined(wh_conn):
    bad = _letter(1)
    bad.items[0].label_basis = "guess"
    load(wh_conn, [bad, _letter(2)])
    assert q(wh_conn, "SELECT case_number FROM imr.letters") == [("CM16-0000002",)]
    assert q(wh_conn, "SELECT error_code FROM imr.s3_objects WHERE status = 'quarantined'") == [
        ("item_structure",)
    ]


def test_relabel_recomputes_every_item_once_counts_unchanged_views_updated(wh_conn):
    letters = [_letter(n) for n in range(300)]
    load(wh_conn, letters)
    fresh = q(wh_conn, f"SELECT {LABELS} FROM imr.items ORDER BY 1, 2")
    citations = q(wh_conn, "SELECT * FROM imr.item_citations ORDER BY 1, 2, 3, 4")
    before = counts(wh_conn)
    age_the_labels(wh_conn)
    assert q(wh_conn, "SELECT count(DISTINCT category) FROM imr.decisions_by_category") == [(1,)]

    result = relabel(wh_conn, batch_letters=64)

    items = before[1]
    assert (result.letters, result.items, result.batches) == (300, items, 5)
    changed = q(wh_conn, "SELECT count(*) FROM imr.items WHERE category <> 'Evaluation & Management'")
    assert result.labels_changed == changed[0][0] > 0
    assert q(wh_conn, f"SELECT {LABELS} FROM imr.items ORDER BY 1, 2") == fresh
    assert q(wh_conn, "SELECT * FROM imr.item_citations ORDER BY 1, 2, 3, 4") == citations
    assert counts(wh_conn) == before
    assert q(wh_conn, "SELECT DISTINCT classifier_version FROM imr.items") == [(CLASSIFIER_VERSION,)]
    by_label = "SELECT category || '/' || subcategory, sum(items) FROM imr.decisions_by_category GROUP BY 1"
    view = dict(q(wh_conn, by_label))
    assert view["Surgery/Arthroscopic Surgery"] and view["Diagnostic Testing/Lab & Pathology"]
    assert view["DMEPOS/Supplies"] and view["Pharmaceuticals/Opioids"]
    run = q(
        wh_conn, "SELECT classifier_version, letters, items, finished_at IS NOT NULL FROM imr.relabel_runs"
    )
    assert run == [(CLASSIFIER_VERSION, 300, items, True)]

    # Idempotent: nothing is left to relabel; --force relabels all again and changes nothing.
    again = relabel(wh_conn)
    assert (again.items, again.labels_changed) == (0, 0)
    forced = relabel(wh_conn, batch_letters=1000, force=True)
    assert (forced.items, forced.labels_changed, forced.batches) == (items, 0, 1)
    assert counts(wh_conn) == before


def test_an_interrupted_relabel_is_finished_by_a_rerun(wh_conn):
    load(wh_conn, [_letter(n) for n in range(40)])
    age_the_labels(wh_conn)
    total = q(wh_conn, "SELECT count(*) FROM imr.items")[0][0]
    part = relabel(wh_conn, batch_letters=10, run_id="r1", max_batches=2)
    assert part.letters == 20
    assert q(wh_conn, "SELECT finished_at FROM imr.relabel_runs") == [(None,)]
    rest = relabel(wh_conn, batch_letters=10, run_id="r1")
    assert part.items + rest.items == total and rest.letters == 20
    assert q(wh_conn, "SELECT items, finished_at IS NOT NULL FROM imr.relabel_runs") == [(total, True)]
    assert q(wh_conn, "SELECT count(*) FROM imr.items WHERE label_basis IS NULL") == [(0,)]


def test_relabel_cli(wh_conn, pg_dsn, capsys):
    from imr.cli import main

    load(wh_conn, [_letter(n) for n in range(12)])
    age_the_labels(wh_conn)
    assert main(["relabel", "--dsn", pg_dsn, "--batch-letters", "5"]) == 0
    out = capsys.readouterr().out
    assert '"letters": 12' in out and f'"classifier_version": "{CLASSIFIER_VERSION}"' in out
    assert q(wh_conn, "SELECT count(*) FROM imr.items WHERE classifier_version IS NULL") == [(0,)]


@pytest.mark.skipif(
    os.environ.get("IMR_MEASURE_RELABEL") != "1", reason="a measurement: IMR_MEASURE_RELABEL=1"
)
def test_measure_relabel_10000_letters(wh_conn):
    letters = [_letter(n) for n in range(10_000)]
    load(wh_conn, letters, batch=1000)
    age_the_labels(wh_conn)
    t0 = time.perf_counter()
    result = relabel(wh_conn, batch_letters=1000)
    seconds = time.perf_counter() - t0
    per = seconds / result.items * 100_000
    print(
        f"relabel: {result.letters} letters, {result.items} items in {seconds:.1f}s;",
        f"{per:.0f}s per 100,000 items",
    )
    assert result.letters == 10_000


@pytest.mark.e2e
def test_imr_relabel_dag_relabels_the_warehouse(wh_conn, pg_dsn):
    """The thin DAG on real Airflow: check_schema, then the relabel in batches, recorded under the
    DAG run's id; XCom carries the counts only."""
    from support.airflow_run import run_dag

    load(wh_conn, [_letter(n) for n in range(30)])
    age_the_labels(wh_conn)
    total = q(wh_conn, "SELECT count(*) FROM imr.items")[0][0]
    run = run_dag("imr_relabel", warehouse_dsn=pg_dsn, bucket=BUCKET, conf={"batch_letters": 8})
    assert run.state == "success"
    assert q(wh_conn, "SELECT run_id, letters, items, finished_at IS NOT NULL FROM imr.relabel_runs") == [
        (run.run_id, 30, total, True)
    ]
    stale = "SELECT count(*) FROM imr.items WHERE classifier_version IS DISTINCT FROM %s"
    assert q(wh_conn, stale, CLASSIFIER_VERSION) == [(0,)]
    # The task refreshed the Insights aggregates for the relabelled days (migration 0014).
    assert q(wh_conn, "SELECT count(*) FROM imr.insights_stale_days") == [(0,)]
    by_label = "SELECT category, label_basis, count(*) FROM imr.items GROUP BY 1, 2 ORDER BY 1, 2"
    aggregated = (
        "SELECT category, label_basis, sum(items)::int FROM imr.insights_month_items"
        " WHERE decision_day IS NULL GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert q(wh_conn, aggregated) == q(wh_conn, by_label)


def test_default_label_share_is_a_recorded_warning_not_a_gate(wh_conn):
    from imr import quality

    load(wh_conn, [_letter(n) for n in range(30)], run_id="run-a")
    known = [x for x in map(_letter, range(100, 130)) if all(i.label_basis != "default" for i in x.items)]
    load(wh_conn, known, run_id="run-b")
    share_a = q(
        wh_conn,
        "SELECT avg(CASE WHEN label_basis = 'default' THEN 1.0 ELSE 0.0 END) FROM imr.items"
        " WHERE case_number < 'CM16-0000100'",
    )[0][0]
    (warn_a,) = quality.run_warnings(wh_conn, "run-a")
    assert warn_a.name == "items_default_label_share" and not warn_a.passed
    assert warn_a.observed == share_a > quality.DEFAULT_LABEL_SHARE_THRESHOLD
    (warn_b,) = quality.run_warnings(wh_conn, "run-b")
    assert warn_b.passed and warn_b.observed == 0
    (lenient,) = quality.run_warnings(wh_conn, "run-a", default_label_share_threshold=0.5)
    assert lenient.passed
    # Recorded with the run like the checks, and never among the gates.
    quality.record_results(wh_conn, "run-a", [warn_a])
    assert q(wh_conn, "SELECT check_name, passed FROM imr.dq_results WHERE run_id = 'run-a'") == [
        ("items_default_label_share", False)
    ]
    gates = {name for checks in quality.table_checks().values() for name in checks}
    assert "items_default_label_share" not in gates
    assert all(r.passed for r in quality.run_checks(wh_conn, "run-a") if r.name.startswith("items_"))
