"""The Insights page's monthly aggregates (migration 0014): their definitions over the base tables
and their refresh. No Airflow here.

Each aggregate table has ONE definition here (`Aggregate.select`), a SELECT over a scope of letters
(`scope`: the letters decided in some date intervals, and optionally those without a decision
date) grouped by decision day and the table's dimensions. The refresh inserts it as the day rows
and sums those into the month rows (decision_day NULL); the read side (imr.read.insights) sums the
month rows of the months a range covers whole, the day rows of its partial months, and the same
definition over the base tables for the days marked since their last refresh. So the page's
figures are the base tables' by construction, whether or not a refresh ran since the last write.

Writes to letters, items and citations mark their decision days (triggers of 0014 and 0015, in
the writer's transaction). `refresh` adds the new letters' counts to their days' and months' rows
(a nightly run's few hundred letters, not the thousands already on their days), recomputes the
days with any other write (corrections, reparses, relabels, repairs), and deletes the marks, in
one transaction; `rebuild` recomputes everything. Both hold an advisory lock, so two refreshes
(two publishing runs) never interleave their deletes and inserts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
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
    lo: Sequence[date],
    hi: Sequence[date],
    nulls: bool,
    days: Sequence[date] = (),
    cases: Sequence[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The WITH-clause `s`, the letters every definition reads: those decided in the inclusive
    intervals lo[i]..hi[i] or on one of `days`, and those without a decision date if `nulls`; or,
    with `cases`, the dated letters of those case numbers only (a refresh's new letters).

    :param lo: the intervals' first days.
    :param hi: the intervals' last days.
    :param nulls: include the letters without a decision date.
    :param days: single days besides.
    :param cases: instead of the dates, these case numbers.
    :return: (SQL text, its parameters).
    """
    if cases is None:
        dated, params = between("l.decision_date", lo, hi, "scope", days)
    else:
        dated = "l.case_number = ANY(%(scope_cases)s) AND l.decision_date IS NOT NULL"
        params = {"scope_cases": sorted(cases)}
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
    """What a refresh did: the months whose rows it rewrote (None: the letters without a decision
    date), how many days, and how many new letters it added to their days' counts instead of
    recomputing the days."""

    months: tuple[date | None, ...]
    days: int = 0
    rebuilt: bool = False
    letters_added: int = 0

    def as_json(self) -> dict:
        """For the publish task's return value and the CLI's line."""
        dated = sorted(m for m in self.months if m is not None)
        return {
            "months": len(self.months),
            "days": self.days,
            "first": dated[0].isoformat() if dated else None,
            "last": dated[-1].isoformat() if dated else None,
            "rebuilt": self.rebuilt,
            "letters_added": self.letters_added,
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


@contextmanager
def _staged(cur, with_s: str, params: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Copies the scope's items and citations into temporary tables for the block (dropped after
    it, so a refresh that both recomputes days and adds letters stages each scope afresh); yields
    the table names for Aggregate.sql."""
    names = {}
    for name, table, columns in _STAGE:
        cur.execute(
            f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS WITH {with_s}"
            f" SELECT {columns} FROM {table} WHERE case_number IN (SELECT case_number FROM s)",
            params,
        )
        cur.execute(f"ANALYZE {name}")
        names[table] = name
    yield {"items": names["imr.items"], "citations": names["imr.item_citations"]}
    cur.execute(f"DROP TABLE {', '.join(name for name, _, _ in _STAGE)}")


def _month_bounds(lo: Sequence[date], hi: Sequence[date], days: Sequence[date]) -> tuple[list, list]:
    """The months of the intervals lo[i]..hi[i] and of `days`, whole, as (first days, last days)."""
    months = sorted({d.replace(day=1) for d in days})
    m_lo = [a.replace(day=1) for a in lo] + months
    m_hi = [month_end(b.replace(day=1)) for b in hi] + [month_end(m) for m in months]
    return m_lo, m_hi


def _recompute(
    cur, lo: list[date], hi: list[date], nulls: bool, marked: Sequence[date] = (), stage: bool = False
) -> None:
    """Replace the day rows of the days lo[i]..hi[i] and `marked`, and the undated letters' rows if
    `nulls`, by the definitions over the base tables (over copies of the scope's rows if `stage`:
    a refresh's few days; a rebuild reads everything once anyway); then the month rows of their
    months by the day rows' sums."""
    with_s, params = scope(lo, hi, nulls, marked)
    days, day_params = between("decision_day", lo, hi, "day", marked)
    m_lo, m_hi = _month_bounds(lo, hi, marked)
    in_months, month_params = between("decision_month", m_lo, m_hi, "month")
    month_days, month_day_params = between("decision_day", m_lo, m_hi, "mday")
    params |= day_params | month_params | month_day_params
    with _staged(cur, with_s, params) if stage else nullcontext({}) as tables:
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


def _add(cur, cases: Sequence[str], marked: Sequence[date]) -> None:
    """Add the counts of `cases`, letters the aggregates do not count yet, to the day rows of
    `marked` (their decision days) and to their months' rows: reads those letters' rows and the
    aggregate rows of those days and months, never the other letters of the days."""
    with_s, params = scope([], [], False, cases=cases)
    days, day_params = between("decision_day", [], [], "day", marked)
    in_months, month_params = between("decision_month", *_month_bounds([], [], marked), "month")
    params = params | day_params | month_params
    with _staged(cur, with_s, params) as tables:
        for table, agg in AGGREGATES.items():
            cols = ", ".join(agg.columns)
            dims = ", ".join(agg.dimensions)
            values = ", ".join((*agg.dimensions, *agg.measures))
            sums = ", ".join(f"sum({m})::bigint AS {m}" for m in agg.measures)
            cur.execute(f"CREATE TEMPORARY TABLE _added ON COMMIT DROP AS SELECT {cols} FROM {table} LIMIT 0")
            cur.execute(f"INSERT INTO _added ({cols}) WITH {with_s} {agg.sql(**tables)}", params)
            # Each grain: the rows it holds plus the new letters' counts, summed per dimensions.
            for grain, held in (
                ("decision_day", f"decision_day IS NOT NULL AND {days}"),
                ("NULL::date", f"decision_day IS NULL AND {in_months}"),
            ):
                cur.execute(
                    f"""
                    CREATE TEMPORARY TABLE _summed ON COMMIT DROP AS
                    SELECT decision_month, {grain} AS decision_day, {dims}, {sums}
                    FROM (SELECT {cols} FROM {table} WHERE {held}
                          UNION ALL SELECT decision_month, {grain}, {values} FROM _added) r
                    GROUP BY 1, 2, {dims};
                    DELETE FROM {table} WHERE {held};
                    INSERT INTO {table} ({cols}) SELECT * FROM _summed;
                    DROP TABLE _summed
                    """,
                    params,
                )
            cur.execute("DROP TABLE _added")


# Above this many new letters a refresh recomputes their days whole: a backfill's letters are most
# of their days anyway, and reading days by index range beats a scope of a huge array of cases.
ADD_MAX_LETTERS = 20_000


def _plan(marks: list[tuple[date | None, str | None, bool | None]]) -> tuple[set, dict]:
    """(the days to recompute whole, {day: new letters to add}) from the deleted marks
    (decision_day, case_number, letter) of migration 0015."""
    whole: set[date | None] = set()
    inserted: dict[date, set[str]] = {}
    children: dict[date, set[str]] = {}
    for day, case, letter in marks:
        if case is None or day is None:
            whole.add(day)
        else:
            (inserted if letter else children).setdefault(day, set()).add(case)
    # Children inserted for a letter the aggregates count already: only a recompute sees them.
    whole |= {d for d, cases in children.items() if not cases <= inserted.get(d, set())}
    add = {d: cases for d, cases in inserted.items() if d not in whole}
    if sum(map(len, add.values())) > ADD_MAX_LETTERS:
        whole |= set(add)
        add = {}
    return whole, add


@contextmanager
def _serialized(conn) -> Iterator[None]:
    """Holds the refresh lock (session-level: the refresh's transaction must take its snapshot
    after the lock is granted, so it sees the previous refresh's commit)."""
    with transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        yield
    finally:
        if not conn.closed:  # a lost connection released the lock; its error is the one to see
            with transaction(conn) as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def refresh(conn) -> Refresh:
    """Bring the marked days' rows (and their months') up to date and delete their marks, in one
    REPEATABLE READ transaction: new letters are added to their days' counts, days with any other
    write are recomputed from the base tables.

    One snapshot for the whole refresh: the marks it deletes are exactly those of the writes its
    figures include (a mark commits with its write), so a letter committed meanwhile keeps its mark
    and is counted by the next refresh, never twice and never not at all.

    :param conn: a psycopg2 connection to the warehouse (the loader role suffices).
    :return: the months and days refreshed (recomputed or added to) and the letters added.
    """
    with _serialized(conn), transaction(conn) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("DELETE FROM imr.insights_stale_days RETURNING decision_day, case_number, letter")
        whole, add = _plan(cur.fetchall())
        dated = sorted(d for d in whole if d is not None)
        if whole:
            _recompute(cur, [], [], None in whole, dated, stage=True)
        if add:
            _add(cur, sorted(set().union(*add.values())), sorted(add))
    days = whole | set(add)
    months = {d.replace(day=1) for d in days if d is not None} | ({None} if None in days else set())
    return Refresh(tuple(months), days=len(days), letters_added=sum(map(len, add.values())))


def rebuild(conn) -> Refresh:
    """Recompute every day and month from the base tables (the operators' `imr db refresh-insights
    --rebuild`: after a restore, a manual repair, or to prove the aggregates), in one transaction.

    :param conn: a psycopg2 connection to the warehouse (the loader role suffices).
    :return: the months the aggregates now hold.
    """
    with _serialized(conn), transaction(conn) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
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
