"""The facts stated once in `imr.facts` (and the record's domains) agree with what the migrations
enforce: the CHECK constraints are read back from a migrated warehouse through pg_catalog, so a
migration or a constant changed alone fails here."""

from __future__ import annotations

import re

import pytest

from imr import facts
from imr.enrich import LABEL_BASES
from imr.records import DECISIONS, LETTER_FORMATS, OUTCOMES
from imr.warehouse import STATUSES

pytestmark = pytest.mark.integration

# `CHECK ((family = ANY (ARRAY['MTUS'::text, ...])))` as pg_get_constraintdef renders `IN (...)`.
_IN_LIST = re.compile(r"\(\(?(?P<column>\w+) = ANY \(ARRAY\[(?P<values>[^\]]*)\]\)\)")


def _check_domains(conn) -> dict[tuple[str, str], tuple[str, ...]]:
    """{(table, column): allowed values} for every `column IN (...)` CHECK in schema imr."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.conrelid::regclass::text, pg_get_constraintdef(c.oid)
            FROM pg_constraint c
            WHERE c.contype = 'c' AND c.connamespace = 'imr'::regnamespace
            """
        )
        rows = cur.fetchall()
    out = {}
    for table, definition in rows:
        m = _IN_LIST.search(definition)
        if m:
            values = tuple(re.findall(r"'((?:[^']|'')*)'::text", m["values"]))
            out[(table.removeprefix("imr."), m["column"])] = values
    return out


def test_check_constraints_agree_with_the_facts(wh_conn) -> None:
    domains = _check_domains(wh_conn)
    expected = {
        ("item_citations", "family"): facts.CITATION_FAMILIES,
        ("item_citations", "source"): facts.CITATION_SOURCES,
        **{("items", f"{source}_evidence"): facts.EVIDENCE for source in facts.CITATION_SOURCES},
        ("items", "decision"): DECISIONS,
        ("letters", "outcome"): OUTCOMES,
        ("s3_objects", "status"): STATUSES,
        ("letters", "letter_format"): LETTER_FORMATS,
        ("items", "label_basis"): LABEL_BASES,
    }
    assert {k: domains.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    "value", ["CM16-0213037", "CM1-0213037", "CM16-021303", "XCM16-0213037", "CM16-02130370", "cm16-0213037"]
)
def test_case_number_pattern_means_the_same_in_postgresql(wh_conn, value) -> None:
    # The quality check runs the pattern in SQL, the validator in Python: one text, one meaning.
    with wh_conn.cursor() as cur:
        cur.execute("SELECT %s ~ %s", (value, f"^{facts.CASE_NUMBER_PATTERN}$"))
        in_sql = cur.fetchone()[0]
    assert in_sql == bool(facts.CASE_NUMBER.match(value))
