"""Read side of the "IMR Insights" page (plugins/imr_monitor/insights.py): the figures of the
analytics views (migration 0006) for the letters decided in a date range. Plain queries on an open
psycopg2 connection, each in its own transaction, no Airflow here; the range is a bound parameter.

The views aggregate over all letters and most of them do not expose the decision date (only
`letter_timeliness` does), so the item-level figures are computed here from the base tables with
the views' definitions: the same counts and rates as the views when the range is open
(tests/test_insights.py checks that). Querying the tables rather than adding per-item view versions
keeps the schema, and the DAGs' migration check, unchanged for a read-only page.

Rates are floats 0..1 (IEEE division of the two counts, as `a / b` in Python), None where the
denominator is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from imr.enrich import LABEL_BASES
from imr.facts import HIGHLIGHTED_DRUG_CLASS, PHARMACEUTICALS
from imr.warehouse.db import transaction

EXPEDITED = "Expedited"
# Labor Code 4610.6(d): a standard review is decided within 30 days of the application's receipt.
LIMIT_DAYS = 30
# The histogram of days application -> decision: BIN_DAYS-day bins whose edges fall on LIMIT_DAYS
# (the first bin is "<= 5", then 6-10, ...), the last one open ("> 90").
BIN_DAYS = 5
LAST_BIN_FROM = 91
N_BINS = (LAST_BIN_FROM - 1) // BIN_DAYS + 1

# Letters decided in the range, both bounds inclusive and optional.
_IN_RANGE = """(%(first)s::date IS NULL OR l.decision_date >= %(first)s::date)
      AND (%(last)s::date IS NULL OR l.decision_date <= %(last)s::date)"""


@dataclass(frozen=True)
class DecisionRange:
    """Letters whose decision_date is in [first, last]; None leaves that side open."""

    first: date | None = None
    last: date | None = None

    def __post_init__(self) -> None:
        if self.first and self.last and self.first > self.last:
            raise ValueError("'from' must not be after 'to'")

    @classmethod
    def parse(cls, first: str | None, last: str | None) -> DecisionRange:
        """From the query string's YYYY-MM-DD values (empty = open); ValueError for anything else."""
        return cls(_parse_day(first, "from"), _parse_day(last, "to"))

    def params(self) -> dict[str, Any]:
        """The range as the queries' bound parameters."""
        return {"first": self.first, "last": self.last}

    def as_json(self) -> dict[str, str | None]:
        """The range as the JSON routes echo it."""
        return {
            "from": self.first.isoformat() if self.first else None,
            "to": self.last.isoformat() if self.last else None,
        }


# The whole archive: no bound on either side (the CLI's figures).
ALL = DecisionRange()


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"'{name}' must be a date, YYYY-MM-DD") from None


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


# The requests most often labelled by default: how many the page and the API list unless asked,
# and the most they list at all (the API's `top` is capped, so no request reads the whole archive).
DEFAULT_REQUESTS_TOP = 20
DEFAULT_REQUESTS_MAX = 100


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
