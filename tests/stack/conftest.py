"""One running native stack (scripts/stack.py) shared by every test of this folder (helpers in
stackcheck.py). The stack tests are slow (minutes each) and marked `stack`; without Debian's
redis-server they skip with a message naming it, unless IMR_REQUIRE_STACK=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest
from stackcheck import Api, stack_start

from imr_devtools import stack as stack_module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(item.fspath).is_relative_to(here):
            item.add_marker(pytest.mark.stack)


def _require_redis() -> None:
    if shutil.which("redis-server") or os.geteuid() == 0:
        return  # stack.py installs Debian's redis-server itself when it runs as root
    message = "the native stack needs Debian's redis-server (apt-get install redis-server)"
    if os.environ.get("IMR_REQUIRE_STACK") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """The running stack's environment (stack.env), started if needed, DAGs unpaused and idle."""
    _require_redis()
    env = stack_start()
    api = Api(env)
    for dag_id in ("imr_ingest_nightly", "imr_backfill", "imr_reprocess_failures"):
        api.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    # Unpausing the nightly DAG schedules its latest interval (catchup=False): let it finish before
    # the tests put letters anywhere.
    api.wait_first_schedule("imr_ingest_nightly")
    return env


@pytest.fixture(scope="session")
def api_token(stack) -> Callable[[str, str], str]:
    def token(username: str, password: str) -> str:
        r = httpx.post(
            f"{stack['AIRFLOW_API_URL']}/auth/token",
            json={"username": username, "password": password},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    return token


@pytest.fixture(scope="session")
def api(stack) -> Api:
    return Api(stack)


@pytest.fixture(scope="session")
def s3(stack):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=stack["IMR_S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=stack["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def owner(stack) -> Iterator:
    """The warehouse as its owner (for assertions; the DAGs use imr_app)."""
    conn = psycopg2.connect(stack["IMR_WAREHOUSE_DSN"])
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def prefix() -> str:
    """Each test's own key prefix in the shared bucket."""
    return f"letters/t-{uuid.uuid4().hex[:10]}/"


@pytest.fixture(scope="session")
def stack_ctl(stack):
    """imr_devtools.stack: the tests stop and start its components to cause faults."""
    return stack_module
