"""The one way to run a DAG from code (the demo, the benchmark, the tests): `airflow dags test` through
scripts/airflow.sh on the embedded services, then the run's state and its task instances read from
Airflow's metadata database by run id.

The run is found by its logical date, which the runner picks (unique to the microsecond) and passes to
`airflow dags test`; the log is kept for diagnosis but nothing is parsed out of it.

    from airflow_runner import run_dag
    run = run_dag("imr_ingest_nightly", conf={"timeout_s": 5}, env=env)
    run.state, run.run_id, run.task_states()

Lives in scripts/ (not include/imr, which never imports Airflow) and imports no Airflow module itself:
it drives Airflow's CLI and reads Airflow's tables with psycopg2.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import psycopg2

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_SH = REPO / "scripts" / "airflow.sh"
TERMINAL_STATES = ("success", "failed")


@dataclass(frozen=True)
class TaskInstance:
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    start_date: datetime | None
    end_date: datetime | None
    scheduled_dttm: datetime | None = None


@dataclass
class DagRun:
    dag_id: str
    run_id: str
    state: str
    start_date: datetime | None
    end_date: datetime | None
    task_instances: list[TaskInstance] = field(default_factory=list)
    log: str = ""

    @property
    def seconds(self) -> float:
        """The run's wall time as Airflow recorded it (start to end)."""
        return (self.end_date - self.start_date).total_seconds()

    def task_states(self) -> dict[tuple[str, int], tuple[str | None, int]]:
        """(task_id, map_index) -> (state, try_number)."""
        return {(t.task_id, t.map_index): (t.state, t.try_number) for t in self.task_instances}

    def tasks(self, task_id: str) -> list[TaskInstance]:
        """The task instances of one task (every map index), by map index."""
        return sorted((t for t in self.task_instances if t.task_id == task_id), key=lambda t: t.map_index)


class DagRunError(RuntimeError):
    """`airflow dags test` ended without a finished run in the metadata database."""


def metadata_uri(env: Mapping[str, str] | None = None) -> str:
    """libpq URI of Airflow's metadata database, from AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (which names
    a SQLAlchemy driver, e.g. `postgresql+psycopg2://`, that psycopg2 does not accept)."""
    env = os.environ if env is None else env
    scheme, sep, rest = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError("Airflow's metadata database is not PostgreSQL")
    return f"postgresql://{rest}"


def dsn_to_uri(dsn: str) -> str:
    """A libpq key=value DSN (`host=... port=... user=... dbname=...`) as the URI an
    `AIRFLOW_CONN_<ID>` variable takes."""
    kv = dict(part.split("=", 1) for part in dsn.split())
    auth = quote(kv["user"], safe="")
    if kv.get("password"):
        auth += ":" + quote(kv["password"], safe="")
    return f"postgresql://{auth}@{kv['host']}:{kv['port']}/{kv['dbname']}"


def metadata_query(sql: str, params: tuple = (), env: Mapping[str, str] | None = None) -> list[tuple]:
    """Rows of one read-only query on Airflow's metadata database."""
    conn = psycopg2.connect(metadata_uri(env))
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def read_run(dag_id: str, run_id: str, env: Mapping[str, str] | None = None) -> DagRun:
    """A DAG run and its task instances, from the metadata database."""
    rows = metadata_query(
        "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s",
        (dag_id, run_id),
        env,
    )
    if not rows:
        raise DagRunError(f"no run {run_id!r} of {dag_id} in Airflow's metadata database")
    return _with_task_instances(dag_id, rows[0], env)


def _run_at(dag_id: str, logical_date: datetime, env: Mapping[str, str]) -> DagRun | None:
    rows = metadata_query(
        "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = %s AND logical_date = %s",
        (dag_id, logical_date),
        env,
    )
    return _with_task_instances(dag_id, rows[0], env) if rows else None


def _with_task_instances(dag_id: str, row: tuple, env: Mapping[str, str] | None) -> DagRun:
    run_id, state, start, end = row
    tis = metadata_query(
        "SELECT task_id, map_index, state, try_number, start_date, end_date, scheduled_dttm"
        " FROM task_instance WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
        (dag_id, run_id),
        env,
    )
    return DagRun(dag_id, run_id, state, start, end, [TaskInstance(*t) for t in tis])


def run_dag(
    dag_id: str,
    *,
    conf: dict | None = None,
    env: Mapping[str, str] | None = None,
    use_executor: bool = False,
    timeout: float | None = None,
    log_path: Path | None = None,
) -> DagRun:
    """Runs `dag_id` once with `airflow dags test` (scripts/airflow.sh: metadata migrated, pool set)
    and returns the finished run as the metadata database records it.

    `env` is the whole environment of the Airflow process (default: this process's); `use_executor`
    runs the tasks on the configured executor instead of in-process; the combined output is appended to
    `log_path` if given and kept in `DagRun.log`. Raises DagRunError if no finished run was recorded
    (the DAG failed to import, the CLI crashed); a failed run is returned, not raised."""
    env = dict(os.environ if env is None else env)
    # Airflow 3.3.2's `dags test` crashes on a successful run of a DAG with a DeadlineAlert
    # (imr.config.ENV_DEADLINE_ALERTS); the deadlines are for the scheduler anyway.
    env.setdefault("IMR_DEADLINE_ALERTS", "off")
    logical_date = datetime.now(UTC)
    cmd = ["bash", str(AIRFLOW_SH), "dags", "test"]
    if use_executor:
        cmd.append("--use-executor")
    cmd += [dag_id, logical_date.isoformat()]
    if conf:
        cmd += ["-c", json.dumps(conf)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as f:
            f.write(log)
    run = _run_at(dag_id, logical_date, env)
    if run is None or run.state not in TERMINAL_STATES:
        where = f"; log {log_path}" if log_path else ""
        found = "no run was recorded" if run is None else f"run {run.run_id} is {run.state}"
        raise DagRunError(
            f"`airflow dags test {dag_id}` (exit {proc.returncode}): {found}{where}\n" + log[-4000:]
        )
    run.log = log
    return run
