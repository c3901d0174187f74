"""The read-only UI's warehouse role (issue 15, finding 2): imr_reader, created by migration
0008_reader_role, may run every query the monitor, its progress section and the insights page run
(imr.read.monitor, imr.read.progress, imr.read.insights: what the api-server's routes call), and
nothing else. The
api-server logs in as a member of it (compose's and the native stack's imr_ui).

The warehouse is seeded by its owner with a run in progress, loaded letters, a quarantined object
and failures (tests/support/progress_seed.py), so every query returns rows, then read as the reader."""

from __future__ import annotations

import contextlib
from datetime import date

import psycopg2
import pytest

from imr import alerts, console, warehouse
from imr.read import insights, monitor, progress
from support.progress_seed import db_now, seed_active_run
from support.roles import member_login

pytestmark = [pytest.mark.integration]
RUN = "manual__reader-role"


@pytest.fixture
def reader_dsn(pg_dsn, admin_dsn):
    """A LOGIN role whose only privileges come from imr_reader, on a seeded, migrated warehouse."""
    owner = psycopg2.connect(pg_dsn)
    warehouse.upgrade(owner)
    seed_active_run(owner, "imr-letters", RUN, db_now(owner))
    with owner, owner.cursor() as cur:
        cur.execute(
            "INSERT INTO imr.parse_failures (bucket, key, etag, dag_run_id, task_id, map_index, error_code,"
            " message, occurred_at) VALUES ('imr-letters', 'backfill/03.pdf', 'e', %s, 'process_lane', 0,"
            " 'no_text_layer', 'no text', now())",
            (RUN,),
        )
    owner.close()
    with member_login(admin_dsn, pg_dsn, "imr_reader", "imr_ui") as dsn:
        yield dsn


@pytest.fixture
def reader(reader_dsn):
    with contextlib.closing(psycopg2.connect(reader_dsn)) as conn:
        yield conn


def test_reader_runs_every_monitor_progress_and_insights_query(reader) -> None:
    filters = monitor.Filters()
    listed = monitor.list_failures(reader, filters)
    assert listed["total"] >= 1 and listed["failures"]
    assert monitor.count_failures(reader, filters) == listed["total"]
    assert monitor.counts_by_error_code(reader, filters)
    first, last = monitor.trend_window(None, None)
    assert monitor.daily_trend(reader, first, last)
    assert "no_text_layer" in monitor.error_codes(reader)
    assert monitor.recent_runs(reader) == [RUN]
    assert monitor.quarantined(reader, ["backfill/03.pdf"]) == {"imr-letters": ["backfill/03.pdf"]}
    assert monitor.manifest_object(reader, None, "backfill/00.pdf")["status"] == "loaded"
    assert alerts.last_alerts(reader) == []  # the page's "last alert sent per DAG"

    (run,) = progress.active_runs_progress(reader)
    assert run.run_id == RUN
    assert console.active_run_lines(reader)  # the CLI's and the benchmarks' progress lines

    for rng in (insights.DecisionRange(), insights.DecisionRange(date(2000, 1, 1), date(2100, 1, 1))):
        assert set(insights.totals(reader, rng)) == {"letters", "items"}
        assert isinstance(insights.overturn_by_category(reader, rng), list)
        assert isinstance(insights.pharmaceutical_mix(reader, rng), dict)
        assert isinstance(insights.guideline_use(reader, rng), dict)
        assert "by_priority" in insights.timeliness(reader, rng)
        assert insights.label_basis(reader, rng)["items"] >= 1


def test_reader_runs_the_label_basis_query(pg_dsn, reader) -> None:
    """The Insights labels section (issue 19) reads imr.items and imr.letters only, both granted by
    0008: the reader gets the figures without a grant on 0013's views."""
    owner = psycopg2.connect(pg_dsn)
    with owner, owner.cursor() as cur:
        cur.execute("UPDATE imr.items SET label_basis = 'default' RETURNING 1")
        stored = cur.rowcount
    owner.close()
    figures = insights.label_basis(reader, insights.DecisionRange(date(2000, 1, 1), date(2100, 1, 1)))
    assert stored >= 1
    assert (figures["items"], figures["default_items"], figures["default_share"]) == (stored, stored, 1.0)
    assert sum(r["items"] for r in figures["default_requests"]) == stored
    with pytest.raises(psycopg2.errors.InsufficientPrivilege), reader.cursor() as cur:
        cur.execute("SELECT * FROM imr.default_label_requests")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO imr.letters (case_number) VALUES ('CM16-9999999')",
        "UPDATE imr.s3_objects SET status = 'pending'",
        "DELETE FROM imr.parse_failures",
        "DELETE FROM imr.batches",
        "TRUNCATE imr.items",
        "CREATE TABLE imr.x (a int)",
        "SELECT * FROM imr.schema_migrations",
    ],
)
def test_reader_cannot_write(reader, statement) -> None:
    with pytest.raises(psycopg2.errors.InsufficientPrivilege), reader.cursor() as cur:
        cur.execute(statement)
    reader.rollback()
