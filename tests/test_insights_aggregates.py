"""The Insights figures at archive scale (issue 18): the routes (imr.read.insights) read the monthly
aggregates of migration 0014 and the base tables only for partial and marked months, and every
figure equals the direct queries' (tests/support/insights_reference.py, the routes as they were)
after a load, a correction, a reparse, a relabel and a manual repair, before and after the refresh,
for ranges aligned to months and not, one-sided, all dates and empty. The incremental refresh
(new letters added to their days' rows, other writes recomputing their days) leaves the same
aggregate rows as a full rebuild, and the routes' plans read the base tables through indexes
only."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from typing import ClassVar

import psycopg2.extensions
import pytest

import quality_scope  # bench/ is on pytest's pythonpath (pyproject.toml)
from imr import warehouse
from imr.read import insights
from imr.read.insights import DecisionRange
from imr.warehouse.insights_months import AGGREGATES
from imr.warehouse.relabel import relabel
from support import insights_reference as reference
from support.builders import ACOEM, BUCKET, CPMT, ODG, OPIOID_TX, claim_all, ingest, item, make, obj, ok, q
from support.insights_letters import LETTERS, PAIN, load_letters

pytestmark = pytest.mark.integration

D = date
RANGES = [
    DecisionRange(),
    DecisionRange(D(2016, 2, 10), D(2016, 4, 1)),  # both ends inside a month
    DecisionRange(D(2016, 2, 1), D(2016, 3, 31)),  # whole months
    DecisionRange(D(2016, 1, 16), D(2016, 6, 30)),  # partial first month, whole last
    DecisionRange(D(2016, 1, 1), D(2016, 6, 29)),  # whole first month, partial last
    DecisionRange(D(2016, 3, 31), D(2016, 4, 1)),  # two days over a month's end
    DecisionRange(D(2016, 4, 1), D(2016, 4, 1)),  # one day
    DecisionRange(D(2016, 6, 2), D(2016, 6, 29)),  # inside one month
    DecisionRange(D(2016, 6, 16), D(2016, 7, 31)),  # partial month, whole empty month
    DecisionRange(None, D(2016, 3, 31)),
    DecisionRange(D(2016, 4, 2), None),
    DecisionRange(D(2016, 1, 1), D(2017, 12, 31)),  # whole months over two years
    DecisionRange(D(1990, 1, 1), D(1990, 12, 31)),  # empty
]
ROUTES = (
    "totals",
    "overturn_by_category",
    "pharmaceutical_mix",
    "guideline_use",
    "timeliness",
    "label_basis",
)


def assert_figures_exact(conn) -> None:
    """Every route's figures, as dicts of ints, floats and strings, equal (==, not approximately)
    the direct queries' for every range."""
    for rng in RANGES:
        for route in ROUTES:
            got = getattr(insights, route)(conn, rng)
            want = getattr(reference, route)(conn, rng)
            assert got == want, (route, rng)
    assert insights.label_basis(conn, RANGES[0], top=1) == reference.label_basis(conn, RANGES[0], top=1)


def marked(conn) -> set[date | None]:
    """The months of the marked days (None: an undated letter)."""
    return {
        d if d is None else d.replace(day=1)
        for (d,) in q(conn, "SELECT decision_day FROM imr.insights_stale_days")
    }


def aggregate_rows(conn) -> dict[str, list[tuple]]:
    out = {}
    for table, agg in AGGREGATES.items():
        cols = ", ".join(agg.columns)
        out[table] = q(conn, f"SELECT {cols} FROM {table} ORDER BY {cols}")
    return out


def refresh_and_check(conn) -> None:
    assert_figures_exact(conn)  # marked months from the base tables
    warehouse.refresh_insights(conn)
    assert marked(conn) == set()
    assert_figures_exact(conn)  # whole months from the aggregates


def test_figures_equal_the_base_tables_through_load_correction_reparse_relabel_repair(wh_conn):
    conn = wh_conn
    assert_figures_exact(conn)  # empty warehouse

    # Load: the six letters' months are marked by the loader's own transaction.
    load_letters(conn)
    assert marked(conn) == {
        D(2016, 1, 1),
        D(2016, 2, 1),
        D(2016, 3, 1),
        D(2016, 4, 1),
        D(2016, 6, 1),
        D(2017, 1, 1),
    }
    refresh_and_check(conn)
    # Each letter once among the month rows and once among the day rows.
    assert q(
        conn,
        "SELECT sum(letters) FILTER (WHERE decision_day IS NULL)::int, sum(letters)::int"
        " FROM imr.insights_month_letters",
    ) == [(6, 12)]

    # Correction: CM16-0000502 re-issued under a new key, decided in June instead of February, with
    # other items and decisions (so another outcome). Both days are marked; the rest of June
    # (CM16-0000505 on the 30th) comes from its day rows until the refresh.
    corrected = make(
        "CM16-0000502",
        D(2016, 6, 15),
        D(2016, 4, 1),
        None,
        "Expedited",
        PAIN,
        [
            item(1, "Pharmaceuticals", "Opioids", "Overturned", [OPIOID_TX, CPMT], basis="rule"),
            item(2, "Surgery", "Spine", "Overturned", [ODG], request="Lumbar   fusion", basis="default"),
            item(3, "Surgery", "Spine", "Overturned", [], basis="default"),
        ],
    )
    key = "v/CM16-0000502-corrected.pdf"
    done = ingest(conn, "run2", [obj(key, minutes=10)], [ok(key, corrected)])
    assert done.letters_written == 1
    assert marked(conn) == {D(2016, 2, 1), D(2016, 6, 1)}
    refresh_and_check(conn)
    assert reference.totals(conn, DecisionRange(D(2016, 6, 1), D(2016, 6, 30))) == {"letters": 2, "items": 5}

    # Reparse: every object back to pending for a new parser version; the new parse fills the
    # item that had no category and overturns CM17-0000506's item.
    assert warehouse.mark_for_reparse(conn, BUCKET, "9.9.9") == 7
    reparsed = {let.case_number: let for let in LETTERS}
    r505 = reparsed["CM16-0000505"]
    reparsed["CM16-0000505"] = replace(
        r505,
        items=[
            r505.items[0],
            replace(r505.items[1], category="Surgery", subcategory="Spine", label_basis="rule"),
        ],
    )
    r506 = reparsed["CM17-0000506"]
    reparsed["CM17-0000506"] = replace(r506, items=[replace(r506.items[0], decision="Overturned")])
    keys = claim_all(conn, "run3")
    outcomes = [ok(k, corrected if k == key else reparsed[k[2:-4]]) for k in keys]
    load = warehouse.load_batch(conn, BUCKET, outcomes, "run3", "load", 0, parser_version="9.9.9")
    assert load.letters_written == 6
    refresh_and_check(conn)

    # Relabel: the classifier labels the stored requests itself (categories, bases and citations
    # change under the figures).
    before = reference.overturn_by_category(conn)
    assert relabel(conn, force=True).items == 12
    assert before != reference.overturn_by_category(conn)
    assert marked(conn)
    refresh_and_check(conn)

    # A manual repair outside the loader: a letter loses its decision date (counted only when the
    # range is open), another is deleted (its items and citations cascade).
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE imr.letters SET decision_date = NULL WHERE case_number = 'CM16-0000503'")
        cur.execute("DELETE FROM imr.letters WHERE case_number = 'CM16-0000501'")
    assert {None, D(2016, 3, 1), D(2016, 1, 1)} <= marked(conn)
    refresh_and_check(conn)

    # The months refreshed one run at a time hold what a rebuild from scratch holds.
    incremental = aggregate_rows(conn)
    assert warehouse.rebuild_insights(conn).rebuilt
    assert aggregate_rows(conn) == incremental
    assert_figures_exact(conn)


def _copy_letter(cur, case: str, new_case: str) -> None:
    """A second letter like `case` (same day, items and citations) under `new_case`, written with
    plain SQL in the cursor's transaction."""
    for table in ("imr.letters", "imr.items", "imr.item_citations"):
        schema, name = table.split(".")
        cur.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, name),
        )
        cols = [c for (c,) in cur.fetchall()]
        select = ", ".join("%(new)s" if c == "case_number" else c for c in cols)
        cur.execute(
            f"INSERT INTO {table} ({', '.join(cols)})"
            f" SELECT {select} FROM {table} WHERE case_number = %(old)s",
            {"new": new_case, "old": case},
        )


def test_new_letters_are_added_to_their_days_other_writes_recompute(wh_conn, pg_dsn):
    conn = wh_conn
    load_letters(conn)
    first = warehouse.refresh_insights(conn)
    assert (first.letters_added, first.days) == (6, 6)
    assert_figures_exact(conn)

    # New letters on days that hold counted letters already, and on a new day: added to the rows.
    news = {
        "CM16-0000601": make(
            "CM16-0000601",
            D(2016, 1, 15),
            D(2015, 12, 1),
            None,
            "Standard",
            PAIN,
            [item(1, "Pharmaceuticals", "Opioids", "Overturned", [CPMT, OPIOID_TX], basis="rule")],
        ),
        "CM16-0000602": make(
            "CM16-0000602",
            D(2016, 3, 31),
            D(2016, 3, 1),
            None,
            "Expedited",
            PAIN,
            [
                item(1, "Surgery", "Spine", "Upheld", [ODG, ACOEM], basis="rule"),
                item(
                    2,
                    "Pharmaceuticals",
                    "NSAID",
                    "Overturned",
                    [],
                    request="compounded  CREAM",
                    basis="default",
                ),
            ],
        ),
        "CM16-0000603": make(
            "CM16-0000603",
            D(2016, 5, 5),
            None,
            None,
            "Standard",
            PAIN,
            [item(1, "Rehabilitation", "Chiropractic", "Upheld", [], basis="rule")],
        ),
    }
    keys = {case: f"n/{case}.pdf" for case in news}
    ingest(conn, "run2", [obj(k) for k in keys.values()], [ok(keys[c], let) for c, let in news.items()])
    assert_figures_exact(conn)
    added = warehouse.refresh_insights(conn)
    assert (added.letters_added, added.days) == (3, 3)
    assert marked(conn) == set()
    assert_figures_exact(conn)

    # A citation added to a letter already counted, the letter row untouched: its day is recomputed.
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO imr.item_citations (case_number, seq, source, ordinal, family, title)"
            " VALUES ('CM16-0000601', 1, 'expert_reviewer', 9, 'MTUS', 'Chronic Pain')"
        )
    child = warehouse.refresh_insights(conn)
    assert (child.letters_added, child.days) == (0, 1)
    assert_figures_exact(conn)

    # A letter committed while a refresh runs (invisible to its snapshot) keeps its marks and is
    # counted by the next refresh, once.
    with psycopg2.connect(pg_dsn) as other, other.cursor() as cur:
        _copy_letter(cur, "CM16-0000602", "CM16-0000604")
        assert warehouse.refresh_insights(conn).letters_added == 0
    other.close()
    assert marked(conn) == {D(2016, 3, 1)}
    assert warehouse.refresh_insights(conn).letters_added == 1
    assert_figures_exact(conn)
    assert reference.totals(conn, DecisionRange(D(2016, 3, 31), D(2016, 3, 31))) == {"letters": 3, "items": 6}

    # Added a day at a time, the rows are what a rebuild from scratch computes.
    incremental = aggregate_rows(conn)
    warehouse.rebuild_insights(conn)
    assert aggregate_rows(conn) == incremental


def test_truncate_marks_every_aggregated_month(wh_conn):
    load_letters(wh_conn)
    warehouse.refresh_insights(wh_conn)
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute("TRUNCATE imr.item_citations")
    assert len(marked(wh_conn) - {None}) == 6  # (None: the month rows' day, read as undated letters)
    assert_figures_exact(wh_conn)
    warehouse.refresh_insights(wh_conn)
    assert insights.guideline_use(wh_conn)["items_citing"] == 0
    assert_figures_exact(wh_conn)


def test_a_route_reads_one_snapshot_and_leaves_no_transaction_open(wh_conn):
    load_letters(wh_conn)
    insights.timeliness(wh_conn, RANGES[1])
    assert wh_conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


class _Recording(psycopg2.extensions.cursor):
    """Keeps every statement the routes execute, with its parameters bound."""

    statements: ClassVar[list[str]] = []

    def execute(self, sql, params=None):
        _Recording.statements.append(self.mogrify(sql, params).decode())
        return super().execute(sql, params)


def test_routes_read_the_base_tables_only_through_indexes(wh_conn):
    # 20,000 letters over five years (bench/quality_scope.py's generator), aggregated, analysed.
    quality_scope.generate(wh_conn, 20_000, 0)
    warehouse.rebuild_insights(wh_conn)
    wh_conn.autocommit = True
    with wh_conn.cursor() as cur:
        cur.execute("ANALYZE")
    wh_conn.autocommit = False
    wh_conn.cursor_factory = _Recording
    _Recording.statements = []
    # A quarter (whole months: the aggregates alone) and nine months and four days (two days each
    # side from the base tables, ~0.2% of the letters, as a partial month is of the archive's).
    quarter, unaligned = (
        DecisionRange(D(2017, 4, 1), D(2017, 6, 30)),
        DecisionRange(D(2017, 4, 29), D(2018, 2, 2)),
    )
    for rng in (DecisionRange(), quarter, unaligned):
        for route in ROUTES:
            getattr(insights, route)(wh_conn, rng)
    wh_conn.cursor_factory = psycopg2.extensions.cursor
    statements = [s for s in _Recording.statements if s.lstrip().startswith("WITH") and "RECURSIVE" not in s]
    assert len(statements) >= 3 * len(ROUTES)
    with wh_conn, wh_conn.cursor() as cur:
        for sql in statements:
            cur.execute("EXPLAIN " + sql)
            plan = "\n".join(r[0] for r in cur.fetchall())
            assert not re.search(r"Seq Scan on (letters|items|item_citations)\b", plan), plan
    # And the figures are still the base tables'.
    for rng in (DecisionRange(), quarter, unaligned):
        for route in ROUTES:
            assert getattr(insights, route)(wh_conn, rng) == getattr(reference, route)(wh_conn, rng)


def test_refresh_insights_cli(wh_conn, pg_dsn, capsys):
    from imr.cli import main

    load_letters(wh_conn)
    assert main(["db", "refresh-insights", "--dsn", pg_dsn]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["months"] == 6 and out["first"] == "2016-01-01" and out["last"] == "2017-01-01"
    assert not out["rebuilt"]
    assert main(["db", "refresh-insights", "--dsn", pg_dsn]) == 0
    assert json.loads(capsys.readouterr().out)["months"] == 0  # nothing marked since
    assert main(["db", "refresh-insights", "--dsn", pg_dsn, "--rebuild"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rebuilt"] and out["months"] == 6
    assert_figures_exact(wh_conn)
