"""Shared fixtures: the real local engines (imr_devtools.devservices), a fresh database per test and a
fresh bucket per test, so tests never see each other's rows or objects. The Airflow fixtures live in
tests/support (registered below); plain helpers are imported from there."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path

import pytest

from imr_devtools import devservices
from imr_devtools.scratch import scratch_database

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["support.airflow_app", "support.standalone"]


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """Start (or reuse) PostgreSQL and the S3 endpoint; export their environment for the session.
    They are left running afterwards (`make services-stop` stops them)."""
    env = devservices.start()
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def admin_dsn(services) -> str:
    return f"host=127.0.0.1 port={devservices.pg_port()} user={devservices.PG_USER} dbname=postgres"


@pytest.fixture
def pg_dsn(admin_dsn) -> str:
    """DSN of a brand-new empty database, dropped after the test."""
    with scratch_database(admin_dsn, "imr_test") as dsn:
        yield dsn


@pytest.fixture
def quiet_pdfminer():
    """pdfminer at ERROR for the test: it warns about every real-looking letter ("should not allow text
    extraction" and the like)."""
    logger = logging.getLogger("pdfminer")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def pg_conn(pg_dsn):
    import psycopg2

    with contextlib.closing(psycopg2.connect(pg_dsn)) as conn:
        yield conn


@pytest.fixture
def wh_conn(pg_conn):
    """pg_conn with the warehouse schema applied."""
    from imr import warehouse

    warehouse.upgrade(pg_conn)
    return pg_conn


@pytest.fixture(scope="session")
def s3_client(services):
    return devservices.s3_client(services)


@pytest.fixture
def bucket(s3_client) -> str:
    """A new empty bucket, emptied and deleted after the test (moto keeps everything in memory)."""
    name = f"imr-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    devservices.drop_bucket(s3_client, name)


@pytest.fixture(scope="session")
def drop_bucket():
    """devservices.drop_bucket, for fixtures that make buckets of their own."""
    return devservices.drop_bucket


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real letters (../shared/corpus/dwc-2016 unless IMR_CORPUS_DIR says otherwise)."""
    path = Path(os.environ.get("IMR_CORPUS_DIR") or REPO.parent / "shared" / "corpus" / "dwc-2016")
    if not (path / "expected.jsonl").is_file():
        message = f"corpus not found at {path}; set IMR_CORPUS_DIR to the dwc-2016 letters"
        if os.environ.get("IMR_REQUIRE_CORPUS") == "1":  # CI: a missing corpus is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    return path
