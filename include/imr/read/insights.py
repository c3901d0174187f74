"""Read side of the "IMR Insights" page (plugins/imr_monitor/insights.py): the figures of the
analytics views (migrations 0006, 0013) for the letters decided in a date range. Plain queries on an
open psycopg2 connection, no Airflow here; the range is a bound parameter.

At archive scale the figures come from the aggregates of migration 0014
(imr.warehouse.insights_months), month rows and day rows: the months the range covers whole are
summed from their month rows, its partial first and last months from their day rows. A day some
write marked since the last refresh is computed from the base tables (indexed by decision date)
with the same definitions instead, the other days of its month from their day rows; so are the
undated letters of the open range if they are marked. So every figure equals the base tables' for
any range, at any time: each route reads in ONE REPEATABLE READ snapshot, in which a write and its
day's mark are both visible or neither (tests/test_insights_aggregates.py compares against the
direct queries).

Rates are floats 0..1 (IEEE division of the two counts, as `a / b` in Python), None where the
denominator is 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg2.extensions

from imr.enrich import LABEL_BASES
from imr.facts import HIGHLIGHTED_DRUG_CLASS, PHARMACEUTICALS
from imr.warehouse.db import transaction
from imr.warehouse.insights_months import (
    AGGREGATES,
    FIRST_DAY,
    LAST_DAY,
    between,
    month_end,
    scope,
    stale_days,
)

EXPEDITED = "Expedited"
# Labor Code 4610.6(d): a standard review is decided within 30 days of the application's receipt.
LIMIT_DAYS = 30
# The histogram of days application -> decision: BIN_DAYS-day bins whose edges fall on LIMIT_DAYS
# (the first bin is "<= 5", then 6-10, ...), the last one open ("> 90").
BIN_DAYS = 5
LAST_BIN_FROM = 91
N_BINS = (LAST_BIN_FROM - 1) // BIN_DAYS + 1


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


# The month rows of the months a plan takes whole (alias m).
_WHOLE_MONTHS = """m.decision_day IS NULL
    AND ((m.decision_month BETWEEN %(whole_lo)s::date AND %(whole_hi)s::date
          AND m.decision_month <> ALL(%(stale)s::date[]))
         OR (%(whole_nulls)s AND m.decision_month IS NULL))"""


@dataclass(frozen=True)
class _Plan:
    """Where a range's figures come from: the month rows of [whole_lo, whole_hi] but the months
    with a marked day (`stale`), the day rows of the intervals `days` but the marked days, and the
    base tables for the marked days in the range (`base`, and the undated letters if `nulls`)."""

    whole_lo: date
    whole_hi: date
    whole_nulls: bool
    stale: list[date] = field(default_factory=list)
    days: list[tuple[date, date]] = field(default_factory=list)
    base: list[date] = field(default_factory=list)
    nulls: bool = False

    def query(self) -> tuple[str, str, dict[str, Any]]:
        """The base tables' scope (WITH-clause `s`), the day rows' condition (alias m) and every
        parameter of the plan's queries."""
        with_s, params = scope([], [], self.nulls, self.base)
        day_lo, day_hi = [a for a, _ in self.days], [b for _, b in self.days]
        days, day_params = between("m.decision_day", day_lo, day_hi, "day")
        return (
            with_s,
            f"{days} AND m.decision_day <> ALL(%(base_days)s::date[])",
            params
            | day_params
            | {
                "base_days": self.base,
                "whole_lo": self.whole_lo,
                "whole_hi": self.whole_hi,
                "whole_nulls": self.whole_nulls,
                "stale": self.stale,
            },
        )


def _plan(rng: DecisionRange, marked: list[date | None]) -> _Plan:
    """Split `rng` into whole months (month rows), days of partial months and of months with a
    marked day (day rows, but the marked days), and the marked days (base tables)."""
    first, last = rng.first or FIRST_DAY, rng.last or LAST_DAY
    whole_lo = first if first.day == 1 else month_end(first) + timedelta(days=1)
    whole_hi = last.replace(day=1) if last == month_end(last.replace(day=1)) else _prev_month(last)
    open_range = rng.first is None and rng.last is None
    base = [d for d in marked if d is not None and first <= d <= last]
    if whole_lo > whole_hi:  # no whole month: days of one or two months
        days, dirty = [(first, last)], []
    else:
        days = [(first, whole_lo - timedelta(days=1))] if first < whole_lo else []
        if last > month_end(whole_hi):
            days.append((month_end(whole_hi) + timedelta(days=1), last))
        dirty = sorted({d.replace(day=1) for d in base if whole_lo <= d <= month_end(whole_hi)})
        days += [(m, month_end(m)) for m in dirty]
    nulls = open_range and None in marked
    return _Plan(whole_lo, whole_hi, open_range and not nulls, dirty, days, base, nulls)


def _prev_month(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


@contextmanager
def _snapshot(conn, rng: DecisionRange) -> Iterator[tuple[Any, tuple[str, str, dict[str, Any]]]]:
    """One read-only transaction for a route's queries, REPEATABLE READ when the connection is idle
    (so the marks and the rows they describe are read from one snapshot): (cursor, the plan's
    scope SQL, day condition and parameters)."""
    idle = conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    with transaction(conn) as cur:  # ends the transaction: no snapshot held after the route
        if idle:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield cur, _plan(rng, stale_days(cur)).query()


def _rows(with_s: str, days: str, table: str) -> str:
    """WITH-clause text: `t`, the rows of `table` for a plan: month rows, day rows and the base
    tables' (the caller sums them grouped without the month and the day)."""
    agg = AGGREGATES[table]
    columns = ", ".join(agg.columns)
    return f"""{with_s},
t AS (
    SELECT {columns} FROM {table} m WHERE {_WHOLE_MONTHS}
    UNION ALL
    SELECT {columns} FROM {table} m WHERE m.decision_day IS NOT NULL AND {days}
    UNION ALL
    {agg.sql()}
)"""


def _fetch(cur, plan: tuple[str, str, dict[str, Any]], table: str, query: str, **extra: Any) -> list[tuple]:
    with_s, days, params = plan
    cur.execute(f"WITH {_rows(with_s, days, table)} {query}", params | extra)
    return cur.fetchall()


_SUM = "SELECT coalesce(sum({0}), 0)::bigint FROM t"


def _totals(cur, params: tuple[str, str, dict[str, Any]]) -> dict[str, int]:
    [(letters,)] = _fetch(
        cur, params, "imr.insights_month_letters", "SELECT coalesce(sum(letters), 0)::bigint FROM t"
    )
    [(items,)] = _fetch(
        cur, params, "imr.insights_month_items", "SELECT coalesce(sum(items), 0)::bigint FROM t"
    )
    return {"letters": letters, "items": items}


def totals(conn, rng: DecisionRange = ALL) -> dict[str, int]:
    """{"letters", "items"} decided in the range."""
    with _snapshot(conn, rng) as (cur, params):
        return _totals(cur, params)


def overturn_by_category(conn, rng: DecisionRange = ALL) -> list[dict[str, Any]]:
    """Per request category (decisions_by_category summed over years and subcategories): items,
    upheld, overturned, overturn rate; the most disputed category first. Category None: items
    loaded before the enriched fields existed."""
    with _snapshot(conn, rng) as (cur, params):
        rows = _fetch(
            cur,
            params,
            "imr.insights_month_items",
            """SELECT category, sum(items)::bigint, sum(upheld)::bigint, sum(overturned)::bigint
               FROM t GROUP BY category
               ORDER BY sum(items) DESC, category NULLS LAST""",
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
    with _snapshot(conn, rng) as (cur, params):
        rows = _fetch(
            cur,
            params,
            "imr.insights_month_items",
            """SELECT subcategory, sum(items)::bigint, sum(overturned)::bigint
               FROM t WHERE category = %(pharma)s GROUP BY subcategory
               ORDER BY sum(items) DESC, subcategory NULLS LAST""",
            pharma=PHARMACEUTICALS,
        )
        items = _totals(cur, params)["items"]
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


def guideline_use(conn, rng: DecisionRange = ALL) -> dict[str, Any]:
    """The guidelines the expert reviewers relied on (overturn_by_guideline): per family and, for
    MTUS, per title, the items citing it, their share of all items in the range, upheld,
    overturned and overturn rate. {"items", "items_citing", "families": [...], "guidelines":
    [{"family", "title", ...}]}; a family counts an item once however many of its titles it cites."""
    with _snapshot(conn, rng) as (cur, params):
        by_title = _fetch(
            cur,
            params,
            "imr.insights_month_guidelines",
            """SELECT family, title, sum(items)::bigint, sum(upheld)::bigint, sum(overturned)::bigint
               FROM t GROUP BY family, title
               ORDER BY sum(items) DESC, family, title""",
        )
        by_family = _fetch(
            cur,
            params,
            "imr.insights_month_families",
            """SELECT family, sum(items)::bigint, sum(upheld)::bigint, sum(overturned)::bigint
               FROM t GROUP BY family ORDER BY sum(items) DESC, family""",
        )
        [(citing, items)] = _fetch(
            cur,
            params,
            "imr.insights_month_items",
            "SELECT coalesce(sum(citing), 0)::bigint, coalesce(sum(items), 0)::bigint FROM t",
        )

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


def _bin(days: int) -> int:
    # ceil(days / BIN_DAYS) - 1 clamped to the bins, in integers (as the numeric ceil in SQL)
    return min(max(-(-days // BIN_DAYS) - 1, 0), N_BINS - 1)


def _percentile(freq: list[tuple[int, int]], n: int, p: float) -> float | None:
    """percentile_cont(p) over the values of `freq` ((value, count) ascending, n values), with
    PostgreSQL's arithmetic (orderedsetaggs.c: rows floor/ceil of p*(n-1), float8 lerp), so the
    result is the same double."""
    if not n:
        return None
    pos = p * (n - 1)
    first, second = int(pos // 1), -int(-pos // 1)

    def value_at(row: int) -> float:
        seen = 0
        for value, count in freq:
            seen += count
            if row < seen:
                return float(value)
        raise IndexError(row)

    lo = value_at(first)
    if first == second:
        return lo
    hi = value_at(second)
    return lo + (pos - first) * (hi - lo)


def _summary(freq: list[tuple[int | None, int]]) -> dict[str, Any]:
    dated = [(d, n) for d, n in freq if d is not None]
    n_dated = sum(n for _, n in dated)
    over = sum(n for d, n in dated if d > LIMIT_DAYS)
    return {
        "letters": sum(n for _, n in freq),
        "letters_with_dates": n_dated,
        "median_days": _percentile(dated, n_dated, 0.5),
        "p90_days": _percentile(dated, n_dated, 0.9),
        "over_30_days": over,
        "share_over_30_days": _rate(over, n_dated),
    }


def timeliness(conn, rng: DecisionRange = ALL) -> dict[str, Any]:
    """Days from the application's receipt to the decision (letter_timeliness) as a histogram and
    per priority: {"bin_days", "limit_days", "bins": [{"index", "label", "first_day", "last_day",
    "letters", "expedited"}], "all": {"letters", "letters_with_dates", "median_days", "p90_days",
    "over_30_days", "share_over_30_days"}, "by_priority": [{"priority", the same figures}]}.
    Letters without an application date are counted in `letters` only. The median and the 90th
    percentile are computed here from the letters' frequencies per day count, as percentile_cont
    would over the letters."""
    with _snapshot(conn, rng) as (cur, params):
        rows = _fetch(
            cur,
            params,
            "imr.insights_month_letters",
            """SELECT priority, days_from_application, sum(letters)::bigint
               FROM t GROUP BY priority, days_from_application
               ORDER BY priority NULLS LAST, days_from_application""",
        )
    by_priority: dict[str | None, list[tuple[int | None, int]]] = {}
    per_day: dict[int | None, int] = {}
    counts, expedited = [0] * N_BINS, [0] * N_BINS
    for priority, days, n in rows:
        by_priority.setdefault(priority, []).append((days, n))
        per_day[days] = per_day.get(days, 0) + n
        if days is not None:
            counts[_bin(days)] += n
            expedited[_bin(days)] += n if priority == EXPEDITED else 0
    bins = [
        {
            "index": i,
            "label": _bin_label(i),
            "first_day": None if i == 0 else i * BIN_DAYS + 1,
            "last_day": None if i == N_BINS - 1 else (i + 1) * BIN_DAYS,
            "letters": counts[i],
            "expedited": expedited[i],
        }
        for i in range(N_BINS)
    ]
    overall = sorted(per_day.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    return {
        "bin_days": BIN_DAYS,
        "limit_days": LIMIT_DAYS,
        "bins": bins,
        "all": _summary(overall),
        "by_priority": [{"priority": p, **_summary(f)} for p, f in by_priority.items()],
    }


# The requests most often labelled by default: how many the page and the API list unless asked,
# and the most they list at all (the API's `top` is capped, so no request reads the whole archive).
DEFAULT_REQUESTS_TOP = 20
DEFAULT_REQUESTS_MAX = 100


def label_basis(conn, rng: DecisionRange = ALL, top: int = DEFAULT_REQUESTS_TOP) -> dict[str, Any]:
    """What the classifier did not know: the items per label basis (migration 0013's
    label_basis_share) and the requests most often labelled by `default` (default_label_requests),
    for the letters decided in the range.

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
    with _snapshot(conn, rng) as (cur, params):
        counts = dict(
            _fetch(
                cur,
                params,
                "imr.insights_month_items",
                "SELECT label_basis, sum(items)::bigint FROM t GROUP BY label_basis",
            )
        )
        requests = _fetch(
            cur,
            params,
            "imr.insights_month_default_requests",
            """SELECT request, category, subcategory, sum(items)::bigint
               FROM t GROUP BY 1, 2, 3
               ORDER BY sum(items) DESC, 1, 2 NULLS LAST, 3 NULLS LAST
               LIMIT %(top)s""",
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
