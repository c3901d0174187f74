"""Migration 0004 (enriched item fields and imr.item_citations), the loader writing them, and the
reparse path that fills them for letters loaded by an older parser (issue 10, Must show 3)."""

from __future__ import annotations

import uuid
from datetime import date

import psycopg2
import pytest

from imr import PARSER_VERSION, quality, warehouse
from imr.enrich import enrich_letter
from imr.records import Item, Letter
from support.builders import BUCKET, claim_all, ingest, obj, ok, one, q

pytestmark = pytest.mark.integration

OLD_VERSION = "1.0.0"  # the parser before the enrichment: records without category/citations

CA_MTUS = (
    "Decision based on MTUS Chronic Pain Medical Treatment 2016, Section(s): Opioids, and "
    "Low Back Complaints 2004, Section(s): Summary."
)
ER_ODG = (
    "Decision based on MTUS Chronic Pain Medical Treatment 2016, Section(s): Opioids. "
    "Decision based on Non-MTUS Citation Official Disability Guidelines (ODG), Pain Chapter."
)
NONE_CITED = "The Claims Administrator did not cite any medical evidence for its decision."


def items_of(case: str) -> list[Item]:
    """Two items whose enriched fields the real enrichment fills (a drug and a service)."""
    return [
        Item(
            seq=1,
            request="Norco 10/325mg #60",
            decision="Upheld",
            claims_administrator_guideline=CA_MTUS,
            maximus_guideline=ER_ODG,
            decision_rationale=f"Opioids are not indicated ({case}).",
        ),
        Item(
            seq=2,
            request="MRI of the lumbar spine",
            decision="Overturned",
            claims_administrator_guideline=NONE_CITED,
            maximus_guideline="Decision based on MTUS Low Back Complaints 2004, Section(s): Special Studies.",
            decision_rationale="Red flags are documented.",
        ),
    ]


def make_letter(case: str, enriched: bool) -> Letter:
    let = Letter(
        case_number=case,
        date_assigned=date(2016, 12, 1),
        date_of_injury=date(2014, 3, 3),
        decision_date=date(2016, 12, 20),
        ur_denial_date=date(2016, 11, 1),
        application_received=date(2016, 11, 20),
        priority="Standard",
        reviewer_specialty="Pain Management",
        reviewer_licensure_states=["California"],
        patient_age=47,
        patient_sex="male",
        clinical_case_summary="A 47 year old male.",
        items=items_of(case),
    )
    return enrich_letter(let) if enriched else let


LETTER_COLS_UNCHANGED = (
    "case_number, date_assigned, date_of_injury, decision_date, ur_denial_date, application_received,"
    " priority, reviewer_specialty, reviewer_licensure_states, patient_age, patient_sex, outcome,"
    " clinical_case_summary, warnings, source_bucket, source_key, source_etag, source_sha256,"
    " source_last_modified"
)
ITEM_V1_COLS = (
    "case_number, seq, request, original_request, decision, claims_administrator_guideline,"
    " maximus_guideline, decision_rationale"
)
ENRICHED_COLS = (
    "case_number, seq, category, subcategory, claims_administrator_evidence, expert_reviewer_evidence"
)


def citations(conn) -> list[tuple]:
    return q(
        conn,
        "SELECT case_number, seq, source, ordinal, family, title, year, sections, text"
        " FROM imr.item_citations ORDER BY 1, 2, 3, 4",
    )


def test_migration_adds_columns_and_table(wh_conn):
    cols = {
        r[0]
        for r in q(
            wh_conn,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'imr' AND table_name = 'items'",
        )
    }
    assert {"category", "subcategory", "claims_administrator_evidence", "expert_reviewer_evidence"} <= cols
    assert one(wh_conn, "SELECT to_regclass('imr.item_citations') IS NOT NULL")
    with pytest.raises(psycopg2.errors.CheckViolation), wh_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO imr.letters (case_number, source_bucket, source_key, source_etag, source_sha256,"
            " parser_version) VALUES ('CM16-0000001', 'b', 'k', 'e', 's', 'v');"
            "INSERT INTO imr.items (case_number, seq, request, decision, expert_reviewer_evidence)"
            " VALUES ('CM16-0000001', 1, 'r', 'Upheld', 'maybe')"
        )
    wh_conn.rollback()


def test_loader_writes_enriched_fields_and_citations(wh_conn):
    ingest(wh_conn, "run1", [obj("e/a.pdf")], [ok("e/a.pdf", make_letter("CM16-0000101", True))])
    assert q(wh_conn, f"SELECT {ENRICHED_COLS} FROM imr.items ORDER BY seq") == [
        ("CM16-0000101", 1, "Pharmaceuticals", "Opioids", "cited", "cited"),
        ("CM16-0000101", 2, "Diagnostic Testing", "Imaging/Radiology", "none", "cited"),
    ]
    assert citations(wh_conn) == [
        (
            "CM16-0000101",
            1,
            "claims_administrator",
            1,
            "MTUS",
            "Chronic Pain Medical Treatment",
            2016,
            "Opioids",
            None,
        ),
        ("CM16-0000101", 1, "claims_administrator", 2, "MTUS", "Low Back Complaints", 2004, "Summary", None),
        (
            "CM16-0000101",
            1,
            "expert_reviewer",
            1,
            "MTUS",
            "Chronic Pain Medical Treatment",
            2016,
            "Opioids",
            None,
        ),
        (
            "CM16-0000101",
            1,
            "expert_reviewer",
            2,
            "ODG",
            None,
            None,
            None,
            "Official Disability Guidelines (ODG), Pain Chapter.",
        ),
        (
            "CM16-0000101",
            2,
            "expert_reviewer",
            1,
            "MTUS",
            "Low Back Complaints",
            2004,
            "Special Studies",
            None,
        ),
    ]


def test_corrected_letter_replaces_its_citations(wh_conn):
    ingest(wh_conn, "run1", [obj("c/a.pdf")], [ok("c/a.pdf", make_letter("CM16-0000102", True))])
    corrected = make_letter("CM16-0000102", False)
    corrected.items = corrected.items[1:]  # one item left, renumbered, with other guidelines
    corrected.items[0].seq = 1
    corrected.items[0].maximus_guideline = "Decision based on Non-MTUS Citation ACOEM Practice Guidelines."
    enrich_letter(corrected)
    ingest(wh_conn, "run2", [obj("c/b.pdf", minutes=5)], [ok("c/b.pdf", corrected)])
    assert q(wh_conn, f"SELECT {ENRICHED_COLS} FROM imr.items") == [
        ("CM16-0000102", 1, "Diagnostic Testing", "Imaging/Radiology", "none", "cited"),
    ]
    assert citations(wh_conn) == [
        ("CM16-0000102", 1, "expert_reviewer", 1, "ACOEM", None, None, None, "ACOEM Practice Guidelines."),
    ]


def test_bad_citation_family_quarantines_the_letter_alone(wh_conn):
    bad = make_letter("CM16-0000103", True)
    bad.items[0].citations["expert_reviewer"]["citations"][0]["family"] = "Cochrane"
    counts = ingest(
        wh_conn,
        "run1",
        [obj("q/a.pdf"), obj("q/b.pdf")],
        [ok("q/a.pdf", bad), ok("q/b.pdf", make_letter("CM16-0000104", True))],
    )
    assert counts.quarantined_by_code == {"item_structure": 1} and counts.loaded == 1


def test_loader_role_has_dml_on_item_citations(wh_conn, pg_dsn):
    role = f"imr_test_login_{uuid.uuid4().hex[:8]}"
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN IN ROLE imr_loader")
    try:
        loader = psycopg2.connect(f"{pg_dsn} user={role}")
        try:
            ingest(loader, "run1", [obj("r/a.pdf")], [ok("r/a.pdf", make_letter("CM16-0000105", True))])
            corrected = make_letter("CM16-0000105", True)
            ingest(loader, "run2", [obj("r/b.pdf", minutes=5)], [ok("r/b.pdf", corrected, sha="other")])
            assert one(loader, "SELECT count(*) FROM imr.item_citations") == 5
            with loader, loader.cursor() as cur:
                cur.execute("UPDATE imr.item_citations SET sections = sections")
                cur.execute("DELETE FROM imr.item_citations WHERE source = 'claims_administrator'")
        finally:
            loader.close()
    finally:
        with wh_conn, wh_conn.cursor() as cur:
            cur.execute(f"DROP ROLE {role}")


def _state(conn) -> dict:
    return {
        "letters": q(conn, f"SELECT {LETTER_COLS_UNCHANGED} FROM imr.letters ORDER BY case_number"),
        "items": q(conn, f"SELECT {ITEM_V1_COLS} FROM imr.items ORDER BY case_number, seq"),
        "enriched": q(conn, f"SELECT {ENRICHED_COLS} FROM imr.items ORDER BY case_number, seq"),
        "citations": citations(conn),
        "versions": q(conn, "SELECT DISTINCT parser_version FROM imr.letters"),
    }


def test_reparse_fills_enriched_fields_and_changes_nothing_else(wh_conn):
    """Must show 3: letters loaded by the pre-0004 parser (no enriched fields), then the backfill's
    reparse (mark_for_reparse + claim + load with the new version, as imr_backfill with
    reparse=true does): the new columns and citation rows are filled; every other column of
    imr.letters and imr.items is unchanged."""
    cases = ["CM16-0000201", "CM16-0000202", "CM16-0000203"]
    keys = [f"old/{c}.pdf" for c in cases]
    old = [ok(k, make_letter(c, False)) for k, c in zip(keys, cases, strict=True)]
    assert all(i.citations is None and i.category is None for r in old for i in r.result.letter.items)
    ingest(wh_conn, "run-old", [obj(k) for k in keys], old, parser_version=OLD_VERSION)
    before = _state(wh_conn)
    assert before["versions"] == [(OLD_VERSION,)]
    assert {r[2:] for r in before["enriched"]} == {(None, None, None, None)}
    assert before["citations"] == []

    # The new parser reads the same bytes: same records, now with the enriched fields.
    assert PARSER_VERSION != OLD_VERSION
    assert warehouse.mark_for_reparse(wh_conn, BUCKET, PARSER_VERSION) == 3
    assert sorted(claim_all(wh_conn, "backfill-reparse")) == sorted(keys)
    new = [ok(k, make_letter(c, True)) for k, c in zip(keys, cases, strict=True)]
    counts = warehouse.load_batch(wh_conn, BUCKET, new, "backfill-reparse", "load", 0)
    assert (counts.loaded, counts.letters_written, counts.items_written) == (3, 3, 6)

    after = _state(wh_conn)
    assert after["letters"] == before["letters"]
    assert after["items"] == before["items"]
    assert after["versions"] == [(PARSER_VERSION,)]
    assert [r[2:] for r in after["enriched"]] == [
        ("Pharmaceuticals", "Opioids", "cited", "cited"),
        ("Diagnostic Testing", "Imaging/Radiology", "none", "cited"),
    ] * 3
    assert len(after["citations"]) == 15 and {r[0] for r in after["citations"]} == set(cases)
    assert one(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE parser_version = %s", PARSER_VERSION) == 3
    # A second reparse finds nothing to do.
    assert warehouse.mark_for_reparse(wh_conn, BUCKET, PARSER_VERSION) == 0


def test_enrichment_quality_checks(wh_conn):
    ingest(
        wh_conn,
        "run1",
        [obj("g/a.pdf"), obj("g/b.pdf")],
        [ok("g/a.pdf", make_letter("CM16-0000301", True)), ok("g/b.pdf", make_letter("CM16-0000302", True))],
    )
    names = {c.name for c in quality.enrichment_checks()}
    good = {r.name: r for r in quality.run_checks(wh_conn, "run1")}
    assert names <= set(good) and all(good[n].passed for n in names)
    assert {"imr.item_citations"} <= set(quality.table_checks())
    assert {"category", "subcategory"} <= set(quality.column_mapping()["imr.items"])

    with wh_conn, wh_conn.cursor() as cur:
        # A subcategory from another category, an item without evidence values, a citation row for
        # a source whose evidence is 'none', and a 'cited' source whose rows are gone.
        cur.execute(
            "UPDATE imr.items SET subcategory = 'Opioids' WHERE case_number = 'CM16-0000301' AND seq = 2"
        )
        cur.execute(
            "UPDATE imr.items SET category = NULL, claims_administrator_evidence = NULL"
            " WHERE case_number = 'CM16-0000302' AND seq = 1"
        )
        cur.execute(
            "INSERT INTO imr.item_citations (case_number, seq, source, ordinal, family, text)"
            " VALUES ('CM16-0000301', 2, 'claims_administrator', 1, 'other', 'x')"
        )
        cur.execute(
            "DELETE FROM imr.item_citations WHERE case_number = 'CM16-0000302' AND seq = 2"
            " AND source = 'expert_reviewer'"
        )
    bad = {r.name: r for r in quality.run_checks(wh_conn, "run1") if r.name in names}
    assert {n: r.observed for n, r in bad.items()} == {
        "items_category_in_taxonomy": 2,
        "items_evidence_set": 1,
        "items_cited_evidence_has_citations": 1,
        # the inserted row, and CM16-0000302/1's claims administrator rows (its evidence is now NULL)
        "item_citations_match_evidence": 3,
    }
    assert not any(r.passed for r in bad.values())
    # The table checks, as SQLTableCheckOperator evaluates them, fail too.
    for table, checks in quality.table_checks(run_id="run1").items():
        for name, check in checks.items():
            if name in names:
                assert (
                    one(
                        wh_conn, f"SELECT CASE WHEN {check['check_statement']} THEN 1 ELSE 0 END FROM {table}"
                    )
                    == 0
                )
