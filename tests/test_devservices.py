"""scripts/devservices.py from scratch: a new state dir and free ports, as on a machine that never ran it."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "devservices.py"
_spec = importlib.util.spec_from_file_location("devservices_under_test", SCRIPT)
devservices = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(devservices)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True)


def test_env_shapes(monkeypatch):
    monkeypatch.setenv("IMR_PG_PORT", "6000")
    monkeypatch.setenv("IMR_S3_PORT", "6001")
    env = devservices.service_env()
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws == {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {
            "endpoint_url": "http://127.0.0.1:6001",
            "region_name": "us-east-1",
            "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10}},
        },
    }
    assert env["AIRFLOW_CONN_IMR_WAREHOUSE"] == "postgresql://postgres@127.0.0.1:6000/imr"
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://postgres@127.0.0.1:6000/airflow"
    )
    assert env["IMR_WAREHOUSE_DSN"] == "host=127.0.0.1 port=6000 dbname=imr user=postgres"
    assert (env["AIRFLOW_VAR_IMR_BUCKET"], env["AIRFLOW_VAR_IMR_PREFIX"]) == ("imr-letters", "letters/")
    # The export lines survive a shell round trip (JSON quotes included).
    script = devservices.export_lines(env) + 'printf %s "$AIRFLOW_CONN_AWS_DEFAULT"'
    assert json.loads(subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout) == aws


def test_fresh_start_is_idempotent_and_stops(monkeypatch):
    run_dir = Path(tempfile.mkdtemp(prefix="imr-devservices-"))
    env = {
        **os.environ,
        "IMR_RUN_DIR": str(run_dir / ".run"),
        "IMR_PG_PORT": str(free_port()),
        "IMR_S3_PORT": str(free_port()),
    }
    for k in ("IMR_RUN_DIR", "IMR_PG_PORT", "IMR_S3_PORT"):
        monkeypatch.setenv(k, env[k])
    try:
        assert cli("status", env=env).returncode == 1  # nothing there yet

        started = cli("start", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert cli("status", env=env).returncode == 0
        pids = ((run_dir / ".run/pgdata/postmaster.pid").read_text().split()[0], devservices._moto_pid())

        again = devservices.start()  # importable, and a no-op when running
        assert (Path(env["IMR_RUN_DIR"]) / "pgdata/postmaster.pid").read_text().split()[0] == pids[0]
        assert devservices._moto_pid() == pids[1]

        written = (run_dir / ".run/services.env").read_text()
        assert written == cli("env", env=env).stdout == devservices.export_lines(again)
        exported = dict(shlex.split(line)[1].split("=", 1) for line in written.splitlines())
        assert exported == again

        for db in ("imr", "airflow"):
            conn = psycopg2.connect(again["IMR_WAREHOUSE_DSN"].replace("dbname=imr", f"dbname={db}"))
            conn.close()

        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=again["IMR_S3_ENDPOINT_URL"],
            region_name=again["AWS_DEFAULT_REGION"],
            aws_access_key_id=again["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=again["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="imr-letters")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["imr-letters"]
    finally:
        devservices.stop()
    assert devservices.status() == {"postgres": False, "s3": False}
    assert cli("status", env=env).returncode == 1
    devservices.stop()  # stopping what is stopped is fine
    shutil.rmtree(run_dir)
