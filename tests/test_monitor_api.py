"""The failed-parse monitor (plugins/imr_monitor) through Airflow's own api-server app.

The app under test is airflow.api_fastapi.app.create_app(): the plugin is loaded from plugins/ and
mounted under /imr-monitor exactly as `airflow api-server` does it, with the SimpleAuthManager, its
JWT middleware and the real auth dependencies. Tokens are real JWTs minted by the auth manager.
The warehouse is a fresh database per test reached through the Airflow connection `imr_warehouse`
(AIRFLOW_CONN_IMR_WAREHOUSE), S3 is the moto endpoint through `aws_default`, and Airflow's REST API
(the reprocess trigger) is a small HTTP server in this process that records what it receives.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from progress_seed import EXPECTED_BATCHES, EXPECTED_COUNTS, db_now, seed_active_run

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
PREFIX = "/imr-monitor"
BASE_URL = "http://localhost:8080"
# What a browser's fetch() from the page sends with the POST (Sec-Fetch-Site: same-origin too).
SAME_ORIGIN = {"Origin": BASE_URL}
R1 = "scheduled__2026-01-10T02:00:00+00:00"
R2 = "manual__2026-01-12T09:30:00+00:00"
R_BACKFILL = "manual__2026-01-13T08:00:00+00:00"
EVIL_KEY = "letters/<script>alert(\"x\")</script>'q'.pdf"
EVIL_MESSAGE = '<script>alert("x")</script> "double" & \'single\' <b>bold</b>'
ALL_ROUTES = [
    ("GET", "/"),
    ("GET", "/api/failures"),
    ("GET", "/api/counts"),
    ("GET", "/api/trend"),
    ("GET", "/api/error-codes"),
    ("GET", "/api/progress"),
    ("GET", "/download?key=letters/a.pdf"),
    ("GET", "/static/monitor.js"),
    ("POST", "/api/reprocess"),
]


def ts(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


# --------------------------------------------------------------------------- Airflow in-process


def _metadata_db_ready(dsn: str) -> bool:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.revoked_token'), to_regclass('public.dag_run')")
            return all(cur.fetchone())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def airflow_app(services, tmp_path_factory):
    """Airflow's api-server app with the plugin mounted; users admin (role admin) and viewer."""
    saved_env = dict(os.environ)
    home = REPO / ".run" / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PLUGINS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = (
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "False"
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin,viewer:viewer"
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(
        tmp_path_factory.mktemp("auth") / "passwords.json"
    )
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = "imr-monitor-test-secret-" + "x" * 48

    # The metadata DB (revoked tokens, dag runs) is the embedded `airflow` database.
    sa_conn = services["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    pg = sa_conn.replace("postgresql+psycopg2://", "postgresql://")
    if not _metadata_db_ready(pg):
        subprocess.run(["bash", str(REPO / "scripts" / "airflow.sh"), "version"], check=True, cwd=REPO)

    from airflow import plugins_manager, settings

    # Airflow may have been imported earlier in this session with other settings.
    if sa_conn != settings.SQL_ALCHEMY_CONN:
        settings.SQL_ALCHEMY_CONN = sa_conn
        settings.reconfigure_orm()
    settings.PLUGINS_FOLDER = str(PLUGINS)
    if str(PLUGINS) not in sys.path:
        sys.path.append(str(PLUGINS))
    for cached in ("_get_plugins", "_get_ui_plugins", "get_fastapi_plugins"):
        getattr(plugins_manager, cached).cache_clear()

    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    app = create_app(apps="core")
    yield app
    purge_cached_app()
    # Later subprocesses (the DAG tests' `airflow` commands) inherit os.environ: leave it as found.
    os.environ.clear()
    os.environ.update(saved_env)


@pytest.fixture(scope="module")
def tokens(airflow_app) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    am = get_auth_manager()
    out = {
        role: am.generate_jwt(SimpleAuthManagerUser(username=role, role=role)) for role in ("admin", "viewer")
    }
    out["expired"] = am.generate_jwt(
        SimpleAuthManagerUser(username="admin", role="admin"), expiration_time_in_seconds=-60
    )
    return out


@pytest.fixture(scope="module")
def monitor_app(airflow_app):
    """The plugin's FastAPI sub-application (the very object Airflow mounted)."""
    from imr_monitor import app as module

    mounted = [r.app for r in airflow_app.routes if getattr(r, "path", None) == PREFIX]
    assert mounted == [module.app], "the plugin's app is not mounted under /imr-monitor"
    yield module
    module.app.dependency_overrides.clear()


@pytest.fixture
def client(airflow_app, monitor_app, wh_conn, monkeypatch):
    """A TestClient on the api-server app whose `imr_warehouse` connection is this test's database."""
    from fastapi.testclient import TestClient

    info = wh_conn.info
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMR_WAREHOUSE", f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
    )
    # Where users open the UI: the origin the reprocess route's cross-origin check compares with.
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    with TestClient(airflow_app, base_url=BASE_URL) as c:
        yield c
    monitor_app.app.dependency_overrides.clear()


def auth(tokens, role="admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


# --------------------------------------------------------------------------- a fake Airflow REST API


class FakeAirflow:
    """Records POSTs and answers like POST /api/v2/dags/{dag_id}/dagRuns."""

    def __init__(
        self, status: int = 200, host: str = "127.0.0.1", error_body: str = '{"detail": "Forbidden"}'
    ):
        self.requests: list[dict] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"null")}
                )
                n = len(outer.requests)
                payload = {
                    "dag_run_id": f"manual__fake_{n}",
                    "dag_id": "imr_reprocess_failures",
                    "state": "queued",
                }
                data = json.dumps(payload).encode() if outer.status < 300 else error_body.encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def fake_airflow(monkeypatch):
    with FakeAirflow() as fake:
        monkeypatch.setenv("IMR_MONITOR_AIRFLOW_URL", fake.url)
        yield fake


# --------------------------------------------------------------------------- seed data


def add_object(
    cur, bucket, key, status, *, error_code=None, message=None, attempts=1, run=R1, at=None, etag=None
):
    """A manifest row; `etag` (S3's, unquoted, as discovery stores it) defaults to a made-up one."""
    cur.execute(
        """
        INSERT INTO imr.s3_objects (bucket, key, etag, size, status, attempts, first_run_id, last_run_id,
                                    error_code, error_message, updated_at)
        VALUES (%s, %s, coalesce(%s, 'etag-' || md5(%s)), 100, %s, %s, %s, %s, %s, %s, %s)
        """,
        (bucket, key, etag, key, status, attempts, run, run, error_code, message, at or ts(10)),
    )


def put_pdf(s3_client, bucket: str, key: str, body: bytes) -> str:
    """Puts an object in S3; its ETag as the manifest stores it (unquoted)."""
    return s3_client.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')


def add_failure(cur, bucket, key, run, code, message, at, *, task="process_lane", map_index=0, resolved=None):
    cur.execute(
        """
        INSERT INTO imr.parse_failures
            (bucket, key, etag, dag_run_id, task_id, map_index, error_code, message, occurred_at, resolved_at)
        VALUES (%s, %s, 'etag-' || md5(%s), %s, %s, %s, %s, %s, %s, %s)
        """,
        (bucket, key, key, run, task, map_index, code, message, at, resolved),
    )


@pytest.fixture
def seeded(wh_conn, bucket):
    """Objects in every state; b.pdf failed twice (timeout in R1, pdf_error in R2)."""
    with wh_conn, wh_conn.cursor() as cur:
        add_object(cur, bucket, "letters/a.pdf", "quarantined", error_code="not_pdf", message="not a PDF")
        add_failure(cur, bucket, "letters/a.pdf", R1, "not_pdf", "not a PDF", ts(10, 2))
        add_object(cur, bucket, "letters/b.pdf", "quarantined", error_code="pdf_error", attempts=2, run=R2)
        add_failure(cur, bucket, "letters/b.pdf", R1, "timeout", "took too long", ts(10, 3), map_index=1)
        add_failure(cur, bucket, "letters/b.pdf", R2, "pdf_error", "bad xref", ts(12, 9), map_index=-1)
        add_object(cur, bucket, EVIL_KEY, "quarantined", error_code="not_an_imr_letter", run=R2)
        add_failure(cur, bucket, EVIL_KEY, R2, "not_an_imr_letter", EVIL_MESSAGE, ts(12, 10), map_index=None)
        add_object(cur, bucket, "letters/fixed.pdf", "loaded", attempts=2, at=ts(11))
        add_failure(
            cur, bucket, "letters/fixed.pdf", R1, "item_structure", "items", ts(10, 4), resolved=ts(11)
        )
        add_object(cur, bucket, "letters/requeued.pdf", "pending", error_code="timeout")
        add_failure(cur, bucket, "letters/requeued.pdf", R1, "timeout", "slow", ts(10, 5))
        for i, day in enumerate((10, 10, 11, 12)):
            add_object(cur, bucket, f"letters/ok{i}.pdf", "loaded", at=ts(day))
    return bucket


def keys_of(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["key"] for r in response.json()["failures"]]


# --------------------------------------------------------------------------- listing and filters


def test_lists_open_and_queued_by_default_newest_first(client, tokens, seeded):
    r = client.get(f"{PREFIX}/api/failures", headers=auth(tokens, "viewer"))
    assert keys_of(r) == [EVIL_KEY, "letters/b.pdf", "letters/requeued.pdf", "letters/a.pdf"]
    rows = {row["key"]: row for row in r.json()["failures"]}
    assert r.json()["total"] == 4
    b = rows["letters/b.pdf"]
    assert (b["error_code"], b["message"], b["run_id"], b["attempts"], b["state"]) == (
        "pdf_error",
        "bad xref",
        R2,
        2,
        "open",
    )
    assert b["first_seen"] == ts(10, 3).isoformat() and b["last_seen"] == ts(12, 9).isoformat()
    assert b["failures"] == 2
    assert rows["letters/requeued.pdf"]["state"] == "queued"
    # The runs are not in Airflow's metadata DB here, so there is nothing to link to.
    assert b["dag_id"] is None and b["log_url"] is None


def test_state_filter(client, tokens, seeded):
    url = f"{PREFIX}/api/failures"
    assert keys_of(client.get(url, params={"state": "resolved"}, headers=auth(tokens))) == [
        "letters/fixed.pdf"
    ]
    assert keys_of(client.get(url, params={"state": "queued"}, headers=auth(tokens))) == [
        "letters/requeued.pdf"
    ]
    assert len(keys_of(client.get(url, params={"state": "all"}, headers=auth(tokens)))) == 5
    assert client.get(url, params={"state": "bogus"}, headers=auth(tokens)).status_code == 422


def test_error_code_filter_shows_the_matching_failure(client, tokens, seeded):
    url = f"{PREFIX}/api/failures"
    assert keys_of(client.get(url, params={"error_code": "pdf_error"}, headers=auth(tokens))) == [
        "letters/b.pdf"
    ]
    r = client.get(url, params={"error_code": "timeout"}, headers=auth(tokens))
    assert keys_of(r) == ["letters/requeued.pdf", "letters/b.pdf"]
    b = r.json()["failures"][1]
    # b.pdf's timeout was in R1: that failure is the row, its history stays whole.
    assert (b["error_code"], b["run_id"], b["map_index"], b["failures"]) == ("timeout", R1, 1, 2)
    assert keys_of(client.get(url, params={"error_code": "encrypted"}, headers=auth(tokens))) == []


def test_run_filter(client, tokens, seeded):
    url = f"{PREFIX}/api/failures"
    assert keys_of(client.get(url, params={"run_id": R2}, headers=auth(tokens))) == [
        EVIL_KEY,
        "letters/b.pdf",
    ]
    r1 = keys_of(client.get(url, params={"run_id": R1, "state": "all"}, headers=auth(tokens)))
    assert sorted(r1) == ["letters/a.pdf", "letters/b.pdf", "letters/fixed.pdf", "letters/requeued.pdf"]


def test_date_filters(client, tokens, seeded):
    url = f"{PREFIX}/api/failures"
    assert keys_of(client.get(url, params={"since": "2026-01-11"}, headers=auth(tokens))) == [
        EVIL_KEY,
        "letters/b.pdf",
    ]
    # `until` as a date includes that whole day.
    r = client.get(url, params={"until": "2026-01-10"}, headers=auth(tokens))
    assert keys_of(r) == ["letters/requeued.pdf", "letters/b.pdf", "letters/a.pdf"]
    assert r.json()["failures"][1]["error_code"] == "timeout"
    r = client.get(
        url,
        params={"since": "2026-01-10T04:30:00Z", "until": "2026-01-12T09:30:00+00:00"},
        headers=auth(tokens),
    )
    assert keys_of(r) == ["letters/b.pdf", "letters/requeued.pdf"]
    assert client.get(url, params={"since": "yesterday"}, headers=auth(tokens)).status_code == 422
    assert (
        client.get(
            url, params={"since": "2026-01-12", "until": "2026-01-10"}, headers=auth(tokens)
        ).status_code
        == 422
    )


def test_filters_are_bound_parameters(client, tokens, seeded):
    r = client.get(
        f"{PREFIX}/api/failures",
        params={"error_code": "x' OR '1'='1", "run_id": "'; DROP TABLE imr.s3_objects; --"},
        headers=auth(tokens),
    )
    assert keys_of(r) == []
    assert len(keys_of(client.get(f"{PREFIX}/api/failures", headers=auth(tokens)))) == 4


def test_pagination(client, tokens, seeded):
    r = client.get(f"{PREFIX}/api/failures", params={"limit": 2, "offset": 1}, headers=auth(tokens))
    assert keys_of(r) == ["letters/b.pdf", "letters/requeued.pdf"] and r.json()["total"] == 4


def test_links_to_task_instance_logs(client, tokens, seeded, monitor_app):
    dags = {R1: "imr_ingest_nightly", R2: "imr_reprocess_failures"}
    monitor_app.app.dependency_overrides[monitor_app.get_run_dags] = lambda: (
        lambda runs: {r: dags[r] for r in runs if r in dags}
    )
    rows = {
        row["key"]: row
        for row in client.get(f"{PREFIX}/api/failures", params={"state": "all"}, headers=auth(tokens)).json()[
            "failures"
        ]
    }
    r1, r2 = quote(R1, safe=""), quote(R2, safe="")
    assert (
        rows["letters/a.pdf"]["log_url"] == f"/dags/imr_ingest_nightly/runs/{r1}/tasks/process_lane/mapped/0"
    )
    assert rows["letters/a.pdf"]["run_url"] == f"/dags/imr_ingest_nightly/runs/{r1}"
    # map_index -1 (unmapped task) and NULL link to the task itself.
    assert rows["letters/b.pdf"]["log_url"] == f"/dags/imr_reprocess_failures/runs/{r2}/tasks/process_lane"
    assert rows[EVIL_KEY]["log_url"] == f"/dags/imr_reprocess_failures/runs/{r2}/tasks/process_lane"
    html = client.get(f"{PREFIX}/", headers=auth(tokens)).text
    assert f'href="/dags/imr_ingest_nightly/runs/{r1}/tasks/process_lane/mapped/0"' in html


def test_quarantined_object_without_failure_rows(client, tokens, wh_conn, bucket):
    with wh_conn, wh_conn.cursor() as cur:
        add_object(cur, bucket, "letters/old.pdf", "quarantined", error_code="encrypted", message="password")
    rows = client.get(f"{PREFIX}/api/failures", headers=auth(tokens)).json()["failures"]
    assert [(r["key"], r["error_code"], r["message"], r["run_id"], r["state"]) for r in rows] == [
        ("letters/old.pdf", "encrypted", "password", R1, "open")
    ]


# --------------------------------------------------------------------------- counts and trend


def test_counts_by_error_code(client, tokens, seeded):
    r = client.get(f"{PREFIX}/api/counts", headers=auth(tokens, "viewer"))
    assert r.status_code == 200
    assert r.json()["counts"] == [
        {"error_code": "not_an_imr_letter", "count": 1, "open": 1, "queued": 0, "resolved": 0},
        {"error_code": "not_pdf", "count": 1, "open": 1, "queued": 0, "resolved": 0},
        {"error_code": "pdf_error", "count": 1, "open": 1, "queued": 0, "resolved": 0},
        {"error_code": "timeout", "count": 1, "open": 0, "queued": 1, "resolved": 0},
    ]
    r = client.get(f"{PREFIX}/api/counts", params={"state": "all", "run_id": R1}, headers=auth(tokens))
    assert {c["error_code"]: c["count"] for c in r.json()["counts"]} == {
        "timeout": 2,
        "not_pdf": 1,
        "item_structure": 1,
    }


def test_daily_trend(client, tokens, seeded):
    r = client.get(
        f"{PREFIX}/api/trend", params={"since": "2026-01-09", "until": "2026-01-13"}, headers=auth(tokens)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["first"], body["last"]) == ("2026-01-09", "2026-01-13")
    # loaded: manifest rows with status loaded by day (fixed.pdf on the 11th included);
    # quarantined: distinct objects that failed that day.
    assert [(d["day"], d["loaded"], d["quarantined"]) for d in body["days"]] == [
        ("2026-01-09", 0, 0),
        ("2026-01-10", 2, 4),
        ("2026-01-11", 2, 0),
        ("2026-01-12", 1, 2),
        ("2026-01-13", 0, 0),
    ]
    default = client.get(f"{PREFIX}/api/trend", headers=auth(tokens)).json()
    assert len(default["days"]) == 14 and default["last"] == datetime.now(UTC).date().isoformat()


def test_error_codes(client, tokens, wh_conn, bucket):
    with wh_conn, wh_conn.cursor() as cur:
        add_failure(cur, bucket, "letters/z.pdf", R1, "some_future_code", "?", ts(10))
    codes = client.get(f"{PREFIX}/api/error-codes", headers=auth(tokens)).json()["error_codes"]
    assert "some_future_code" in codes and "not_pdf" in codes and codes == sorted(codes)


# --------------------------------------------------------------------------- reprocess


def test_reprocess_triggers_the_dag_with_the_callers_token(client, tokens, seeded, fake_airflow):
    r = client.post(
        f"{PREFIX}/api/reprocess",
        json={"keys": ["letters/a.pdf", EVIL_KEY, "letters/fixed.pdf", "letters/nope.pdf"]},
        headers=auth(tokens),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["skipped"] == ["letters/fixed.pdf", "letters/nope.pdf"]
    assert body["queued"] == [
        {
            "bucket": seeded,
            "keys": sorted(["letters/a.pdf", EVIL_KEY]),
            "dag_id": "imr_reprocess_failures",
            "dag_run_id": "manual__fake_1",
            "state": "queued",
            "run_url": "/dags/imr_reprocess_failures/runs/manual__fake_1",
        }
    ]
    [sent] = fake_airflow.requests
    assert sent["path"] == "/api/v2/dags/imr_reprocess_failures/dagRuns"
    assert sent["headers"]["Authorization"] == f"Bearer {tokens['admin']}"
    assert sent["json"]["logical_date"] is None
    assert sent["json"]["conf"] == {"bucket": seeded, "keys": sorted(["letters/a.pdf", EVIL_KEY])}
    assert "admin" in sent["json"]["note"]


def test_reprocess_forwards_the_ui_session_cookie(client, tokens, seeded, fake_airflow):
    client.cookies.set("_token", tokens["admin"])
    r = client.post(f"{PREFIX}/api/reprocess", json={"keys": ["letters/b.pdf"]}, headers=SAME_ORIGIN)
    assert r.status_code == 200, r.text
    [sent] = fake_airflow.requests
    assert sent["headers"]["Authorization"] == f"Bearer {tokens['admin']}"
    assert sent["json"]["conf"]["keys"] == ["letters/b.pdf"]


def test_reprocess_nothing_quarantined_sends_nothing(client, tokens, seeded, fake_airflow):
    r = client.post(f"{PREFIX}/api/reprocess", json={"keys": ["letters/requeued.pdf"]}, headers=auth(tokens))
    assert r.status_code == 409 and r.json()["queued"] == []
    assert fake_airflow.requests == []
    assert client.post(f"{PREFIX}/api/reprocess", json={"keys": []}, headers=auth(tokens)).status_code == 422
    bad = client.post(
        f"{PREFIX}/api/reprocess", content=b"keys=a", headers=auth(tokens) | {"Content-Type": "text/plain"}
    )
    assert bad.status_code == 422


def test_reprocess_refused_by_airflow(client, tokens, seeded, monkeypatch):
    with FakeAirflow(status=403) as fake:
        monkeypatch.setenv("IMR_MONITOR_AIRFLOW_URL", fake.url)
        r = client.post(f"{PREFIX}/api/reprocess", json={"keys": ["letters/a.pdf"]}, headers=auth(tokens))
    assert r.status_code == 403 and len(fake.requests) == 1


def test_reprocess_airflow_unreachable(client, tokens, seeded, monkeypatch):
    monkeypatch.setenv("IMR_MONITOR_AIRFLOW_URL", "http://127.0.0.1:9")
    r = client.post(f"{PREFIX}/api/reprocess", json={"keys": ["letters/a.pdf"]}, headers=auth(tokens))
    assert r.status_code == 502


def test_reprocess_cross_origin_refused(client, tokens, seeded, fake_airflow):
    client.cookies.set("_token", tokens["admin"])
    r = client.post(
        f"{PREFIX}/api/reprocess", json={"keys": ["letters/a.pdf"]}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403 and fake_airflow.requests == []
    ok = client.post(
        f"{PREFIX}/api/reprocess",
        json={"keys": ["letters/a.pdf"]},
        headers={"Origin": "http://localhost:8080"},
    )
    assert ok.status_code == 200


# --------------------------------------------------------------------------- download


def test_download_streams_manifest_objects_only(client, tokens, wh_conn, bucket, s3_client):
    pdf = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"
    etag = put_pdf(s3_client, bucket, "letters/CM16-0000001.pdf", pdf)
    s3_client.put_object(Bucket=bucket, Key="letters/unlisted.pdf", Body=b"%PDF-1.4 secret")
    with wh_conn, wh_conn.cursor() as cur:
        add_object(cur, bucket, "letters/CM16-0000001.pdf", "quarantined", error_code="pdf_error", etag=etag)
        add_object(cur, bucket, "letters/gone.pdf", "quarantined", error_code="pdf_error")
    url = f"{PREFIX}/download"
    r = client.get(
        url, params={"bucket": bucket, "key": "letters/CM16-0000001.pdf"}, headers=auth(tokens, "viewer")
    )
    assert r.status_code == 200 and r.content == pdf
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith('attachment; filename="CM16-0000001.pdf"')
    assert r.headers["x-content-type-options"] == "nosniff"
    # Without the bucket: the key is unambiguous.
    assert client.get(url, params={"key": "letters/CM16-0000001.pdf"}, headers=auth(tokens)).content == pdf
    # In S3 but not in the manifest: 404; in the manifest but gone from S3: 410; in another bucket: 404.
    assert (
        client.get(
            url, params={"bucket": bucket, "key": "letters/unlisted.pdf"}, headers=auth(tokens)
        ).status_code
        == 404
    )
    assert (
        client.get(
            url, params={"bucket": bucket, "key": "letters/gone.pdf"}, headers=auth(tokens)
        ).status_code
        == 410
    )
    assert (
        client.get(
            url, params={"bucket": "other", "key": "letters/CM16-0000001.pdf"}, headers=auth(tokens)
        ).status_code
        == 404
    )


# --------------------------------------------------------------------------- the page and escaping


def test_page_renders_letter_text_as_text(client, tokens, seeded):
    r = client.get(f"{PREFIX}/", headers=auth(tokens, "viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;q&#39;.pdf" in html  # the key
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#34;double&#34; &amp; &#39;single&#39;" in html
    # The only scripts are the page's own files; no inline handlers anywhere.
    assert html.count("<script") == 2 and f'<script src="{PREFIX}/static/monitor.js" defer></script>' in html
    assert f'<script src="{PREFIX}/static/progress.js" defer></script>' in html
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
    # Rows, checkboxes for the open ones only, links, charts.
    assert html.count('class="pick"') == 3
    assert 'id="chart-codes"' in html and 'id="chart-trend"' in html
    assert f'href="{PREFIX}/download?bucket={seeded}&amp;key=letters%2Fa.pdf"' in html


def test_page_filters_and_dag_run_view(client, tokens, seeded):
    html = client.get(
        f"{PREFIX}/",
        params={"dag_id": "imr_ingest_nightly", "run_id": R2, "state": "all"},
        headers=auth(tokens),
    ).text
    assert "letters/b.pdf" in html and "letters/a.pdf" not in html
    assert f'value="{R2}"' in html and "Run <a" in html
    html = client.get(f"{PREFIX}/", params={"error_code": "not_pdf"}, headers=auth(tokens)).text
    assert "letters/a.pdf" in html and "letters/b.pdf" not in html
    assert '<option value="not_pdf" selected>' in html
    other = client.get(f"{PREFIX}/", params={"dag_id": "some_other_dag", "run_id": R2}, headers=auth(tokens))
    assert "does not ingest letters" in other.text and "letters/b.pdf" not in other.text
    bad = client.get(f"{PREFIX}/", params={"since": "not-a-date"}, headers=auth(tokens))
    assert bad.status_code == 200 and 'class="error"' in bad.text


def test_static_files(client, tokens):
    r = client.get(f"{PREFIX}/static/monitor.js", headers=auth(tokens, "viewer"))
    assert (
        r.status_code == 200
        and "openInAirflow" in r.text
        and r.headers["content-type"].startswith("text/javascript")
    )
    assert client.get(f"{PREFIX}/static/../app.py", headers=auth(tokens)).status_code == 404
    assert client.get(f"{PREFIX}/static/app.py", headers=auth(tokens)).status_code == 404


def test_security_headers_on_every_response(client, tokens, wh_conn, bucket, s3_client):
    """One middleware (imr_monitor.security) sets the CSP and the other security headers on every
    response: the page, the JSON API, the static files, errors; a route's own CSP (the download's
    sandbox) and Cache-Control (the static files') stay."""
    from imr_monitor.security import CSP

    responses = {
        "page": client.get(f"{PREFIX}/", headers=auth(tokens)),
        "json": client.get(f"{PREFIX}/api/counts", headers=auth(tokens)),
        "static": client.get(f"{PREFIX}/static/monitor.css", headers=auth(tokens)),
        "not found": client.get(f"{PREFIX}/static/nope.js", headers=auth(tokens)),
        "invalid": client.get(f"{PREFIX}/api/failures", params={"limit": 0}, headers=auth(tokens)),
        "no session": client.get(f"{PREFIX}/api/failures"),
    }
    assert {name: r.status_code for name, r in responses.items()} == {
        "page": 200,
        "json": 200,
        "static": 200,
        "not found": 404,
        "invalid": 422,
        "no session": 401,
    }
    for name, r in responses.items():
        assert r.headers.get("content-security-policy") == CSP, name
        assert "frame-ancestors 'self'" in r.headers["content-security-policy"], name
        assert r.headers.get("x-content-type-options") == "nosniff", name
        assert r.headers.get("referrer-policy") == "same-origin", name
        expected_cache = "private, max-age=300" if name == "static" else "no-store"
        assert r.headers.get("cache-control") == expected_cache, name
    etag = put_pdf(s3_client, bucket, "letters/h.pdf", b"%PDF-1.4 h")
    with wh_conn, wh_conn.cursor() as cur:
        add_object(cur, bucket, "letters/h.pdf", "quarantined", error_code="pdf_error", etag=etag)
    r = client.get(f"{PREFIX}/download", params={"key": "letters/h.pdf"}, headers=auth(tokens))
    assert r.status_code == 200 and r.content == b"%PDF-1.4 h"
    assert r.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"


# --------------------------------------------------------------------------- runs in progress


@pytest.fixture
def active_run(wh_conn, bucket, monitor_app):
    """A backfill in progress, built by the warehouse's own functions (tests/progress_seed.py):
    10 keys, 3 loaded, 1 quarantined, 1 duplicate, 1 back to pending, 4 processing (2 in a lane);
    4 of them finished in the last 300 s. Its DAG is imr_backfill."""
    t = db_now(wh_conn)
    seed_active_run(wh_conn, bucket, R_BACKFILL, t)
    monitor_app.app.dependency_overrides[monitor_app.get_run_dags] = lambda: (
        lambda runs: {r: "imr_backfill" for r in runs if r == R_BACKFILL}
    )
    return t


def test_progress_of_an_active_run(client, tokens, seeded, active_run):
    r = client.get(f"{PREFIX}/api/progress", headers=auth(tokens, "viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["window_s"] == 300
    # The seeded quarantine (objects without batches, no run holding them) is no run in progress.
    [run] = body["runs"]
    assert (run["run_id"], run["dag_id"]) == (R_BACKFILL, "imr_backfill")
    assert run["run_url"] == f"/dags/imr_backfill/runs/{quote(R_BACKFILL, safe='')}"
    assert run["counts"] == EXPECTED_COUNTS
    assert (run["total"], run["done"], run["fraction"], run["in_lanes"]) == (10, 6, 0.6, 2)
    assert run["batches"] == EXPECTED_BATCHES
    assert run["started_at"] == (active_run - timedelta(seconds=600)).isoformat()
    # Four keys finished in the last 300 s, four remain: 0.0133 letters/s, 300 s to go.
    assert (run["window_s"], run["done_in_window"]) == (300, 4)
    assert run["rate_per_s"] == pytest.approx(4 / 300, abs=1e-4)
    assert run["eta_s"] == 300.0
    assert run["text"]["percent"] == "60.0%" and run["text"]["eta"] == "5 min 00 s"
    assert run["text"]["rate"] == "0.01 letters/s" and run["text"]["window"] == "last 5 min"
    assert [(b["state"], b["width"]) for b in run["bar"]] == [
        ("loaded", 180),
        ("duplicate", 60),
        ("quarantined", 60),
        ("pending", 60),
        ("in_lanes", 120),
        ("waiting", 120),
    ]


def test_progress_window_and_run_filter(client, tokens, active_run):
    url = f"{PREFIX}/api/progress"
    [run] = client.get(url, params={"window_s": 120}, headers=auth(tokens)).json()["runs"]
    # Only batch 3 (two keys) finished in the last 120 s.
    assert (run["done_in_window"], run["eta_s"]) == (2, 240.0)
    assert run["rate_per_s"] == pytest.approx(2 / 120, abs=1e-4)
    [run] = client.get(url, params={"window_s": 3600}, headers=auth(tokens)).json()["runs"]
    assert run["window_s"] == pytest.approx(600, abs=5) and run["done_in_window"] == 6
    assert (
        client.get(url, params={"run_id": R_BACKFILL}, headers=auth(tokens)).json()["runs"][0]["total"] == 10
    )
    assert client.get(url, params={"run_id": R1}, headers=auth(tokens)).json()["runs"] == []
    for bad in ("0", "5", "-1", "soon", "100000"):
        assert client.get(url, params={"window_s": bad}, headers=auth(tokens)).status_code == 422


def test_progress_when_no_run_is_active(client, tokens, seeded):
    body = client.get(f"{PREFIX}/api/progress", headers=auth(tokens)).json()
    assert body["runs"] == [] and body["as_of"]
    html = client.get(f"{PREFIX}/", headers=auth(tokens)).text
    assert "Runs in progress" in html
    assert '<p class="empty" id="progress-none">No run in progress.</p>' in html
    assert 'data-active="false"' in html


def test_page_shows_the_run_in_progress(client, tokens, seeded, active_run):
    html = client.get(f"{PREFIX}/", headers=auth(tokens, "viewer")).text
    section = html[html.index('<section id="progress"') : html.index("</section>")]
    assert 'data-active="true"' in section and f'data-url="{PREFIX}/api/progress"' in section
    assert 'id="progress-none" hidden' in section
    head, _template = section.split('<template id="progress-run">')
    assert f'data-run-id="{R_BACKFILL}"' in head and 'data-field="dag_id">imr_backfill<' in head
    for field, text in {
        "pending": "1",
        "processing": "4",
        "loaded": "3",
        "quarantined": "1",
        "duplicate": "1",
        "total": "10",
        "percent": "60.0%",
        "rate": "0.01 letters/s",
        "eta": "5 min 00 s",
    }.items():
        assert f'data-field="{field}">{text}<' in head, field
    assert 'data-seg="loaded" x="0" y="0" width="180"' in head
    assert 'data-seg="in_lanes" x="360" y="0" width="120"' in head
    # A DAG run's tab shows its own run only; another DAG's tab shows none.
    tab = client.get(f"{PREFIX}/", params={"dag_id": "imr_backfill", "run_id": R1}, headers=auth(tokens)).text
    assert "No run in progress." in tab and f'data-run-id="{R_BACKFILL}"' not in tab
    assert f"/api/progress?run_id={quote(R1, safe='')}" in tab
    other = client.get(f"{PREFIX}/", params={"dag_id": "some_other_dag"}, headers=auth(tokens)).text
    assert "Runs in progress" not in other


def test_progress_script(client, tokens):
    r = client.get(f"{PREFIX}/static/progress.js", headers=auth(tokens, "viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    # Texts go in as text only.
    assert "textContent" in r.text and "innerHTML" not in r.text


# --------------------------------------------------------------------------- authentication and authorization


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
def test_every_route_needs_an_authenticated_user(client, seeded, method, path):
    r = client.request(method, PREFIX + path, json={"keys": ["letters/a.pdf"]} if method == "POST" else None)
    assert r.status_code == 401, r.text
    r = client.request(
        method,
        PREFIX + path,
        json={"keys": ["letters/a.pdf"]} if method == "POST" else None,
        headers={"Authorization": "Bearer not-a-jwt"},
    )
    assert r.status_code == 403, r.text


def test_expired_or_foreign_tokens_are_refused(client, tokens, seeded):
    import jwt

    claims = {"sub": "admin", "role": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)}
    forged = jwt.encode(claims, "another-secret-" + "y" * 64, "HS512")
    r = client.get(f"{PREFIX}/api/failures", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 403
    # A real token of this deployment, expired: 401 "Token Expired".
    r = client.get(f"{PREFIX}/api/failures", headers={"Authorization": f"Bearer {tokens['expired']}"})
    assert r.status_code == 401 and r.json()["detail"] == "Token Expired"


def test_page_without_session_redirects_to_login(client):
    r = client.get(f"{PREFIX}/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and "/auth/login" in r.headers["location"]


def test_viewer_reads_but_cannot_queue(client, tokens, seeded, fake_airflow):
    assert client.get(f"{PREFIX}/api/failures", headers=auth(tokens, "viewer")).status_code == 200
    r = client.post(
        f"{PREFIX}/api/reprocess", json={"keys": ["letters/a.pdf"]}, headers=auth(tokens, "viewer")
    )
    assert r.status_code == 403
    assert fake_airflow.requests == []


def test_session_cookie_is_accepted(client, tokens, seeded):
    client.cookies.set("_token", tokens["viewer"])
    assert len(keys_of(client.get(f"{PREFIX}/api/failures"))) == 4


# --------------------------------------------------------------------------- registration


def test_plugin_registers_the_app_and_the_views(client, tokens):
    """What the UI reads (GET /api/v2/plugins): the mounted app, the nav view and the dag-run view,
    whose href the UI fills in with the run ({DAG_ID}, {RUN_ID})."""
    r = client.get("/api/v2/plugins", headers=auth(tokens))
    assert r.status_code == 200, r.text
    [plugin] = [p for p in r.json()["plugins"] if p["name"] == "imr_monitor"]
    assert [(a["url_prefix"], a["name"]) for a in plugin["fastapi_apps"]] == [
        (PREFIX, "IMR ingestion monitor")
    ]
    # (The "IMR Insights" nav view is tested in test_insights_api.py.)
    views = {v["destination"]: v for v in plugin["external_views"] if v["url_route"] != "imr-insights"}
    assert views["nav"]["name"] == "IMR Ingestion" and views["nav"]["href"] == f"{PREFIX}/"
    assert views["dag_run"]["href"] == f"{PREFIX}/?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&state=all"
    assert all(v["url_route"] for v in views.values())


def test_imr_monitor_does_not_import_airflow():
    code = "import sys, imr.monitor; sys.exit(any(m.split('.')[0] == 'airflow' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_the_plugin_does_not_import_the_task_module(tmp_path):
    """The api-server gets its clients from imr_airflow.connections: loading the plugin (and the
    module its dependencies import lazily) brings in neither the @task callables nor the DAG wiring."""
    code = (
        f"import sys; sys.path.append({str(PLUGINS)!r}); "
        "import imr_monitor_plugin, imr_monitor.deps, imr_airflow.connections; "
        "sys.exit(sorted({'imr_airflow.tasks', 'imr_airflow.wiring'} & set(sys.modules)) or 0)"
    )
    env = os.environ | {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    for path in (PLUGINS / "imr_monitor").glob("*.py"):
        assert "imr_airflow.tasks" not in path.read_text(), path
        assert "imr_airflow.wiring" not in path.read_text(), path


def test_page_shows_the_last_alert_sent_per_dag(client, tokens, seeded, wh_conn):
    """imr.alerts_sent (what the notifiers sent) on the page: the newest per DAG, with its run."""
    from imr import alerts

    for kind, run in ((alerts.KIND_QUARANTINE, R1), (alerts.KIND_GATE_FAILED, R2)):
        alerts.record_sent(
            wh_conn, alerts.Alert(kind=kind, dag_id="imr_ingest_nightly", run_id=run), ["mail"]
        )
    alerts.record_sent(
        wh_conn, alerts.Alert(kind=alerts.KIND_DEADLINE, dag_id="imr_backfill", run_id=R1), ["slack"]
    )
    html = client.get(f"{PREFIX}/", headers=auth(tokens, "viewer")).text
    section = html.split('id="last-alerts"', 1)[1].split("</section>", 1)[0]
    rows = section.split("<tr>")[2:]
    assert len(rows) == 2
    assert "imr_backfill" in rows[0] and "deadline_missed" in rows[0] and "slack" in rows[0]
    assert "imr_ingest_nightly" in rows[1] and "gate_failed" in rows[1] and R2 in rows[1]
    assert alerts.KIND_QUARANTINE not in section


# --------------------------------------------------------------------------- issue 15: hardening

VIEWER_GET_ROUTES = [path for method, path in ALL_ROUTES if method == "GET"]


@pytest.fixture
def letters_in_s3(wh_conn, bucket, s3_client):
    """Objects in S3 with their real ETags in the manifest: quarantined with and without failure rows,
    loaded after a failure (resolved), loaded that never failed. {key: bytes}."""
    bodies = {key: b"%PDF-1.4 " + key.encode() + os.urandom(64) for key in ("a", "old", "fixed", "clean")}
    keys = {name: f"letters/{name}.pdf" for name in bodies}
    with wh_conn, wh_conn.cursor() as cur:
        for name, body in bodies.items():
            etag = put_pdf(s3_client, bucket, keys[name], body)
            status = "quarantined" if name in ("a", "old") else "loaded"
            add_object(cur, bucket, keys[name], status, error_code="pdf_error", etag=etag)
        add_failure(cur, bucket, keys["a"], R1, "pdf_error", "bad xref", ts(10))
        add_failure(cur, bucket, keys["fixed"], R1, "timeout", "slow", ts(10), resolved=ts(11))
    return {keys[name]: body for name, body in bodies.items()}


def test_viewer_downloads_failed_letters_only(client, tokens, letters_in_s3):
    """Finding 3: a viewer gets what is or was quarantined, not a letter that simply loaded; the
    permission to download any letter (SimpleAuthManager: role admin) gets that one too."""
    url = f"{PREFIX}/download"
    for key in ("letters/a.pdf", "letters/old.pdf", "letters/fixed.pdf"):
        r = client.get(url, params={"key": key}, headers=auth(tokens, "viewer"))
        assert r.status_code == 200 and r.content == letters_in_s3[key], key
    r = client.get(url, params={"key": "letters/clean.pdf"}, headers=auth(tokens, "viewer"))
    # Answered like an unknown key: the route tells a viewer nothing about letters that loaded.
    assert r.status_code == 404 and letters_in_s3["letters/clean.pdf"] not in r.content
    assert r.json()["detail"] == "no such quarantined object in the manifest"
    r = client.get(url, params={"key": "letters/clean.pdf"}, headers=auth(tokens, "admin"))
    assert r.status_code == 200 and r.content == letters_in_s3["letters/clean.pdf"]


def test_download_permission_under_fab(airflow_app, monkeypatch):
    """Finding 3, the FAB side (docker-compose.yaml, the native stack): the permission is FAB's
    (can_read, "IMR Letter Downloads") in one of the user's roles, evaluated by the real
    FabAuthManager on FAB's own user/role/permission models (in memory: no FAB database here)."""
    from airflow.api_fastapi import app as api_app
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
    from airflow.providers.fab.auth_manager.models import Action, Permission, Resource, Role, User
    from imr_monitor import security

    def role(name: str, *perms: tuple[str, str]) -> Role:
        r = Role(name=name)
        r.permissions = [Permission(action=Action(name=a), resource=Resource(name=res)) for a, res in perms]
        return r

    viewer_role = role("Viewer", ("can_read", "DAGs"), ("can_read", "Task Instances"))
    viewer, reader, other = User(username="viewer"), User(username="reader"), User(username="other")
    viewer.roles = [viewer_role]
    reader.roles = [viewer_role, role("IMR letter readers", ("can_read", security.DOWNLOAD_ANY_RESOURCE))]
    other.roles = [role("Other", ("can_edit", security.DOWNLOAD_ANY_RESOURCE))]
    monkeypatch.setattr(api_app, "get_auth_manager", FabAuthManager)
    assert [security.may_download_any(u) for u in (viewer, reader, other)] == [False, True, False]


def test_download_is_audited(client, tokens, letters_in_s3, caplog):
    """Finding 3: every download request is one audit line (user, bucket, key, ETag, time) at INFO
    when served, WARNING when refused; never the letter's bytes."""
    url = f"{PREFIX}/download"
    with caplog.at_level(logging.INFO, logger="imr_monitor.audit"):
        assert (
            client.get(url, params={"key": "letters/a.pdf"}, headers=auth(tokens, "viewer")).status_code
            == 200
        )
        assert (
            client.get(url, params={"key": "letters/clean.pdf"}, headers=auth(tokens, "viewer")).status_code
            == 404
        )
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "imr_monitor.audit"]
    assert len(lines) == 2, lines
    (served_level, served), (refused_level, refused) = lines
    assert served_level == logging.INFO and served.startswith("download served user='viewer'")
    assert "key='letters/a.pdf'" in served and "etag='" in served and "etag=None" not in served
    assert re.search(r"at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", served)
    assert refused_level == logging.WARNING and refused.startswith("download refused user='viewer'")
    assert "key='letters/clean.pdf'" in refused
    assert not any(b"%PDF" in m.encode() for _, m in lines)


def test_download_serves_the_version_that_failed(client, tokens, wh_conn, bucket, s3_client):
    """Finding 3: the GET is conditional on the manifest's ETag: an object replaced in S3 since is a
    409 without its bytes, one deleted since is a 410."""
    etag = put_pdf(s3_client, bucket, "letters/x.pdf", b"%PDF-1.4 the version that failed")
    with wh_conn, wh_conn.cursor() as cur:
        add_object(cur, bucket, "letters/x.pdf", "quarantined", error_code="pdf_error", etag=etag)
    url = f"{PREFIX}/download"
    r = client.get(url, params={"key": "letters/x.pdf"}, headers=auth(tokens, "viewer"))
    assert r.status_code == 200 and r.headers["etag"] == f'"{etag}"'
    s3_client.put_object(Bucket=bucket, Key="letters/x.pdf", Body=b"%PDF-1.4 other bytes, another letter")
    r = client.get(url, params={"key": "letters/x.pdf"}, headers=auth(tokens, "viewer"))
    assert r.status_code == 409 and b"other bytes" not in r.content
    assert "changed" in r.json()["detail"]
    s3_client.delete_object(Bucket=bucket, Key="letters/x.pdf")
    assert client.get(url, params={"key": "letters/x.pdf"}, headers=auth(tokens)).status_code == 410


@pytest.mark.parametrize("path", VIEWER_GET_ROUTES)
def test_viewer_reads_every_route(client, tokens, letters_in_s3, path):
    """Every read route of the monitor (and its progress) answers a viewer."""
    r = client.get(PREFIX + path, headers=auth(tokens, "viewer"))
    assert r.status_code == 200, r.text


LOCK_HELD_S = 20


@pytest.fixture
def locked_table(pg_dsn, wh_conn):
    """Takes an ACCESS EXCLUSIVE lock on a warehouse table from another session for LOCK_HELD_S at
    most: every read of it waits until its statement timeout cancels it (without a timeout it would
    wait until the lock goes, and the test fails instead of hanging)."""
    import psycopg2

    holder = psycopg2.connect(pg_dsn)
    release = threading.Timer(LOCK_HELD_S, holder.rollback)

    def lock(table: str) -> None:
        with holder.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # held until the rollback
        release.start()

    yield lock
    release.cancel()
    holder.rollback()
    holder.close()


def test_slow_warehouse_read_answers_503(client, tokens, seeded, locked_table, monkeypatch):
    """Finding 5: the UI's reads run under a statement timeout (imr.config.ui_statement_timeout_ms);
    a read stuck behind a lock is cancelled and the route answers 503, quickly."""
    import time

    monkeypatch.setenv("IMR_UI_STATEMENT_TIMEOUT_MS", "300")
    locked_table("imr.s3_objects")
    for path in ("/api/failures", "/api/counts", "/"):
        started = time.monotonic()
        r = client.get(PREFIX + path, headers=auth(tokens, "viewer"))
        assert r.status_code == 503, (path, r.status_code, r.text[:200])
        assert time.monotonic() - started < 10
        assert r.headers["retry-after"] == "30" and "did not answer in time" in r.json()["detail"]


def test_statement_timeout_setting(monkeypatch):
    from imr.config import UI_STATEMENT_TIMEOUT_MS, ui_statement_timeout_ms

    monkeypatch.delenv("IMR_UI_STATEMENT_TIMEOUT_MS", raising=False)
    assert ui_statement_timeout_ms() == UI_STATEMENT_TIMEOUT_MS and 1000 <= UI_STATEMENT_TIMEOUT_MS <= 10_000
    monkeypatch.setenv("IMR_UI_STATEMENT_TIMEOUT_MS", "1500")
    assert ui_statement_timeout_ms() == 1500
    # 0 is PostgreSQL's "no timeout": refused rather than silently unbounded.
    monkeypatch.setenv("IMR_UI_STATEMENT_TIMEOUT_MS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        ui_statement_timeout_ms()


@pytest.mark.parametrize("path", ["/api/failures", "/api/counts", "/"])
def test_offset_and_limit_are_capped(client, tokens, seeded, path):
    """Finding 5: every route that takes `offset` (and `limit`) refuses values past the caps."""
    from imr.monitor import MAX_LIMIT, MAX_OFFSET

    url = PREFIX + path
    assert client.get(url, params={"offset": MAX_OFFSET}, headers=auth(tokens)).status_code == 200
    assert client.get(url, params={"offset": MAX_OFFSET + 1}, headers=auth(tokens)).status_code == 422
    assert client.get(url, params={"offset": 10**12}, headers=auth(tokens)).status_code == 422
    assert client.get(url, params={"limit": MAX_LIMIT + 1}, headers=auth(tokens)).status_code == 422


def test_reprocess_errors_leak_nothing_of_airflow(client, tokens, seeded, monkeypatch, caplog):
    """Finding 6: a failed trigger answers a generic message with a request id; Airflow's URL, the
    exception and Airflow's body go to the api-server log under that id only."""
    secret = "internal-detail-7f3a: stack trace of the api server"
    with FakeAirflow(status=500, error_body=secret) as fake:
        monkeypatch.setenv("IMR_MONITOR_AIRFLOW_URL", fake.url)
        with caplog.at_level(logging.WARNING, logger="imr_monitor.airflow_api"):
            r = client.post(f"{PREFIX}/api/reprocess", json={"keys": ["letters/a.pdf"]}, headers=auth(tokens))
    assert r.status_code == 502 and len(fake.requests) == 1
    request_id = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    assert r.json()["detail"].endswith(f"(request id {request_id})")
    for leak in (secret, "internal-detail", fake.url, "127.0.0.1", "500"):
        assert leak not in r.text, leak
    [logged] = [rec.getMessage() for rec in caplog.records if request_id in rec.getMessage()]
    assert secret in logged and fake.url in logged

    monkeypatch.setenv("IMR_MONITOR_AIRFLOW_URL", "http://127.0.0.1:9")
    r = client.post(f"{PREFIX}/api/reprocess", json={"keys": ["letters/a.pdf"]}, headers=auth(tokens))
    assert r.status_code == 502 and "127.0.0.1" not in r.text and "onnect" not in r.text


def test_token_never_sent_in_clear_beyond_loopback(client, tokens, seeded, monkeypatch, caplog):
    """Finding 6: the user's JWT goes to IMR_MONITOR_AIRFLOW_URL only over https or to loopback. The
    target is a name that never resolves (.invalid, RFC 6761), so nothing leaves this machine even if
    the check were broken; the log shows the trigger was refused before any connection was tried."""
    monkeypatch.setenv("IMR_MONITOR_AIRFLOW_URL", "http://airflow-api.invalid:8080")
    with caplog.at_level("WARNING", logger="imr_monitor"):
        r = client.post(f"{PREFIX}/api/reprocess", json={"keys": ["letters/a.pdf"]}, headers=auth(tokens))
    assert r.status_code == 502
    assert "invalid" not in r.text and "request id" in r.json()["detail"]
    assert "neither https:// nor http:// on loopback" in caplog.text
    assert "could not reach Airflow" not in caplog.text
    from imr_monitor.airflow_api import token_may_go_to

    assert token_may_go_to("https://airflow.internal:8443")
    assert token_may_go_to("http://localhost:8080") and token_may_go_to("http://127.0.0.2:8080")
    assert token_may_go_to("http://[::1]:8080")
    for url in ("http://airflow-apiserver:8080", "http://10.0.0.5:8080", "ftp://localhost", "localhost:8080"):
        assert not token_may_go_to(url), url


def test_cross_site_request_forgery_checks(client, tokens, seeded, fake_airflow, monkeypatch):
    """Finding 8: with the session cookie, the POST passes only from this deployment's origin
    ([api] base_url, scheme included) or with Sec-Fetch-Site: same-origin; a missing Origin and a
    client-sent X-Forwarded-Host no longer pass."""
    client.cookies.set("_token", tokens["admin"])
    url, body = f"{PREFIX}/api/reprocess", {"keys": ["letters/a.pdf"]}
    refused = {
        "no Origin": {},
        "forwarded host": {"Origin": "http://evil.example", "X-Forwarded-Host": "evil.example"},
        "other scheme": {"Origin": "https://localhost:8080"},
        "other port": {"Origin": "http://localhost:8081"},
        "null": {"Origin": "null"},
        "cross-site": {"Sec-Fetch-Site": "cross-site", "Origin": BASE_URL},
        "same-site": {"Sec-Fetch-Site": "same-site"},
    }
    for name, headers in refused.items():
        r = client.post(url, json=body, headers=headers)
        assert r.status_code == 403 and "cross-origin" in r.text, name
    assert fake_airflow.requests == []
    accepted = {
        "base_url origin": {"Origin": BASE_URL},
        "same origin, default port": {"Origin": "http://LOCALHOST:8080"},
        "browser": {"Sec-Fetch-Site": "same-origin", "Origin": BASE_URL},
        "browser behind a proxy": {"Sec-Fetch-Site": "same-origin", "Origin": "https://airflow.example"},
    }
    for name, headers in accepted.items():
        assert client.post(url, json=body, headers=headers).status_code == 200, name
    # Without a configured base_url only the browser's own Sec-Fetch-Site is believed.
    monkeypatch.delenv("AIRFLOW__API__BASE_URL")
    assert client.post(url, json=body, headers={"Origin": BASE_URL}).status_code == 403
    assert client.post(url, json=body, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    # A JSON body is still the only one accepted.
    r = client.post(
        url, content=b"keys=a", headers={"Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"}
    )
    assert r.status_code == 422


def test_bearer_requests_carry_no_ambient_credential(client, tokens, seeded, fake_airflow):
    """Finding 8: a bearer token (which no other site's page can make a browser send) needs no
    Origin; the cookie of the same user does."""
    url, body = f"{PREFIX}/api/reprocess", {"keys": ["letters/a.pdf"]}
    assert client.post(url, json=body, headers=auth(tokens)).status_code == 200
    client.cookies.set("_token", tokens["admin"])
    assert client.post(url, json=body).status_code == 403
