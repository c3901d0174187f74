"""One running native stack (scripts/stack.py) shared by every test of this folder, and the REST
helpers they use. The stack tests are slow (minutes each) and marked `stack`; without Debian's
redis-server they skip with a message naming it, unless IMR_REQUIRE_STACK=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2
import pytest

REPO = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(REPO / "scripts" / "stack.py")]
RUN_TIMEOUT_S = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(item.fspath).is_relative_to(here):
            item.add_marker(pytest.mark.stack)


def read_env_file(path: Path) -> dict[str, str]:
    import shlex

    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


def _require_redis() -> None:
    if shutil.which("redis-server") or os.geteuid() == 0:
        return  # stack.py installs Debian's redis-server itself when it runs as root
    message = "the native stack needs Debian's redis-server (apt-get install redis-server)"
    if os.environ.get("IMR_REQUIRE_STACK") == "1":
        pytest.fail(message)
    pytest.skip(message)


def stack_start() -> dict[str, str]:
    proc = subprocess.run([*STACK, "start"], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"stack start failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return read_env_file(Path(proc.stdout.strip().rsplit(" ", 1)[-1]))


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """The running stack's environment (stack.env), started if needed, DAGs unpaused and idle."""
    _require_redis()
    env = stack_start()
    api = Api(env)
    for dag_id in ("imr_ingest_nightly", "imr_backfill", "imr_reprocess_failures"):
        api.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    # Unpausing the nightly DAG schedules its latest interval at once (catchup=False): let it finish
    # before the tests put letters anywhere.
    api.wait_idle("imr_ingest_nightly")
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


@dataclass
class Api:
    """Airflow's REST API as the stack's admin."""

    env: dict[str, str]
    _token: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            r = httpx.post(
                f"{self.env['AIRFLOW_API_URL']}/auth/token",
                json={"username": self.env["IMR_ADMIN_USER"], "password": self.env["IMR_ADMIN_PASSWORD"]},
                timeout=30,
            )
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kw) -> dict:
        for attempt in range(5):
            try:
                r = httpx.request(
                    method, self.env["AIRFLOW_API_URL"] + path, headers=self._headers(), timeout=60, **kw
                )
                break
            except httpx.TransportError:
                if attempt == 4:
                    raise
                time.sleep(2)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else {}

    def trigger(self, dag_id: str, conf: dict) -> str:
        body = {"logical_date": None, "conf": conf, "dag_run_id": f"test__{uuid.uuid4().hex[:12]}"}
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"{dag_id} {run_id} still {state} after {timeout:.0f}s"
            time.sleep(3)
        return state

    def wait_idle(self, dag_id: str, timeout: float = RUN_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"]})[
            "total_entries"
        ]:
            assert time.monotonic() < deadline, f"{dag_id} still has active runs"
            time.sleep(3)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        out, offset = [], 0
        while True:
            page = self.request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": offset},
            )
            out += page["task_instances"]
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return out


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


def set_faults(stack: dict[str, str], **settings) -> None:
    Path(stack["IMR_S3_PROXY_CONTROL"]).write_text(json.dumps(settings))
    time.sleep(1.5)  # the proxy re-reads its control file twice a second


def fault_counts(stack: dict[str, str]) -> dict[str, int]:
    control = Path(stack["IMR_S3_PROXY_CONTROL"])
    time.sleep(1.5)
    return json.loads(control.with_name(control.stem + ".counts.json").read_text())


@pytest.fixture(scope="session")
def stack_ctl(stack):
    """scripts/stack.py as a module: the tests stop and start its components to cause faults."""
    import importlib.util

    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location("imr_stack", REPO / "scripts" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def wait_for_running_lane(api: Api, dag_id: str, run_id: str, timeout: float = 300) -> dict:
    """The first process_lane task instance seen running (the moment a fault should hit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [
            t
            for t in api.task_instances(dag_id, run_id)
            if t["task_id"] == "process_lane" and t["state"] == "running"
        ]
        if running:
            return running[0]
        time.sleep(1)
    raise AssertionError(f"no lane of {run_id} started running within {timeout:.0f}s")
