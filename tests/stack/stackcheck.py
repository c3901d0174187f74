"""Letters for a stack test and the "exact counts" every stack test ends with: each uploaded letter in
imr.letters exactly once with all its items and the generator's truth, each bad file quarantined with
its code, nothing pending or processing, and the run's data-quality results all passed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import imr_synth as synth
from imr.alerts import ALERT_CHECKS

REPO = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(REPO / "scripts" / "stack.py")]
RUN_TIMEOUT_S = 900


@dataclass
class Sample:
    prefix: str
    good: list[dict]  # expected records (Letter.to_dict() + "file")
    bad: dict[str, str]  # key -> error code
    files: dict[str, bytes]  # key -> bytes


def make_sample(tmp: Path, prefix: str, count: int, seed: int, bad: bool = True) -> Sample:
    rows = synth.write_sample_set(tmp, count=count, seed=seed, include_bad=bad)
    good = [json.loads(line) for line in (tmp / "expected.jsonl").read_text().splitlines()]
    bad_codes = {}
    if bad:
        for line in (tmp / "bad.jsonl").read_text().splitlines():
            row = json.loads(line)
            bad_codes[prefix + row["file"]] = row["error_code"]
    files = {prefix + Path(r["path"]).name: (tmp / r["path"]).read_bytes() for r in rows}
    return Sample(prefix, good, bad_codes, files)


def upload(s3, bucket: str, sample: Sample) -> None:
    for key, body in sample.files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _rows(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def assert_exact(conn, sample: Sample, run_ids: list[str]) -> None:
    like = sample.prefix + "%"
    statuses = dict(
        _rows(conn, "SELECT status, count(*) FROM imr.s3_objects WHERE key LIKE %s GROUP BY 1", (like,))
    )
    assert statuses.get("pending", 0) == 0 and statuses.get("processing", 0) == 0, statuses
    assert statuses.get("loaded", 0) == len(sample.good), statuses
    quarantined = dict(
        _rows(
            conn,
            "SELECT key, error_code FROM imr.s3_objects WHERE key LIKE %s AND status = 'quarantined'",
            (like,),
        )
    )
    assert quarantined == sample.bad
    letters = {
        case: (key, items)
        for case, key, items in _rows(
            conn,
            "SELECT l.case_number, l.source_key, (SELECT count(*) FROM imr.items i"
            " WHERE i.case_number = l.case_number) FROM imr.letters l WHERE l.source_key LIKE %s",
            (like,),
        )
    }
    assert sorted(letters) == sorted(e["case_number"] for e in sample.good)
    for e in sample.good:
        key, n_items = letters[e["case_number"]]
        assert key == sample.prefix + e["file"]
        assert n_items == len(e["items"]), e["case_number"]
        decisions = [
            r[0]
            for r in _rows(
                conn,
                "SELECT decision FROM imr.items WHERE case_number = %s ORDER BY seq",
                (e["case_number"],),
            )
        ]
        assert decisions == [i["decision"] for i in e["items"]], e["case_number"]
    fields = _rows(
        conn,
        "SELECT case_number, decision_date::text, outcome, patient_age FROM imr.letters"
        " WHERE source_key LIKE %s",
        (like,),
    )
    truth = {e["case_number"]: (e["decision_date"], e["outcome"], e["patient_age"]) for e in sample.good}
    assert {c: tuple(rest) for c, *rest in fields} == truth
    for run_id in run_ids:
        dq = _rows(conn, "SELECT check_name, passed FROM imr.dq_results WHERE run_id = %s", (run_id,))
        # Gates only: the quarantine-rate checks (imr.alerts.ALERT_CHECKS) alert, they never gate.
        assert dq and all(passed for name, passed in dq if name not in ALERT_CHECKS), (run_id, dq)


# --------------------------------------------------------------------------- the stack and its API


def read_env_file(path: Path) -> dict[str, str]:
    import shlex

    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


def stack_start() -> dict[str, str]:
    proc = subprocess.run([*STACK, "start"], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"stack start failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return read_env_file(Path(proc.stdout.strip().rsplit(" ", 1)[-1]))


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

    def wait_first_schedule(self, dag_id: str, appear_s: float = 60, timeout: float = RUN_TIMEOUT_S) -> None:
        """Waits for the run that unpausing a catchup=False DAG schedules (its latest interval) to come
        and go. It appears a scheduler loop or more after the unpause; a test that uploads letters
        before it has finished hands them to that run, with the DAG's default params."""
        deadline = time.monotonic() + appear_s
        while not self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"run_type": ["scheduled"], "limit": 1}
        )["total_entries"]:
            if time.monotonic() > deadline:
                break  # nothing scheduled (e.g. the interval has not come yet): nothing to wait for
            time.sleep(2)
        self.wait_idle(dag_id, timeout)

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


def set_faults(stack: dict[str, str], **settings) -> None:
    Path(stack["IMR_S3_PROXY_CONTROL"]).write_text(json.dumps(settings))
    time.sleep(1.5)  # the proxy re-reads its control file twice a second


def fault_counts(stack: dict[str, str]) -> dict[str, int]:
    control = Path(stack["IMR_S3_PROXY_CONTROL"])
    time.sleep(1.5)
    return json.loads(control.with_name(control.stem + ".counts.json").read_text())


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
