"""Data-quality checks on the warehouse, defined once as data and usable three ways:

* run_checks(conn, ...) runs them here and record_results() stores them in imr.dq_results; the
  DAGs' gates read those back (gate_sql), so each statement runs once per run;
* table_checks() gives the whole-table `checks` dicts for Airflow's SQLTableCheckOperator (one per
  table), for running them ad hoc through the provider;
* column_mapping() gives the `column_mapping` dicts for SQLColumnCheckOperator (likewise ad hoc;
  the DAGs judge the same columns through the checks above, letters_patient_age_range included).

A check judges one of three scopes (`scope=`): the rows a run touched (SCOPE_RUN: the case numbers
of the objects whose manifest row names the run as last_run_id, so a nightly run's cost grows with
its own work, not the archive), the whole archive (SCOPE_ARCHIVE: the weekly sweep, reconciling the
whole manifest), or, by default, whole tables with the run's reconciliation. gate_sql() turns
recorded results back into the statement a gate runs, so each check's SQL runs once per run.

Each check is an aggregate over one table: `observed` (a number) and `passes` (a boolean over the
same aggregates). Aggregates always return exactly one row, so an empty table is judged too rather
than tripping SQLTableCheckOperator's "zero rows" error. No Airflow import here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NamedTuple

from imr.enrich.taxonomy import taxonomy
from imr.facts import CASE_NUMBER_PATTERN
from imr.records import DECISIONS, OUTCOMES
from imr.warehouse.db import transaction

# Letter fields without which a row is useless downstream.
REQUIRED_LETTER_FIELDS = ("case_number", "decision_date", "outcome", "source_key", "source_sha256")
# Parser warning codes that mean "the header dates are out of order" (e.g. decided before assigned).
DATE_ORDER_CODES = ("date_order",)
DATE_ORDER_THRESHOLD = 0.05
# The sweep's reconciliation ignores objects changed more recently than this: a run in progress
# legitimately holds pending and processing keys, and the next nightly run claims any left over.
SETTLE_HOURS = 24.0
PATIENT_AGE_RANGE = (0, 130)

SCOPE_RUN = "run"
SCOPE_ARCHIVE = "archive"


@dataclass(frozen=True)
class Check:
    """A data-quality check: a SQL aggregate to observe and a condition it must pass."""

    name: str
    table: str
    observed: str  # SQL aggregate expression: the value we report
    passes: str  # SQL boolean expression over aggregates: the verdict
    description: str
    where: str = ""  # the rows judged (e.g. the run's); empty: the whole table

    @property
    def sql(self) -> str:
        """The query that observes and judges the check."""
        where = f" WHERE {self.where}" if self.where else ""
        return f"SELECT {self.observed} AS observed, {self.passes} AS passed FROM {self.table}{where}"


class CheckResult(NamedTuple):
    """A check's outcome: passed, and the value observed."""

    name: str
    passed: bool
    observed: object


def _literal(s: str) -> str:
    """A SQL string literal (standard_conforming_strings, the default since PostgreSQL 9.1)."""
    return "'" + s.replace("'", "''") + "'"


def _in_list(values: Iterable[str]) -> str:
    return ", ".join(_literal(v) for v in values)


def _none_where(name: str, table: str, bad_row: str, description: str) -> Check:
    """A check that no row of `table` satisfies `bad_row`; observed = the number that do."""
    count = f"count(*) FILTER (WHERE {bad_row})"
    return Check(name, table, count, f"{count} = 0", description)


# The outcome the contract derives from a letter's items (all Upheld, all Overturned, or mixed).
_DERIVED_OUTCOME = (
    "(SELECT CASE WHEN bool_and(i.decision = 'Upheld') THEN 'Uphold'"
    " WHEN bool_and(i.decision = 'Overturned') THEN 'Overturn' ELSE 'Partially Overturn' END"
    " FROM imr.items i WHERE i.case_number = letters.case_number)"
)


_BY_CASE = ("imr.letters", "imr.items", "imr.item_citations")


def _run_cases(run_id: str) -> str:
    """The rows of a table keyed by case_number that the run touched: the cases of the objects it
    registered, claimed or loaded (s3_objects_last_run_idx, then the table's primary key)."""
    return (
        "case_number IN (SELECT o.case_number FROM imr.s3_objects o"
        f" WHERE o.last_run_id = {_literal(run_id)} AND o.case_number IS NOT NULL)"
    )


def _reconciliation(run_id: str | None, scope: str | None, settle_hours: float) -> Check | None:
    if scope == SCOPE_ARCHIVE:
        return _none_where(
            "run_reconciliation",
            "imr.s3_objects",
            "status IN ('pending', 'processing')"
            f" AND updated_at < now() - make_interval(secs => {float(settle_hours) * 3600!r})",
            f"every object in the manifest ended loaded, quarantined or duplicate (unchanged for "
            f"{settle_hours:g} h: a run in progress holds the newer ones)",
        )
    if run_id is None:
        return None
    run = _literal(run_id)
    touched = f"(first_run_id = {run} OR last_run_id = {run})"
    # A key this run registered may be claimed, and still be processed, by a run overlapping it
    # (the backfill beside the nightly run): that run answers for it, not this one.
    open_here = f"(status = 'pending' OR (status = 'processing' AND claimed_by = {run}))"
    check = _none_where(
        "run_reconciliation",
        "imr.s3_objects",
        f"{touched} AND {open_here}",
        "every object the run registered or claimed ended loaded, quarantined or duplicate, "
        "unless a concurrent run holds its claim",
    )
    # Only the run's rows are read (s3_objects_first_run_idx | s3_objects_last_run_idx), not the
    # whole manifest with a filter.
    return replace(check, where=touched)


def checks(
    run_id: str | None = None,
    date_order_threshold: float = DATE_ORDER_THRESHOLD,
    date_order_codes: Sequence[str] = DATE_ORDER_CODES,
    *,
    scope: str | None = None,
    settle_hours: float = SETTLE_HOURS,
) -> list[Check]:
    """All checks, by name the same in every scope.

    :param run_id: the run whose reconciliation (and, with SCOPE_RUN, whose rows) is judged; an
        Airflow template such as "{{ run_id }}" has the operator render it. Without it and without
        SCOPE_ARCHIVE there is no reconciliation check.
    :param date_order_threshold: the largest share of letters with a date-order warning that passes.
    :param date_order_codes: the parser warning codes that count as date-order warnings.
    :param scope: SCOPE_RUN (the rows the run touched; run_id required), SCOPE_ARCHIVE (whole tables
        and the whole manifest), or None (whole tables, the run's reconciliation).
    :param settle_hours: SCOPE_ARCHIVE: objects changed more recently are not reconciled yet.
    :return: the checks, one aggregate statement each.
    """
    if scope == SCOPE_RUN and run_id is None:
        raise ValueError("scope=run needs the run_id")
    has_date_warning = (
        "EXISTS (SELECT 1 FROM jsonb_array_elements(letters.warnings) w"
        f" WHERE w->>'code' IN ({_in_list(date_order_codes)}))"
    )
    share = f"coalesce(avg(CASE WHEN {has_date_warning} THEN 1.0 ELSE 0.0 END), 0)"
    out = [
        Check(
            "letters_case_number_unique",
            "imr.letters",
            "count(*) - count(DISTINCT case_number)",
            "count(*) = count(DISTINCT case_number)",
            "no case number appears twice",
        ),
        _none_where(
            "letters_required_fields",
            "imr.letters",
            " OR ".join(f"{f} IS NULL" for f in REQUIRED_LETTER_FIELDS),
            f"{', '.join(REQUIRED_LETTER_FIELDS)} are set",
        ),
        _none_where(
            "letters_case_number_format",
            "imr.letters",
            f"case_number !~ '^{CASE_NUMBER_PATTERN}$'",
            "case numbers look like CM16-0213037",
        ),
        _none_where(
            "letters_outcome_domain",
            "imr.letters",
            f"outcome NOT IN ({_in_list(OUTCOMES)})",
            "outcome is Uphold, Overturn or Partially Overturn",
        ),
        _none_where(
            "items_decision_domain",
            "imr.items",
            f"decision IS NULL OR decision NOT IN ({_in_list(DECISIONS)})",
            "every item is Upheld or Overturned",
        ),
        _none_where(
            "letters_outcome_matches_items",
            "imr.letters",
            f"outcome IS DISTINCT FROM {_DERIVED_OUTCOME}",
            "Uphold iff all items Upheld, Overturn iff all Overturned, else Partially Overturn",
        ),
        _none_where(
            "letters_have_items",
            "imr.letters",
            "NOT EXISTS (SELECT 1 FROM imr.items i WHERE i.case_number = letters.case_number)",
            "every letter has at least one item",
        ),
        Check(
            "letters_date_order_warning_share",
            "imr.letters",
            share,
            f"{share} <= {float(date_order_threshold)!r}",
            f"at most {date_order_threshold:.0%} of letters carry a date-order warning",
        ),
        _none_where(
            "letters_patient_age_range",
            "imr.letters",
            f"patient_age NOT BETWEEN {PATIENT_AGE_RANGE[0]} AND {PATIENT_AGE_RANGE[1]}",
            "a patient's age, when given, is between {} and {}".format(*PATIENT_AGE_RANGE),
        ),
    ]
    out += enrichment_checks()
    if scope == SCOPE_RUN:
        # The tables keyed by case_number are narrowed to the run's cases; a check on any other
        # table keeps its own terms (the reconciliation below is scoped already).
        out = [replace(c, where=_run_cases(run_id)) if c.table in _BY_CASE else c for c in out]
    reconciliation = _reconciliation(run_id, scope, settle_hours)
    if reconciliation is not None:
        out.append(reconciliation)
    return out


# The item's evidence column for a citation's source (imr.item_citations.source).
_EVIDENCE_FOR_SOURCE = (
    "CASE {c}.source WHEN 'claims_administrator' THEN i.claims_administrator_evidence"
    " WHEN 'expert_reviewer' THEN i.expert_reviewer_evidence END"
)


def enrichment_checks() -> list[Check]:
    """The enriched item fields (migration 0004): every item has a category/subcategory pair from the
    request taxonomy and an evidence value for both sources, and imr.item_citations reconciles with
    the items (citations exist for a source exactly when its evidence is 'cited'). Items loaded by a
    parser older than 1.1.0 fail the first two until a backfill with reparse fills them."""
    pairs = ", ".join(f"({_literal(c)}, {_literal(s)})" for c, subs in taxonomy().items() for s in subs)
    has_citation = (
        "EXISTS (SELECT 1 FROM imr.item_citations c WHERE c.case_number = items.case_number"
        " AND c.seq = items.seq AND c.source = {source})"
    )
    cited_without_rows = " OR ".join(
        f"({col} = 'cited' AND NOT {has_citation.format(source=_literal(src))})"
        for src, col in (
            ("claims_administrator", "claims_administrator_evidence"),
            ("expert_reviewer", "expert_reviewer_evidence"),
        )
    )
    return [
        _none_where(
            "items_category_in_taxonomy",
            "imr.items",
            f"category IS NULL OR subcategory IS NULL OR (category, subcategory) NOT IN ({pairs})",
            "every item has a category and subcategory from the request taxonomy",
        ),
        _none_where(
            "items_evidence_set",
            "imr.items",
            "claims_administrator_evidence IS NULL OR expert_reviewer_evidence IS NULL",
            "every item says whether each party (claims administrator, expert reviewer) cited evidence",
        ),
        _none_where(
            "items_cited_evidence_has_citations",
            "imr.items",
            cited_without_rows,
            "an item whose party cited evidence has that party's citation rows",
        ),
        _none_where(
            "item_citations_match_evidence",
            "imr.item_citations",
            "NOT EXISTS (SELECT 1 FROM imr.items i WHERE i.case_number = item_citations.case_number"
            " AND i.seq = item_citations.seq"
            f" AND {_EVIDENCE_FOR_SOURCE.format(c='item_citations')} = 'cited')",
            "no citation rows for a source whose evidence is 'none' (or unset)",
        ),
    ]


def run_checks(conn, run_id: str | None = None, **params) -> list[CheckResult]:
    """Run every check (params as for checks(), e.g. scope=SCOPE_RUN); read-only.

    :param conn: a warehouse connection.
    :param run_id: as for checks().
    :return: one result per check, in checks() order.
    """
    results = []
    with transaction(conn) as cur:  # ends the transaction: no connection left idle in one
        for check in checks(run_id, **params):
            cur.execute(check.sql)
            observed, passed = cur.fetchone()
            results.append(CheckResult(check.name, bool(passed), observed))
    return results


def record_results(conn, run_id: str | None, results: Iterable[CheckResult | Sequence]) -> int:
    """Append (name, passed, observed) results to imr.dq_results; return how many."""
    rows = []
    for name, passed, observed in results:
        numeric = (
            observed
            if isinstance(observed, (int, float, Decimal)) and not isinstance(observed, bool)
            else None
        )
        rows.append((name, run_id, bool(passed), None if observed is None else str(observed), numeric))
    with transaction(conn) as cur:
        cur.executemany(
            "INSERT INTO imr.dq_results (check_name, run_id, passed, observed, observed_numeric)"
            " VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
    return len(rows)


def table_checks(
    run_id: str | None = "{{ run_id }}",
    date_order_threshold: float = DATE_ORDER_THRESHOLD,
    date_order_codes: Sequence[str] = DATE_ORDER_CODES,
) -> dict[str, dict[str, dict[str, str]]]:
    """{table: checks} for SQLTableCheckOperator(table=table, checks=checks, conn_id=...).

    The operator evaluates `CASE WHEN check_statement THEN 1 ELSE 0 END FROM table`; our statements
    are aggregates, so that is one row per check. Its `sql` is a template field, so a run_id of
    "{{ run_id }}" is rendered by Airflow. Fresh dicts each call: the operator writes results into them."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for check in checks(run_id, date_order_threshold, date_order_codes):
        out.setdefault(check.table, {})[check.name] = {"check_statement": check.passes}
    return out


_COLUMN_MAPPING = {
    "imr.letters": {
        "case_number": {"null_check": {"equal_to": 0}, "unique_check": {"equal_to": 0}},
        "decision_date": {"null_check": {"equal_to": 0}},
        "outcome": {"null_check": {"equal_to": 0}},
        "source_sha256": {"null_check": {"equal_to": 0}},
        "patient_age": {"min": {"geq_to": 0}, "max": {"leq_to": 130}},
    },
    "imr.items": {
        "case_number": {"null_check": {"equal_to": 0}},
        "request": {"null_check": {"equal_to": 0}},
        "decision": {"null_check": {"equal_to": 0}, "distinct_check": {"leq_to": len(DECISIONS)}},
        "category": {"null_check": {"equal_to": 0}},
        "subcategory": {"null_check": {"equal_to": 0}},
    },
}


def column_mapping() -> dict[str, dict[str, dict[str, dict]]]:
    """{table: column_mapping} for SQLColumnCheckOperator(table=table, column_mapping=..., conn_id=...).
    A fresh deep copy each call: the operator writes its results into the dict."""
    return copy.deepcopy(_COLUMN_MAPPING)


# Warnings: recorded in imr.dq_results with each run, never gates (a run is not failed for them).
DEFAULT_LABEL_SHARE_THRESHOLD = 0.02
CHECK_DEFAULT_LABEL_SHARE = "items_default_label_share"
# The checks that warn and never gate (what a failure alert and the demo do not call failures).
WARNING_CHECKS = (CHECK_DEFAULT_LABEL_SHARE,)


def warning_checks(
    run_id: str, default_label_share_threshold: float = DEFAULT_LABEL_SHARE_THRESHOLD
) -> list[Check]:
    """Checks that warn rather than fail: the share of the run's items labelled by default
    (`label_basis = 'default'`, migration 0013: nothing in the request matched a rule), above the
    threshold. A high share means the run met requests the classifier does not know; the labels
    are still there, so loading goes on, and imr.default_label_requests lists what to teach it.

    :param run_id: the run whose loaded letters' items are judged.
    :param default_label_share_threshold: the largest share of default labels that passes (0..1).
    :return: the warning checks.
    """
    share = "coalesce(avg(CASE WHEN label_basis = 'default' THEN 1.0 ELSE 0.0 END), 0)"
    return [
        Check(
            CHECK_DEFAULT_LABEL_SHARE,
            "imr.items",
            share,
            f"{share} <= {float(default_label_share_threshold)!r}",
            f"at most {default_label_share_threshold:.0%} of the run's items labelled by default (warning)",
            # Only the run's items are read (s3_objects_last_run_idx, then the items' key).
            where=_run_cases(run_id),
        )
    ]


def run_warnings(conn, run_id: str, **params) -> list[CheckResult]:
    """Run the warning checks (params as for warning_checks()); read-only.

    :param conn: a warehouse connection.
    :param run_id: the run judged.
    :return: one result per warning check; ``passed`` False means "warn".
    """
    results = []
    with transaction(conn) as cur:
        for check in warning_checks(run_id, **params):
            cur.execute(check.sql)
            observed, passed = cur.fetchone()
            results.append(CheckResult(check.name, bool(passed), observed))
    return results


def names_by_table(**params) -> dict[str, list[str]]:
    """{table: the names of its checks} for checks(**params), e.g. one gate per table.

    :return: check names grouped by the table they judge, in checks() order.
    """
    out: dict[str, list[str]] = {}
    for check in checks(**params):
        out.setdefault(check.table, []).append(check.name)
    return out


def gate_sql(names: Sequence[str], run_id_sql: str) -> str:
    """A statement over imr.dq_results for SQLCheckOperator: one row that is all truthy only when the
    run recorded every named check and the latest result of each passed. Its second column names what
    failed with the observed value (e.g. "letters_have_items=3", or "=not recorded"), so a failing
    gate shows them in its task log.

    :param names: the checks the gate covers.
    :param run_id_sql: a SQL expression for the run id, e.g. a literal holding an Airflow template.
    :return: the statement (index dq_results_run_check_idx, migration 0012).
    """
    expected = ", ".join(f"({_literal(n)})" for n in names)
    return (
        "SELECT coalesce(bool_and(r.passed IS TRUE), false) AS all_passed,"
        " coalesce(string_agg(e.name || '=' || CASE WHEN r.passed IS NULL THEN 'not recorded'"
        " ELSE coalesce(r.observed, 'NULL') END, ', ' ORDER BY e.name)"
        " FILTER (WHERE r.passed IS NOT TRUE), 'none failed') AS failed_checks"
        f" FROM (VALUES {expected}) AS e(name)"
        " LEFT JOIN LATERAL (SELECT d.passed, d.observed FROM imr.dq_results d"
        f" WHERE d.run_id = {run_id_sql} AND d.check_name = e.name ORDER BY d.id DESC LIMIT 1) r ON true"
    )
