"""Builders of warehouse contents for the tests: manifest objects, loader outcomes, letters with
chosen categories, decisions and citations, and the register -> claim -> load sequence of a DAG run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from imr import warehouse
from imr.records import Item, Letter
from imr.warehouse import ObjectResult, Parsed

BUCKET = "imr-letters"


T0 = datetime(2017, 2, 1, tzinfo=UTC)


def obj(key: str, etag: str | None = None, minutes: int = 0) -> dict:
    return {
        "key": key,
        "etag": etag or f'"{key}-etag"',
        "size": 1234,
        "last_modified": T0 + timedelta(minutes=minutes),
    }


def ok(key: str, let: Letter, sha: str | None = None, etag: str | None = None) -> ObjectResult:
    return ObjectResult(key, etag or f"{key}-etag", sha or f"sha-{key}", Parsed(let))


def claim_all(conn, run_id: str, batch_size: int = 100) -> list[str]:
    keys = []
    for batch_id in warehouse.claim_batches(conn, BUCKET, run_id, batch_size):
        keys += [o.key for o in warehouse.get_batch(conn, batch_id).objects]
    return keys


def ingest(conn, run_id: str, objects: list[dict], outcomes: list, **kw) -> dict:
    """register -> claim -> load, as a DAG run does."""
    warehouse.register_objects(conn, BUCKET, objects, run_id)
    claim_all(conn, run_id)
    return warehouse.load_batch(conn, BUCKET, outcomes, run_id, "load", 0, **kw)


def q(conn, sql: str, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args or None)  # no args: leave % in LIKE patterns alone
        rows = cur.fetchall()
    conn.rollback()
    return rows


def one(conn, sql: str, *args):
    return q(conn, sql, *args)[0][0]


CPMT = {"family": "MTUS", "title": "Chronic Pain Medical Treatment", "year": 2009, "sections": "Opioids"}


CPMT_NSAID = {**CPMT, "sections": "NSAIDs"}


OPIOID_TX = {"family": "MTUS", "title": "Opioid Treatment", "year": 2016, "sections": None}


ODG = {"family": "ODG", "text": "ODG Pain Chapter"}


ACOEM = {"family": "ACOEM", "text": "ACOEM Chapter 12"}


PT = "Physical Therapy/Occupational Therapy (PT/OT)"


def cites(expert: list[dict], claims: list[dict] | None = None) -> dict:
    claims = claims or []
    return {
        "claims_administrator": {"evidence": "cited" if claims else "none", "citations": claims},
        "expert_reviewer": {"evidence": "cited" if expert else "none", "citations": expert},
    }


def item(
    seq: int,
    cat: str,
    sub: str,
    decision: str,
    expert: list[dict],
    claims=None,
    *,
    request: str | None = None,
    basis: str | None = None,
) -> Item:
    return Item(
        seq=seq,
        request=request or f"request {seq}",
        decision=decision,
        category=cat,
        subcategory=sub,
        label_basis=basis,
        citations=cites(expert, claims),
    )


def make(case, decided, received, assigned, priority, specialty, items) -> Letter:
    return Letter(
        case_number=case,
        decision_date=decided,
        application_received=received,
        date_assigned=assigned,
        priority=priority,
        reviewer_specialty=specialty,
        items=items,
    )


def rows(conn, sql: str) -> list[tuple]:
    """Rows with numeric/float values as floats rounded to 12 places (exact for these fractions)."""
    out = []
    for r in q(conn, sql):
        out.append(
            tuple(
                round(float(v), 12) if hasattr(v, "as_integer_ratio") and not isinstance(v, int) else v
                for v in r
            )
        )
    return out
