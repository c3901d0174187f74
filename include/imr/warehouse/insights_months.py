"""The Insights page's monthly aggregates (migration 0014): their definitions over the base tables
and their refresh. No Airflow here.

Each aggregate table has ONE definition here (`Aggregate.select`), a SELECT over a scope of letters
(`scope`: the letters decided in some date intervals, and optionally those without a decision
date) grouped by decision day and the table's dimensions. The refresh inserts it as the day rows
and sums those into the month rows (decision_day NULL); the read side (imr.read.insights) sums the
month rows of the months a range covers whole, the day rows of its partial months, and the same
definition over the base tables for the days marked since their last refresh. So the page's
figures are the base tables' by construction, whether or not a refresh ran since the last write.

Writes to letters, items and citations mark their decision days (triggers of 0014, in the
writer's transaction). `refresh` recomputes the marked days' rows and their months' rows and
deletes the marks in one transaction; `rebuild` recomputes everything. Both take a
transaction-scoped advisory lock, so two refreshes (two publishing runs) never interleave their
deletes and inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .db import transaction

FIRST_DAY, LAST_DAY = date(1, 1, 1), date(9999, 12, 31)


def between(
    column: str, lo: Sequence[date], hi: Sequence[date], name: str, days: Sequence[date] = ()
) -> tuple[str, dict[str, Any]]:
    """`column` in any of the inclusive intervals lo[i]..hi[i] (adjacent ones merged) or one of
    `days`, as SQL with named parameters `name`_lo0, ..., `name`_days ("false" for none).

    The bounds are bound parameters, so psycopg2 sends them as literals and the planner sizes the
    result from the column's statistics: a few days of letters join items and citations by their
    primary keys, a backfill's months by hash joins.

    :param column: the date column.
    :param lo: the intervals' first days.
    :param hi: the intervals' last days.
    :param name: the parameters' prefix (unique within a statement).
    :param days: single days besides (one array: hundreds of marked days stay one index condition).
    :return: (SQL condition, its parameters).
    """
    merged: list[list[date]] = []
    for a, b in sorted(zip(lo, hi, strict=True)):
        if merged and a <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(b, merged[-1][1])
        else:
            merged.append([a, b])
    params: dict[str, Any] = {}
    conds = []
    for n, (a, b) in enumerate(merged):
        params[f"{name}_lo{n}"], params[f"{name}_hi{n}"] = a, b
        conds.append(f"{column} BETWEEN %({name}_lo{n})s::date AND %({name}_hi{n})s::date")
    if days:
        params[f"{name}_days"] = sorted(set(days))
        conds.append(f"{column} = ANY(%({name}_days)s::date[])")
    return "(" + (" OR ".join(conds) or "false") + ")", params


def scope(
    lo: Sequence[date], hi: Sequence[date], nulls: bool, days: Sequence[date] = ()
) -> tuple[str, dict[str, Any]]:
    """The WITH-clause `s`, the letters every definition reads: those decided in the inclusive
    intervals lo[i]..hi[i] or on one of `days`, and those without a decision date if `nulls`.

    :param lo: the intervals' first days.
    :param hi: the intervals' last days.
    :param nulls: include the letters without a decision date.
    :param days: single days besides.
    :return: (SQL text, its parameters).
    """
    dated, params = between("l.decision_date", lo, hi, "scope", days)
    sql = f"""
s AS (
    SELECT l.case_number, date_trunc('month', l.decision_date)::date AS decision_month,
           l.decision_date AS decision_day, l.priority,
           l.decision_date - l.application_received AS days_from_application
    FROM imr.letters l
    WHERE {dated}
    UNION ALL
    SELECT l.case_number, NULL::date, NULL::date, l.priority, l.decision_date - l.application_received
    FROM imr.letters l
    WHERE %(scope_nulls)s AND l.decision_date IS NULL
)"""
    return sql, params | {"scope_nulls": nulls}


@dataclass(frozen=True)
class Aggregate:
    """An aggregate table: its dimensions, its measures (counts, summed over days and months) and
    its definition over the scope `s`, which yields decision_month, decision_day, the dimensions
    and the measures in that order."""

    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    select: str

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns, in the definition's order."""
        return ("decision_month", "decision_day", *self.dimensions, *self.measures)

    def sql(self, items: str = "imr.items", citations: str = "imr.item_citations") -> str:
        """The definition over the base tables, or over a refresh's copies of the scope's rows.

        :param items: the items table (or a copy holding at least the scope's items).
        :param citations: the citations table (or such a copy).
        :return: the SELECT text.
        """
        return self.select.format(items=items, citations=citations)


AGGREGATES: dict[str, Aggregate] = {
    "imr.insights_month_letters": Aggregate(
        ("priority", "days_from_application"),
        ("letters",),
        """SELECT s.decision_month, s.decision_day, s.priority, s.days_from_application, count(*)
           FROM s GROUP BY 1, 2, 3, 4""",
    ),
    "imr.insights_month_items": Aggregate(
        ("category", "subcategory", "label_basis"),
        ("items", "upheld", "overturned", "citing"),
        """SELECT s.decision_month, s.decision_day, i.category, i.subcategory, i.label_basis, count(*),
                  count(*) FILTER (WHERE i.decision = 'Upheld'),
                  count(*) FILTER (WHERE i.decision = 'Overturned'),
                  count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM {citations} c
                      WHERE c.case_number = i.case_number AND c.seq = i.seq AND c.source = 'expert_reviewer'))
           FROM s JOIN {items} i USING (case_number)
           GROUP BY 1, 2, 3, 4, 5""",
    ),
    # overturn_by_guideline's `cited`: an item once per family and MTUS title.
    "imr.insights_month_guidelines": Aggregate(
        ("family", "title"),
        ("items", "upheld", "overturned"),
        """SELECT c.decision_month, c.decision_day, c.family, c.title, count(*),
                  count(*) FILTER (WHERE i.decision = 'Upheld'),
                  count(*) FILTER (WHERE i.decision = 'Overturned')
           FROM (SELECT DISTINCT s.decision_month, s.decision_day, c.case_number, c.seq, c.family,
                        CASE WHEN c.family = 'MTUS' THEN c.title END AS title
                 FROM s JOIN {citations} c USING (case_number)
                 WHERE c.source = 'expert_reviewer') c
           JOIN {items} i USING (case_number, seq)
           GROUP BY 1, 2, 3, 4""",
    ),
    "imr.insights_month_families": Aggregate(
        ("family",),
        ("items", "upheld", "overturned"),
        """SELECT c.decision_month, c.decision_day, c.family, count(*),
                  count(*) FILTER (WHERE i.decision = 'Upheld'),
                  count(*) FILTER (WHERE i.decision = 'Overturned')
           FROM (SELECT DISTINCT s.decision_month, s.decision_day, c.case_number, c.seq, c.family
                 FROM s JOIN {citations} c USING (case_number)
                 WHERE c.source = 'expert_reviewer') c
           JOIN {items} i USING (case_number, seq)
           GROUP BY 1, 2, 3""",
    ),
    # default_label_requests (0013): the request text lower-cased, its white space folded.
    "imr.insights_month_default_requests": Aggregate(
        ("request", "category", "subcategory"),
        ("items",),
        """SELECT s.decision_month, s.decision_day, lower(regexp_replace(btrim(i.request), '\\s+', ' ', 'g')),
                  i.category, i.subcategory, count(*)
           FROM s JOIN {items} i USING (case_number)
           WHERE i.label_basis = 'default'
           GROUP BY 1, 2, 3, 4, 5""",
    ),
}

# Any one value, so two refreshes serialize (pg_advisory_xact_lock's key space is the database's).
_LOCK_KEY = 0x1A5_1647


@dataclass(frozen=True)
class Refresh:
    """What a refresh recomputed: the months whose rows it rewrote (None: the letters without a
    decision date) and how many days."""

    months: tuple[date | None, ...]
    days: int = 0
    rebuilt: bool = False

    def as_json(self) -> dict:
        """For the publish task's return value and the CLI's line."""
        dated = sorted(m for m in self.months if m is not None)
        return {
            "months": len(self.months),
            "days": self.days,
            "first": dated[0].isoformat() if dated else None,
            "last": dated[-1].isoformat() if dated else None,
            "rebuilt": self.rebuilt,
        }


def month_end(month: date) -> date:
    """The last day of the month starting at `month`."""
    if month.month == 12:  # also where year + 1 does not exist (date.max)
        return date(month.year, 12, 31)
    return date.fromordinal(date(month.year, month.month + 1, 1).toordinal() - 1)


# The distinct marked days as a loose index scan: one probe per day however many marks there are.
STALE_DAYS = """
WITH RECURSIVE d AS (
    (SELECT decision_day FROM imr.insights_stale_days
     WHERE decision_day IS NOT NULL ORDER BY decision_day LIMIT 1)
    UNION ALL
    SELECT (SELECT s.decision_day FROM imr.insights_stale_days s
            WHERE s.decision_day > d.decision_day ORDER BY s.decision_day LIMIT 1)
    FROM d WHERE d.decision_day IS NOT NULL
)
SELECT decision_day FROM d WHERE decision_day IS NOT NULL
UNION ALL
SELECT NULL WHERE EXISTS (SELECT 1 FROM imr.insights_stale_days WHERE decision_day IS NULL)
"""


def stale_days(cur) -> list[date | None]:
    """The days marked since their last refresh (None: an undated letter), on an open cursor (the
    caller's snapshot), ascending."""
    cur.execute(STALE_DAYS)
    return [d for (d,) in cur.fetchall()]


# A refresh's copies of the scope's items and citations: the five definitions read them once from the
# base tables instead of four times each (the marked days' rows lie scattered over the big tables,
# so every read is mostly random page reads; figures in docs/insights.md).
_STAGE = (
    (
        "_refresh_items",
        "imr.items",
        "case_number, seq, category, subcategory, label_basis, decision, request",
    ),
    ("_refresh_citations", "imr.item_citations", "case_number, seq, source, family, title"),
)


def _stage(cur, with_s: str, params: dict[str, Any]) -> dict[str, str]:
    """Copies the scope's items and citations into temporary tables dropped at commit; returns the
    table names for Aggregate.sql."""
    names = {}
    for name, table, columns in _STAGE:
        cur.execute(
            f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS WITH {with_s}"
            f" SELECT {columns} FROM {table} WHERE case_number IN (SELECT case_number FROM s)",
            params,
        )
        cur.execute(f"ANALYZE {name}")
        names[table] = name
    return {"items": names["imr.items"], "citations": names["imr.item_citations"]}


def _recompute(
    cur, lo: list[date], hi: list[date], nulls: bool, marked: Sequence[date] = (), stage: bool = False
) -> None:
    """Replace the day rows of the days lo[i]..hi[i] and `marked`, and the undated letters' rows if
    `nulls`, by the definitions over the base tables (over copies of the scope's rows if `stage`:
    a refresh's few days; a rebuild reads everything once anyway); then the month rows of their
    months by the day rows' sums."""
    with_s, params = scope(lo, hi, nulls, marked)
    tables = _stage(cur, with_s, params) if stage else {}
    days, day_params = between("decision_day", lo, hi, "day", marked)
    # the months of those days, whole
    months = sorted({d.replace(day=1) for d in marked})
    m_lo = [a.replace(day=1) for a in lo] + months
    m_hi = [month_end(b.replace(day=1)) for b in hi] + [month_end(m) for m in months]
    in_months, month_params = between("decision_month", m_lo, m_hi, "month")
    month_days, month_day_params = between("decision_day", m_lo, m_hi, "mday")
    params |= day_params | month_params | month_day_params
    for table, agg in AGGREGATES.items():
        cur.execute(f"DELETE FROM {table} WHERE decision_day IS NOT NULL AND {days}", params)
        cur.execute(
            f"DELETE FROM {table} WHERE decision_day IS NULL"
            f" AND ({in_months} OR (%(scope_nulls)s AND decision_month IS NULL))",
            params,
        )
        insert = f"INSERT INTO {table} ({', '.join(agg.columns)})"
        cur.execute(f"{insert} WITH {with_s} {agg.sql(**tables)}", params)
        dims = ", ".join(agg.dimensions)
        sums = ", ".join(f"sum({m})::bigint" for m in agg.measures)
        cur.execute(
            f"INSERT INTO {table} ({', '.join(agg.columns)})"
            f" SELECT decision_month, NULL, {dims}, {sums} FROM {table}"
            f" WHERE decision_day IS NOT NULL AND {month_days} GROUP BY decision_month, {dims}",
            params,
        )


def refresh(conn) -> Refresh:
    """Recompute the marked days (and their months' rows) and delete their marks, in one transaction.

    The marks are deleted first and the days recomputed after, each statement on a fresh snapshot
    (READ COMMITTED): a load that commits in between is in the recomputed figures, and its own
    mark, not yet visible to the delete, stays for the next refresh. So a mark is only ever removed
    by a transaction whose figures include every write that made it.

    :param conn: a psycopg2 connection to the warehouse (the loader role suffices).
    :return: the months recomputed.
    """
    with transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute("DELETE FROM imr.insights_stale_days RETURNING decision_day")
        marked = {d for (d,) in cur.fetchall()}
        dated = sorted(d for d in marked if d is not None)
        if marked:
            _recompute(cur, [], [], None in marked, dated, stage=True)
    months = {d.replace(day=1) for d in dated} | ({None} if None in marked else set())
    return Refresh(tuple(months), days=len(marked))


def rebuild(conn) -> Refresh:
    """Recompute every day and month from the base tables (the operators' `imr db refresh-insights
    --rebuild`: after a restore, a manual repair, or to prove the aggregates), in one transaction.

    :param conn: a psycopg2 connection to the warehouse (the loader role suffices).
    :return: the months the aggregates now hold.
    """
    with transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute("DELETE FROM imr.insights_stale_days")
        for table in AGGREGATES:
            cur.execute(f"DELETE FROM {table}")
        _recompute(cur, [FIRST_DAY], [LAST_DAY], True)
        cur.execute(
            "SELECT DISTINCT decision_month FROM imr.insights_month_letters WHERE decision_day IS NULL"
        )
        months = tuple(m for (m,) in cur.fetchall())
        cur.execute("SELECT count(DISTINCT decision_day) FROM imr.insights_month_letters")
        (days,) = cur.fetchone()
    return Refresh(months, days=days, rebuilt=True)
