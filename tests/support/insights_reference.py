"""The Insights figures as imr.read.insights computed them before the monthly aggregates
(migration 0014): direct queries over imr.letters, imr.items and imr.item_citations, kept verbatim
as the reference the aggregated read side must equal (tests/test_insights_aggregates.py). Slow at
archive scale by design; never used by the page."""

from __future__ import annotations

from typing import Any

from imr.enrich import LABEL_BASES
from imr.facts import HIGHLIGHTED_DRUG_CLASS, PHARMACEUTICALS
from imr.read.insights import (
    ALL,
    BIN_DAYS,
    DEFAULT_REQUESTS_MAX,
    DEFAULT_REQUESTS_TOP,
    EXPEDITED,
    LAST_BIN_FROM,
    LIMIT_DAYS,
    N_BINS,
    DecisionRange,
)
from imr.warehouse.db import transaction

# Letters decided in the range, both bounds inclusive and optional.
_IN_RANGE = """(%(first)s::date IS NULL OR l.decision_date >= %(first)s::date)
      AND (%(last)s::date IS NULL OR l.decision_date <= %(last)s::date)"""


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _fetch(conn, sql: str, rng: DecisionRange, **extra: Any) -> list[tuple]:
    with transaction(conn) as cur:  # read only: ends the transaction, no snapshot held
        cur.execute(sql, rng.params() | extra)
        return cur.fetchall()


def totals(conn, rng: DecisionRange = ALL) -> dict[str, int]:
    """{"letters", "items"} decided in the range."""
    [(letters, items)] = _fetch(
        conn,
        f"""
        SELECT count(DISTINCT l.case_number), count(i.seq)
        FROM imr.letters l LEFT JOIN imr.items i USING (case_number)
        WHERE {_IN_RANGE}
        """,
        rng,
    )
    return {"letters": letters, "items": items}


def overturn_by_category(conn, rng: DecisionRange = ALL) -> list[dict[str, Any]]:
    """Per request category (decisions_by_category summed over years and subcategories): items,
    upheld, overturned, overturn rate; the most disputed category first. Category None: items
    loaded before the enriched fields existed."""
    rows = _fetch(
        conn,
        f"""
        SELECT i.category,
               count(*),
               count(*) FILTER (WHERE i.decision = 'Upheld'),
               count(*) FILTER (WHERE i.decision = 'Overturned')
        FROM imr.items i JOIN imr.letters l USING (case_number)
        WHERE {_IN_RANGE}
        GROUP BY i.category
        ORDER BY count(*) DESC, i.category NULLS LAST
        """,
        rng,
    )
    return [
        {"category": c, "items": n, "upheld": u, "overturned": o, "overturn_rate": _rate(o, n)}
        for c, n, u, o in rows
    ]


def pharmaceutical_mix(conn, rng: DecisionRange = ALL) -> dict[str, Any]:
    """Pharmaceuticals' share of all items and each drug class's share of the pharmaceuticals
    (pharmaceutical_share, drug_class_share), with the opioids' figures apart:
    {"items", "pharmaceutical_items", "pharmaceutical_share", "opioid_items",
    "opioid_share_of_pharmaceuticals", "drug_classes": [{"drug_class", "opioid", "items",
    "share_of_pharmaceuticals", "overturned", "overturn_rate"}]}, the largest class first."""
    rows = _fetch(
        conn,
        f"""
        SELECT i.subcategory,
               count(*),
               count(*) FILTER (WHERE i.decision = 'Overturned')
        FROM imr.items i JOIN imr.letters l USING (case_number)
        WHERE {_IN_RANGE} AND i.category = %(pharma)s
        GROUP BY i.subcategory
        ORDER BY count(*) DESC, i.subcategory NULLS LAST
        """,
        rng,
        pharma=PHARMACEUTICALS,
    )
    items = totals(conn, rng)["items"]
    pharma = sum(n for _, n, _ in rows)
    opioids = sum(n for c, n, _ in rows if c == HIGHLIGHTED_DRUG_CLASS)
    return {
        "items": items,
        "pharmaceutical_items": pharma,
        "pharmaceutical_share": _rate(pharma, items),
        "opioid_items": opioids,
        "opioid_share_of_pharmaceuticals": _rate(opioids, pharma),
        "drug_classes": [
            {
                "drug_class": c,
                "opioid": c == HIGHLIGHTED_DRUG_CLASS,
                "items": n,
                "share_of_pharmaceuticals": _rate(n, pharma),
                "overturned": o,
                "overturn_rate": _rate(o, n),
            }
            for c, n, o in rows
        ],
    }


# The expert reviewer's citations, one row per item and guideline (overturn_by_guideline's `cited`):
# an item citing one MTUS title twice counts once, one citing several guidelines once under each.
_CITED = f"""
WITH cited AS (
    SELECT DISTINCT c.case_number, c.seq, c.family, CASE WHEN c.family = 'MTUS' THEN c.title END AS title
    FROM imr.item_citations c JOIN imr.letters l USING (case_number)
    WHERE c.source = 'expert_reviewer' AND {_IN_RANGE}
)
"""


def guideline_use(conn, rng: DecisionRange = ALL) -> dict[str, Any]:
    """The guidelines the expert reviewers relied on (overturn_by_guideline): per family and, for
    MTUS, per title, the items citing it, their share of all items in the range, upheld,
    overturned and overturn rate. {"items", "items_citing", "families": [...], "guidelines":
    [{"family", "title", ...}]}; a family counts an item once however many of its titles it cites."""
    by_title = _fetch(
        conn,
        _CITED
        + """
        SELECT c.family, c.title, count(*),
               count(*) FILTER (WHERE i.decision = 'Upheld'),
               count(*) FILTER (WHERE i.decision = 'Overturned')
        FROM cited c JOIN imr.items i USING (case_number, seq)
        GROUP BY c.family, c.title
        ORDER BY count(*) DESC, c.family, c.title
        """,
        rng,
    )
    by_family = _fetch(
        conn,
        _CITED
        + """
        , per_family AS (SELECT DISTINCT case_number, seq, family FROM cited)
        SELECT c.family, count(*),
               count(*) FILTER (WHERE i.decision = 'Upheld'),
               count(*) FILTER (WHERE i.decision = 'Overturned')
        FROM per_family c JOIN imr.items i USING (case_number, seq)
        GROUP BY c.family
        ORDER BY count(*) DESC, c.family
        """,
        rng,
    )
    [(citing,)] = _fetch(conn, _CITED + "SELECT count(DISTINCT (case_number, seq)) FROM cited", rng)
    items = totals(conn, rng)["items"]

    def figures(n: int, upheld: int, overturned: int) -> dict[str, Any]:
        return {
            "items": n,
            "share_of_items": _rate(n, items),
            "upheld": upheld,
            "overturned": overturned,
            "overturn_rate": _rate(overturned, n),
        }

    return {
        "items": items,
        "items_citing": citing,
        "families": [{"family": f, **figures(n, u, o)} for f, n, u, o in by_family],
        "guidelines": [{"family": f, "title": t, **figures(n, u, o)} for f, t, n, u, o in by_title],
    }


def _bin_label(index: int) -> str:
    if index == 0:
        return f"<= {BIN_DAYS}"
    if index == N_BINS - 1:
        return f"> {LAST_BIN_FROM - 1}"
    return f"{index * BIN_DAYS + 1}-{(index + 1) * BIN_DAYS}"


def _summary(row: tuple) -> dict[str, Any]:
    letters, dated, median, p90, over = row
    return {
        "letters": letters,
        "letters_with_dates": dated,
        "median_days": median,
        "p90_days": p90,
        "over_30_days": over,
        "share_over_30_days": _rate(over, dated),
    }


def timeliness(conn, rng: DecisionRange = ALL) -> dict[str, Any]:
    """Days from the application's receipt to the decision (letter_timeliness) as a histogram and
    per priority: {"bin_days", "limit_days", "bins": [{"index", "label", "first_day", "last_day",
    "letters", "expedited"}], "all": {"letters", "letters_with_dates", "median_days", "p90_days",
    "over_30_days", "share_over_30_days"}, "by_priority": [{"priority", the same figures}]}.
    Letters without an application date are counted in `letters` only."""
    counts = _fetch(
        conn,
        f"""
        SELECT least(greatest(ceil(l.days_from_application / %(width)s::numeric)::int - 1, 0), %(top)s),
               count(*),
               count(*) FILTER (WHERE l.priority = %(expedited)s)
        FROM imr.letter_timeliness l
        WHERE {_IN_RANGE} AND l.days_from_application IS NOT NULL
        GROUP BY 1
        """,
        rng,
        width=BIN_DAYS,
        top=N_BINS - 1,
        expedited=EXPEDITED,
    )
    summary = _fetch(
        conn,
        f"""
        SELECT GROUPING(l.priority) = 1, l.priority, count(*), count(l.days_from_application),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY l.days_from_application),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY l.days_from_application),
               count(*) FILTER (WHERE l.over_30_days_from_application)
        FROM imr.letter_timeliness l
        WHERE {_IN_RANGE}
        GROUP BY GROUPING SETS ((), (l.priority))
        ORDER BY GROUPING(l.priority) DESC, l.priority NULLS LAST
        """,
        rng,
    )
    by_bin = {b: (n, e) for b, n, e in counts}
    bins = [
        {
            "index": i,
            "label": _bin_label(i),
            "first_day": None if i == 0 else i * BIN_DAYS + 1,
            "last_day": None if i == N_BINS - 1 else (i + 1) * BIN_DAYS,
            "letters": by_bin.get(i, (0, 0))[0],
            "expedited": by_bin.get(i, (0, 0))[1],
        }
        for i in range(N_BINS)
    ]
    [overall] = [_summary(r[2:]) for r in summary if r[0]]
    return {
        "bin_days": BIN_DAYS,
        "limit_days": LIMIT_DAYS,
        "bins": bins,
        "all": overall,
        "by_priority": [{"priority": r[1], **_summary(r[2:])} for r in summary if not r[0]],
    }


def label_basis(conn, rng: DecisionRange = ALL, top: int = DEFAULT_REQUESTS_TOP) -> dict[str, Any]:
    """What the classifier did not know: the items per label basis (migration 0013's
    label_basis_share) and the requests most often labelled by `default` (default_label_requests),
    for the letters decided in the range. Both views aggregate over all letters, so this is their
    definition over imr.items and imr.letters (the range needs the decision date).

    The request text is grouped lower-cased with its white space folded, as the view does, so trivial
    variants count together; a request is listed with the best guess it was given.

    :param conn: an open psycopg2 connection to the warehouse.
    :param rng: the letters' decision dates.
    :param top: how many default-labelled requests to list, 1..DEFAULT_REQUESTS_MAX (clamped).
    :return: {"items", "default_items", "default_share", "bases": [{"basis", "items", "share"}],
        "top", "default_requests": [{"request", "category", "subcategory", "items"}]}: every basis
        of LABEL_BASES in that order (0 items if none), then basis None for items loaded before
        label_basis existed (only if there are any); the requests most frequent first, ties by text.
    """
    top = max(1, min(int(top), DEFAULT_REQUESTS_MAX))
    counts = dict(
        _fetch(
            conn,
            f"""
            SELECT i.label_basis, count(*)
            FROM imr.items i JOIN imr.letters l USING (case_number)
            WHERE {_IN_RANGE}
            GROUP BY i.label_basis
            """,
            rng,
        )
    )
    requests = _fetch(
        conn,
        f"""
        SELECT lower(regexp_replace(btrim(i.request), '\\s+', ' ', 'g')) AS request,
               i.category, i.subcategory, count(*)
        FROM imr.items i JOIN imr.letters l USING (case_number)
        WHERE {_IN_RANGE} AND i.label_basis = 'default'
        GROUP BY 1, 2, 3
        ORDER BY count(*) DESC, 1, 2 NULLS LAST, 3 NULLS LAST
        LIMIT %(top)s
        """,
        rng,
        top=top,
    )
    items = sum(counts.values())
    bases = list(LABEL_BASES) + ([None] if None in counts else [])
    return {
        "items": items,
        "default_items": counts.get("default", 0),
        "default_share": _rate(counts.get("default", 0), items),
        "bases": [
            {"basis": b, "items": counts.get(b, 0), "share": _rate(counts.get(b, 0), items)} for b in bases
        ],
        "top": top,
        "default_requests": [
            {"request": r, "category": c, "subcategory": s, "items": n} for r, c, s, n in requests
        ],
    }
