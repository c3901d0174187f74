"""Re-labelling without re-parsing: a changed classifier recomputes every stored item's `category`,
`subcategory`, `label_basis`, evidence and citations from the item text already in imr.items
(request, rationale, the two guideline lines), so a classifier change never costs a re-parse of the
PDFs. Batches of letters in case_number order (keyset pagination), one transaction each; an item
is relabelled when its `classifier_version` is not the current one, so a rerun after a failure
finishes the job and a second run does nothing (`force` relabels everything again). Each run is a
row of imr.relabel_runs. The analytics views read imr.items, so they show the new labels at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from imr.enrich import CLASSIFIER_VERSION, enrich_item
from imr.records import Item

from .db import clean_text, copy_rows, transaction

DEFAULT_BATCH_LETTERS = 500
CITATION_SOURCES = ("claims_administrator", "expert_reviewer")
_CITATION_COLUMNS = ("case_number", "seq", "source", "ordinal", "family", "title", "year", "sections", "text")
_TEXT_COLUMNS = ("request", "decision_rationale", "claims_administrator_guideline", "maximus_guideline")
_LABEL_COLUMNS = (
    "case_number",
    "seq",
    "category",
    "subcategory",
    "label_basis",
    "claims_administrator_evidence",
    "expert_reviewer_evidence",
)


@dataclass(frozen=True)
class RelabelResult:
    """What one relabel run did."""

    run_id: str
    classifier_version: str
    batches: int
    letters: int
    items: int
    labels_changed: int  # items whose category or subcategory is not what was stored


def _citation_rows(case: str, item: Item) -> list[tuple]:
    """imr.item_citations rows of an enriched item, per source in text order (as the loader writes)."""
    rows = []
    for source in CITATION_SOURCES:
        part = (item.citations or {}).get(source) or {}
        for n, c in enumerate(part.get("citations") or [], 1):
            year = c.get("year")
            year = year if isinstance(year, int) and not isinstance(year, bool) else None
            row = (
                case,
                item.seq,
                source,
                n,
                c.get("family"),
                c.get("title"),
                year,
                c.get("sections"),
                c.get("text"),
            )
            rows.append(tuple(clean_text(v) if isinstance(v, str) else v for v in row))
    return rows


def _next_cases(cur, after: str, limit: int, version: str, force: bool) -> list[str]:
    cur.execute(
        """
        SELECT DISTINCT case_number FROM imr.items
        WHERE case_number > %(after)s AND (%(force)s OR classifier_version IS DISTINCT FROM %(v)s)
        ORDER BY case_number LIMIT %(limit)s
        """,
        {"after": after, "force": force, "v": version, "limit": limit},
    )
    return [r[0] for r in cur.fetchall()]


def _relabel_cases(cur, cases: list[str], version: str) -> tuple[int, int]:
    """Relabels the items of `cases` (locked for the transaction); returns (items, labels changed)."""
    cur.execute(
        f"""
        SELECT case_number, seq, {", ".join(_TEXT_COLUMNS)}, category, subcategory
        FROM imr.items WHERE case_number = ANY(%s) ORDER BY case_number, seq FOR UPDATE
        """,
        (cases,),
    )
    rows, citations, changed = [], [], 0
    for case, seq, *text, category, subcategory in cur.fetchall():
        item = enrich_item(Item(seq=seq, decision="Upheld", **dict(zip(_TEXT_COLUMNS, text, strict=True))))
        changed += (item.category, item.subcategory) != (category, subcategory)
        evidence = [(item.citations or {}).get(s, {}).get("evidence") for s in CITATION_SOURCES]
        rows.append((case, seq, item.category, item.subcategory, item.label_basis, *evidence))
        citations += _citation_rows(case, item)
    cur.execute(
        "CREATE TEMP TABLE _relabel (case_number TEXT, seq INT, category TEXT, subcategory TEXT,"
        " label_basis TEXT, claims_administrator_evidence TEXT, expert_reviewer_evidence TEXT) ON COMMIT DROP"
    )
    copy_rows(cur, "_relabel", _LABEL_COLUMNS, rows)
    cur.execute(
        """
        UPDATE imr.items i
        SET category = r.category, subcategory = r.subcategory, label_basis = r.label_basis,
            claims_administrator_evidence = r.claims_administrator_evidence,
            expert_reviewer_evidence = r.expert_reviewer_evidence, classifier_version = %s
        FROM _relabel r WHERE i.case_number = r.case_number AND i.seq = r.seq
        """,
        (version,),
    )
    cur.execute("DELETE FROM imr.item_citations WHERE case_number = ANY(%s)", (cases,))
    copy_rows(cur, "imr.item_citations", _CITATION_COLUMNS, citations)
    return len(rows), changed


def relabel(
    conn,
    batch_letters: int = DEFAULT_BATCH_LETTERS,
    run_id: str | None = None,
    force: bool = False,
    max_batches: int | None = None,
) -> RelabelResult:
    """Relabel the stored items whose label is not of the current classifier version.

    :param conn: a psycopg2 connection to the warehouse (the loader role suffices).
    :param batch_letters: letters per batch (one transaction each).
    :param run_id: the run's id in imr.relabel_runs (a new one if None); rerunning an id adds to it.
    :param force: relabel every item, whatever version labelled it.
    :param max_batches: stop after this many batches (None: until done).
    :return: what the run did.
    """
    if batch_letters < 1:
        raise ValueError("batch_letters must be at least 1")
    run_id = run_id or f"relabel-{uuid.uuid4().hex[:12]}"
    version = CLASSIFIER_VERSION
    with transaction(conn) as cur:
        cur.execute(
            "INSERT INTO imr.relabel_runs (run_id, classifier_version) VALUES (%s, %s)"
            " ON CONFLICT (run_id) DO UPDATE"
            " SET classifier_version = excluded.classifier_version, finished_at = NULL",
            (run_id, version),
        )
    after, batches, letters, items, changed = "", 0, 0, 0, 0
    while max_batches is None or batches < max_batches:
        with transaction(conn) as cur:
            cases = _next_cases(cur, after, batch_letters, version, force)
            if not cases:
                break
            n, c = _relabel_cases(cur, cases, version)
            cur.execute(
                "UPDATE imr.relabel_runs SET letters = letters + %s, items = items + %s,"
                " labels_changed = labels_changed + %s WHERE run_id = %s",
                (len(cases), n, c, run_id),
            )
        after, batches, letters, items, changed = (
            cases[-1],
            batches + 1,
            letters + len(cases),
            items + n,
            changed + c,
        )
    else:  # stopped by max_batches: the run is not finished
        return RelabelResult(run_id, version, batches, letters, items, changed)
    with transaction(conn) as cur:
        cur.execute("UPDATE imr.relabel_runs SET finished_at = now() WHERE run_id = %s", (run_id,))
    return RelabelResult(run_id, version, batches, letters, items, changed)
