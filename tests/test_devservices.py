"""imr_devtools.devservices (and its CLI, scripts/devservices.py) from scratch: a new state dir and free
ports, as on a machine that never ran it."""

from __future__ import annotations

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

from imr_devtools import devservices

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "devservices.py"


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

        s3 = devservices.s3_client(again)
        s3.create_bucket(Bucket="imr-letters")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["imr-letters"]
    finally:
        devservices.stop()
    assert devservices.status() == {"postgres": False, "s3": False}
    assert cli("status", env=env).returncode == 1
    devservices.stop()  # stopping what is stopped is fine
    shutil.rmtree(run_dir)


def _s3(port: int):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _objects(s3, bucket: str) -> dict[str, tuple[str, bytes, str, dict]]:
    """key -> (ETag, bytes, Content-Type, user metadata): what a restart must keep."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", ()):
            r = s3.get_object(Bucket=bucket, Key=o["Key"])
            out[o["Key"]] = (r["ETag"], r["Body"].read(), r["ContentType"], r["Metadata"])
    return out


def test_s3_state_survives_restart_compacted_and_after_a_crash(tmp_path):
    """start_s3/stop_s3 on a state dir of their own: a graceful stop compacts the recording to the
    objects that exist; a killed server (no compaction, a torn last line) replays the raw one."""
    import signal
    import time

    state, port = tmp_path / "s3state", free_port()
    devservices.start_s3(state, port)
    try:
        pid = devservices.s3_pid(state)
        devservices.start_s3(state, port)  # idempotent
        assert devservices.s3_pid(state) == pid
        with pytest.raises(RuntimeError, match="already runs"):
            devservices.start_s3(state, free_port())

        s3 = _s3(port)
        s3.create_bucket(Bucket="kept")
        s3.create_bucket(Bucket="dropped")
        s3.put_object(Bucket="dropped", Key="x.pdf", Body=b"x")
        devservices.drop_bucket(s3, "dropped")
        s3.put_object(
            Bucket="kept",
            Key="letters/a b+c.pdf",
            Body=os.urandom(70_000),
            ContentType="application/pdf",
            Metadata={"source": "dwc"},
        )
        s3.put_object(Bucket="kept", Key="letters/empty.pdf", Body=b"")
        s3.put_object(Bucket="kept", Key="letters/gone.pdf", Body=b"gone")
        s3.delete_object(Bucket="kept", Key="letters/gone.pdf")
        before = _objects(s3, "kept")
        assert set(before) == {"letters/a b+c.pdf", "letters/empty.pdf"}

        devservices.stop_s3(state)
        assert devservices.s3_pid(state) is None and not devservices.s3_ready(port)
        recording = (state / devservices.RECORDING).read_text().splitlines()
        assert len(recording) == 1 + len(before)  # one CreateBucket, one PutObject per live object

        devservices.start_s3(state, port)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept"]
        assert _objects(s3, "kept") == before

        # A crash: no compaction, and the append in flight torn.
        s3.put_object(Bucket="kept", Key="letters/late.pdf", Body=b"%PDF late")
        os.kill(devservices.s3_pid(state), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while devservices.s3_pid(state) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        with open(state / devservices.RECORDING, "a") as fh:
            fh.write('{"headers": {"Host"')
        devservices.start_s3(state, port)
        after = _objects(s3, "kept")
        assert after.pop("letters/late.pdf")[1] == b"%PDF late"
        assert after == before
    finally:
        devservices.stop_s3(state)
    assert devservices.s3_pid(state) is None
    devservices.stop_s3(state)  # stopping what is stopped is fine


@pytest.mark.e2e
def test_restart_of_the_shared_s3_keeps_letters_and_the_nightly_run_finds_nothing_new(
    services, pg_dsn, wh_conn, s3_client, bucket
):
    """The session's own endpoint restarted (stop_s3 + start_s3 on the run dir, as `make
    services-stop && make services-start` does): same bucket, same bytes and ETags, and a nightly run
    afterwards changes no count. The endpoint is left running for the other tests."""
    import random
    import time

    import imr_synth as synth
    from support.airflow_run import run_dag

    rng = random.Random("restart")
    for _ in range(12):
        truth, pdf = synth.random_letter(rng)
        s3_client.put_object(Bucket=bucket, Key=f"letters/{truth.case_number}.pdf", Body=pdf)
    first = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket)
    assert first.state == "success", first.log[-3000:]

    def snapshot() -> dict:
        with wh_conn, wh_conn.cursor() as cur:
            cur.execute("SELECT key, etag, status, sha256 FROM imr.s3_objects ORDER BY key")
            objects = cur.fetchall()
            cur.execute("SELECT count(*) FROM imr.letters")
            letters = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM imr.items")
            return {"objects": objects, "letters": letters, "items": cur.fetchone()[0]}

    before, objects = snapshot(), _objects(s3_client, bucket)
    assert before["letters"] == 12 and {s for _, _, s, _ in before["objects"]} == {"loaded"}

    state, port = devservices.run_dir(), devservices.s3_port()
    assert port == int(services["IMR_S3_ENDPOINT_URL"].rsplit(":", 1)[1])
    old_pid = devservices.s3_pid(state)
    started = time.monotonic()
    devservices.stop_s3(state)
    assert devservices.s3_pid(state) is None
    devservices.start_s3(state, port)
    print(f"S3 restart (compact + stop + start + replay): {time.monotonic() - started:.1f} s")
    assert devservices.s3_pid(state) not in (None, old_pid)
    assert bucket in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    assert _objects(s3_client, bucket) == objects

    second = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket)
    assert second.state == "success", second.log[-3000:]
    assert snapshot() == before
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM imr.s3_objects WHERE last_run_id = %s", (second.run_id,))
        assert cur.fetchone()[0] == 0


def test_scratch_database_lives_for_its_block(admin_dsn):
    """imr_devtools.scratch, the one place databases are created and dropped: a fresh database with the
    schema inside the block, none after it; an existing name is an error unless exist_ok."""
    from imr_devtools import scratch

    def exists(name: str) -> bool:
        conn = psycopg2.connect(admin_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                return cur.fetchone() is not None
        finally:
            conn.close()

    with scratch.scratch_database(admin_dsn, "imr_scratch", migrate_schema=True) as dsn:
        name = psycopg2.extensions.parse_dsn(dsn)["dbname"]
        assert name.startswith("imr_scratch_") and exists(name)
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('imr.letters') IS NOT NULL")
            assert cur.fetchone()[0]
        assert scratch.create_database(admin_dsn, name, exist_ok=True) == dsn
        with pytest.raises(psycopg2.errors.DuplicateDatabase):
            scratch.create_database(admin_dsn, name)
    assert not exists(name)
