"""The rows the loader stages: each result checked (`staged_rows`: a record the warehouse cannot
hold becomes a failure with its rule's code) and turned into rows in the staging tables' column
order (`letter_row`, `item_rows`, `citation_rows`). No SQL here."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import NamedTuple

from imr.enrich import CLASSIFIER_VERSION
from imr.facts import CITATION_SOURCES
from imr.records import ITEM_FIELDS, LETTER_FIELDS, Letter
from imr.validate import record_rejection

from .db import bare_etag, clean_text
from .results import Failed, ObjectResult, Parsed

# Column order of the staging tables (and of the rows built for them).
LETTER_COLUMNS = ("key", *LETTER_FIELDS, "clinical_case_summary", "warnings")
# The enriched fields (contract v2) as imr.items stores them (migration 0004): NULL for an item
# whose `citations` is None (a record from a parser older than the enrichment).
# v3 adds `label_basis` and the classifier version that labelled the item (migration 0013).
ENRICHED_ITEM_COLUMNS = (
    "category",
    "subcategory",
    "label_basis",
    "classifier_version",
    "claims_administrator_evidence",
    "expert_reviewer_evidence",
)
ITEM_COLUMNS = ("key", "case_number", *ITEM_FIELDS, *ENRICHED_ITEM_COLUMNS)
CITATION_COLUMNS = (
    "key",
    "case_number",
    "seq",
    "source",
    "ordinal",
    "family",
    "title",
    "year",
    "sections",
    "text",
)


class StagedRow(NamedTuple):
    """An ObjectResult after validation: a loadable letter, or an error code and message."""

    ord: int
    key: str
    etag: str
    sha256: str | None
    letter: Letter | None
    error_code: str | None
    message: str | None


def staged_row(ord_: int, r: ObjectResult) -> StagedRow:
    """The staging row for one result: a Parsed letter that fails record_rejection becomes a failure
    with that code, so it is quarantined on its own and counted under its code."""
    etag, sha256 = bare_etag(r.etag), r.sha256 or None  # a failure before download has no digest
    match r.result:
        case Parsed(letter):
            if not isinstance(r.key, str) or not isinstance(sha256, str):
                raise ValueError(f"result for {r.key!r}: a loaded letter needs its object's key and sha256")
            problem = record_rejection(letter)
            if problem is None:
                return StagedRow(ord_, r.key, etag, sha256, letter, None, None)
            return StagedRow(ord_, r.key, etag, sha256, None, *problem)
        case Failed(code, message):
            return StagedRow(ord_, r.key, etag, sha256, None, code, clean_text(message))
    raise TypeError(f"result for {r.key!r} must be Parsed or Failed, not {type(r.result).__name__}")


def letter_row(key: str, letter: Letter) -> tuple:
    """The staging row for a letter, in LETTER_COLUMNS order."""
    d = {f: getattr(letter, f) for f in LETTER_FIELDS}  # includes the derived outcome
    d = {k: clean_text(v) for k, v in d.items()}
    if d["reviewer_licensure_states"] is not None:
        d["reviewer_licensure_states"] = [clean_text(s) for s in d["reviewer_licensure_states"]]
    warnings = [{"code": clean_text(w.code), "message": clean_text(w.message)} for w in letter.warnings]
    return (
        key,
        *(d[f] for f in LETTER_FIELDS),
        clean_text(letter.clinical_case_summary),
        json.dumps(warnings, ensure_ascii=False),
    )


def _evidence(item, source: str) -> str | None:
    part = (item.citations or {}).get(source)
    return part.get("evidence") if isinstance(part, dict) else None


def item_rows(key: str, letter: Letter) -> list[tuple]:
    """Staging rows for a letter's items, in ITEM_COLUMNS order."""
    return [
        (
            key,
            letter.case_number,
            *(clean_text(getattr(i, f)) for f in ITEM_FIELDS),
            clean_text(i.category),
            clean_text(i.subcategory),
            clean_text(i.label_basis),
            CLASSIFIER_VERSION if i.label_basis is not None else None,  # a pre-v3 record: unknown
            *(_evidence(i, s) for s in CITATION_SOURCES),
        )
        for i in letter.items
    ]


def citation_rows(key: str, letter: Letter) -> list[tuple]:
    """Staging rows for a letter's parsed citations, in CITATION_COLUMNS order: per item and source,
    ordinal 1, 2, ... in text order."""
    rows = []
    for i in letter.items:
        for source in CITATION_SOURCES:
            part = (i.citations or {}).get(source) or {}
            for n, c in enumerate(part.get("citations") or [], 1):
                year = c.get("year")
                rows.append(
                    (
                        key,
                        letter.case_number,
                        i.seq,
                        source,
                        n,
                        c.get("family"),
                        clean_text(c.get("title")),
                        year if isinstance(year, int) and not isinstance(year, bool) else None,
                        clean_text(c.get("sections")),
                        clean_text(c.get("text")),
                    )
                )
    return rows


def case_of(row: StagedRow) -> str | None:
    """The row's case number, None for a failure.

    :param row: a staged row.
    :return: the case number or None.
    """
    return row.letter.case_number if row.letter else None


def staged_rows(results: Iterable[ObjectResult]) -> list[StagedRow]:
    """One row per key (the last result reported for it: the set-wise merge needs unique keys), in
    the order the results came.

    :param results: the batch's results.
    :return: the rows to stage, loadable or failed.
    """
    by_key = {r.key: r for r in (staged_row(i, r) for i, r in enumerate(results))}
    return sorted(by_key.values(), key=lambda r: r.ord)
