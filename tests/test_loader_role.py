"""DAG runs need no DDL rights: the DAGs log in as a member of imr_loader only (compose's imr_app),
check that the warehouse is at the package's migration version and never migrate it themselves."""

from __future__ import annotations

import random

import psycopg2
import pytest

import imr_synth as synth
from imr import warehouse
from support.airflow_run import run_dag, task_states
from support.roles import member_login

pytestmark = [pytest.mark.integration]


@pytest.fixture
def loader_dsn(pg_dsn, admin_dsn):
    """A LOGIN role whose only privileges come from imr_loader, on a warehouse its owner migrated."""
    owner = psycopg2.connect(pg_dsn)
    warehouse.upgrade(owner)  # creates imr_loader (0002) and grants it CONNECT on this database
    owner.close()
    with member_login(admin_dsn, pg_dsn, "imr_loader", "imr_app") as dsn:
        yield dsn


def _delete_migration(owner_dsn: str, version: str) -> None:
    conn = psycopg2.connect(owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM imr.schema_migrations WHERE version = %s", (version,))
    conn.close()


def test_loader_cannot_migrate_but_can_check(loader_dsn) -> None:
    conn = psycopg2.connect(loader_dsn)
    try:
        assert warehouse.check_schema(conn) == [v for v, _ in warehouse.migrations()]
        # What every DAG run did before: CREATE SCHEMA IF NOT EXISTS checks the privilege first.
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            warehouse.upgrade(conn)
    finally:
        conn.close()


def test_check_names_missing_and_unknown_versions(loader_dsn, pg_dsn) -> None:
    last = warehouse.migrations()[-1][0]
    _delete_migration(pg_dsn, last)
    conn = psycopg2.connect(loader_dsn)
    try:
        with pytest.raises(warehouse.SchemaOutOfDate, match=rf"not applied: {last}.*imr db upgrade"):
            warehouse.check_schema(conn)
    finally:
        conn.close()
    owner = psycopg2.connect(pg_dsn)
    with owner, owner.cursor() as cur:
        cur.execute("INSERT INTO imr.schema_migrations (version) VALUES (%s), ('9999_future')", (last,))
    with pytest.raises(warehouse.SchemaOutOfDate, match=r"unknown to this package.*9999_future"):
        warehouse.check_schema(owner)
    owner.close()


def test_check_on_an_empty_database(pg_conn) -> None:
    with pytest.raises(warehouse.SchemaOutOfDate, match="not applied: 0001_schema"):
        warehouse.check_schema(pg_conn)


@pytest.mark.e2e
def test_nightly_runs_as_loader_and_refuses_an_unmigrated_warehouse(
    loader_dsn, pg_dsn, s3_client, bucket
) -> None:
    truth, pdf = synth.random_letter(random.Random("loader"), n_items=2)
    s3_client.put_object(Bucket=bucket, Key="letters/a.pdf", Body=pdf)
    s3_client.put_object(Bucket=bucket, Key="letters/bad.pdf", Body=synth.bad_files()["not_pdf"])
    login = {"AIRFLOW_CONN_IMR_WAREHOUSE": _uri(loader_dsn)}

    run = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, extra_env=login, migrate=False)
    assert run.state == "success", run.log[-3000:]
    owner = psycopg2.connect(pg_dsn)
    with owner, owner.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM imr.s3_objects GROUP BY 1 ORDER BY 1")
        assert cur.fetchall() == [("loaded", 1), ("quarantined", 1)]
        cur.execute("SELECT count(*) FROM imr.items WHERE case_number = %s", (truth.case_number,))
        assert cur.fetchone()[0] == 2
        cur.execute("SELECT count(*) FROM imr.dq_results WHERE run_id = %s", (run.run_id,))
        assert cur.fetchone()[0] > 0
    owner.close()

    _delete_migration(pg_dsn, warehouse.migrations()[-1][0])
    s3_client.put_object(Bucket=bucket, Key="letters/new.pdf", Body=pdf)
    failed = run_dag(
        "imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, extra_env=login, migrate=False
    )
    assert failed.state == "failed"
    states = task_states(failed)
    # discover checks the schema before it lists or writes anything, and fails without its retries:
    # waiting does not fix a schema.
    assert states[("discover", -1)] == ("failed", 1)
    assert "imr db upgrade" in failed.log
    assert states.get(("plan", -1), ("upstream_failed",))[0] == "upstream_failed"
    assert not [k for k in states if k[0] == "process_lane" and states[k][0] == "success"]
    owner = psycopg2.connect(pg_dsn)
    with owner, owner.cursor() as cur:
        cur.execute("SELECT count(*) FROM imr.s3_objects WHERE key = 'letters/new.pdf'")
        assert cur.fetchone()[0] == 0  # refused before listing registered anything
    owner.close()


def _uri(dsn: str) -> str:
    kv = dict(part.split("=", 1) for part in dsn.split())
    return f"postgresql://{kv['user']}@{kv['host']}:{kv['port']}/{kv['dbname']}"
