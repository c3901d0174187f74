"""Auth as in production, on the running stack (issue 8, "Must show" 4).

The stack runs the Flask-AppBuilder auth manager with the two users docker/airflow-users.sh
creates: an admin (FAB role Admin) and a viewer (FAB role Viewer). Everything goes over HTTP to the
real api-server, with tokens from its `POST /auth/token`:

* no credentials: 401 on the monitor's API (the page itself sends a browser to FAB's login);
* viewer: 200 on every read route of the monitor, 403 on `POST /imr-monitor/api/reprocess`, and no
  run of imr_reprocess_failures appears;
* admin: 200 on reprocess, and the run it triggered is in
  `GET /api/v2/dags/imr_reprocess_failures/dagRuns`, with the keys in its conf and the admin as its
  triggering user (the monitor triggers with the caller's own token).

Least privilege (issue 15): the api-server process holds the warehouse login imr_ui (imr_reader:
SELECT only), which cannot INSERT into imr.letters, while every page and JSON route of the monitor,
its progress section and the insights page still answers the viewer; stack.env is 0600; the stack's
set-up (airflow-init.sh, airflow-users.sh) takes passwords that begin with `-` and hold shell
characters, and the api-server then logs those users in.

The reprocessed object is a row this module puts in the warehouse's manifest (as the owner,
IMR_WAREHOUSE_DSN): a quarantined key under a prefix of its own, outside IMR_PREFIX, so the
triggered run re-queues at most that key and never claims it (its plan reads IMR_PREFIX only). The
row is deleted afterwards, and the triggered run is waited for (or, if the DAG is paused, deleted)
so that it does not overlap the tests that count the stack's runs and objects.

Fixtures from tests/stack/conftest.py: `stack` (the stack's environment, as .run/stack/stack.env)
and `api_token(username, password) -> token`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg2
import pytest

from imr.config import ROLE_ADMIN, ROLE_VIEWER, TOKEN_PATH
from support.routes import INSIGHTS_ROUTES

pytestmark = pytest.mark.stack

MONITOR = "/imr-monitor"
DAG_REPROCESS = "imr_reprocess_failures"
RUNS = f"/api/v2/dags/{DAG_REPROCESS}/dagRuns"
# The monitor's read routes and what each JSON answer carries.
READ_ROUTES = {
    "/api/failures": {"total", "failures"},
    "/api/counts": {"counts"},
    "/api/trend": {"first", "last", "days"},
    "/api/error-codes": {"error_codes"},
}
# Every route a viewer reads (finding 2: all of them answer with the api-server's read-only login).
VIEWER_ROUTES = (
    "/",
    "/api/failures",
    "/api/counts",
    "/api/trend",
    "/api/error-codes",
    "/api/progress",
    "/static/monitor.js",
    *INSIGHTS_ROUTES,
)
HOSTILE = "-p $(touch /tmp/imr-stack-pwned) `id` 'q' \"d\" ; & | < > * ? ! # ~ \\ %s ${HOME}"
TERMINAL = {"success", "failed"}
RUN_WAIT_S = 300
LOGIN_WINDOW_S = 41


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=stack["AIRFLOW_API_URL"].rstrip("/"), timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def tokens(stack, api_token) -> dict[str, str]:
    return {
        "admin": api_token(stack["IMR_ADMIN_USER"], stack["IMR_ADMIN_PASSWORD"]),
        "viewer": api_token(stack["IMR_VIEWER_USER"], stack["IMR_VIEWER_PASSWORD"]),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_ids(client, admin_token: str) -> set[str]:
    r = client.get(RUNS, params={"limit": 100, "order_by": "-run_after"}, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    return {run["dag_run_id"] for run in r.json()["dag_runs"]}


@pytest.fixture
def quarantined(stack):
    """A quarantined object in the manifest, outside IMR_PREFIX: (bucket, key). Removed afterwards."""
    import psycopg2

    bucket = stack["IMR_BUCKET"]
    key = f"auth-check/{uuid.uuid4().hex}/not-a-letter.pdf"
    assert not key.startswith(stack["IMR_PREFIX"])
    conn = psycopg2.connect(stack["IMR_WAREHOUSE_DSN"])
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO imr.s3_objects
                    (bucket, key, etag, size, status, attempts, error_code, error_message)
                VALUES (%s, %s, 'auth-check', 1, 'quarantined', 1, 'not_pdf', 'seeded by test_stack_auth')
                """,
                (bucket, key),
            )
        yield bucket, key
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM imr.parse_failures WHERE bucket = %s AND key = %s", (bucket, key))
            cur.execute("DELETE FROM imr.s3_objects WHERE bucket = %s AND key = %s", (bucket, key))
        conn.close()


def settle(client, admin_token: str, run_id: str) -> str:
    """Waits for the triggered run to finish; a run that cannot start (the DAG is paused) is deleted.
    Returns its last state."""
    headers = bearer(admin_token)
    deadline = time.monotonic() + RUN_WAIT_S
    while True:
        run = client.get(f"{RUNS}/{run_id}", headers=headers).json()
        if run.get("state") in TERMINAL:
            return run["state"]
        paused = client.get(f"/api/v2/dags/{DAG_REPROCESS}", headers=headers).json().get("is_paused")
        if (paused and run.get("state") == "queued") or time.monotonic() > deadline:
            if run.get("state") == "queued":
                client.delete(f"{RUNS}/{run_id}", headers=headers)
            return run.get("state")
        time.sleep(3)


# --------------------------------------------------------------------------- tokens


def test_token_endpoint(client, stack):
    """POST /auth/token with JSON {"username", "password"}: 201 {"access_token"}; a wrong password 401."""
    user, password = stack["IMR_VIEWER_USER"], stack["IMR_VIEWER_PASSWORD"]
    r = client.post(TOKEN_PATH, json={"username": user, "password": password})
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"access_token"} and r.json()["access_token"].count(".") == 2
    r = client.post(TOKEN_PATH, json={"username": user, "password": password + "x"})
    assert r.status_code == 401, r.text


def test_users_have_their_roles(client, stack, tokens):
    """The FAB users of docker/airflow-users.sh, as the auth manager's own API lists them."""
    r = client.get("/auth/fab/v1/users", headers=bearer(tokens["admin"]), params={"limit": 100})
    assert r.status_code == 200, r.text
    roles = {u["username"]: sorted(role["name"] for role in u["roles"]) for u in r.json()["users"]}
    assert roles[stack["IMR_ADMIN_USER"]] == [ROLE_ADMIN]
    assert roles[stack["IMR_VIEWER_USER"]] == [ROLE_VIEWER]
    # The viewer may not list users.
    r = client.get("/auth/fab/v1/users", headers=bearer(tokens["viewer"]))
    assert r.status_code == 403, r.text


# --------------------------------------------------------------------------- no credentials


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/failures"), ("POST", "/api/reprocess")])
def test_no_credentials_is_401(client, method, path):
    kwargs = {"json": {"keys": ["letters/x.pdf"]}} if method == "POST" else {}
    r = client.request(method, MONITOR + path, **kwargs)
    assert r.status_code == 401, r.text


def test_bad_token_is_refused(client):
    r = client.get(MONITOR + "/api/failures", headers=bearer("not.a.token"))
    assert r.status_code in (401, 403), r.text


def test_page_sends_a_browser_to_the_login(client):
    r = client.get(MONITOR + "/", headers={"Accept": "text/html"})
    assert r.status_code == 303, r.text
    location = httpx.URL(r.headers["location"])
    assert location.path.startswith("/auth/login"), location
    assert MONITOR in location.params.get("next", "")
    # FAB's login page is there.
    assert client.get(r.headers["location"]).status_code == 200


@contextmanager
def browser_login(stack, user: str, password: str) -> Iterator[httpx.Client]:
    """A client that logged in like a browser: the monitor page -> FAB's login form -> back."""
    with httpx.Client(base_url=stack["AIRFLOW_API_URL"].rstrip("/"), timeout=60, follow_redirects=True) as c:
        yield _login(c, user, password)


def _login(c: httpx.Client, user: str, password: str) -> httpx.Client:
    # FAB rate-limits its login form ([fab] auth_rate_limit, default 5 per 40 s per client): a 429
    # waits for the window and tries again, once.
    for attempt in range(2):
        form = c.get(MONITOR + "/", headers={"Accept": "text/html"})
        if form.status_code == 429 and attempt == 0:
            time.sleep(float(form.headers.get("retry-after") or LOGIN_WINDOW_S))
            continue
        assert form.status_code == 200 and "/auth/login" in str(form.url), (form.url, form.status_code)
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', form.text
        )
        assert csrf, "no csrf_token in FAB's login form"
        page = c.post(
            form.url,
            data={"username": user, "password": password, "csrf_token": csrf.group(1)},
            headers={"Accept": "text/html"},
        )
        if page.status_code == 429 and attempt == 0:
            time.sleep(float(page.headers.get("retry-after") or LOGIN_WINDOW_S))
            continue
        assert page.status_code == 200 and page.url.path.rstrip("/") == MONITOR, (page.url, page.status_code)
        break
    return c


def test_browser_session(client, stack, tokens):
    """The UI's way in: FAB's login form, then the session cookies alone (no Authorization header).
    A cross-site POST with the admin's cookies is refused before anything is triggered."""
    with browser_login(stack, stack["IMR_VIEWER_USER"], stack["IMR_VIEWER_PASSWORD"]) as viewer:
        assert viewer.get(MONITOR + "/api/failures").status_code == 200
        r = viewer.post(
            MONITOR + "/api/reprocess",
            json={"keys": ["letters/x.pdf"]},
            headers={"Origin": stack["AIRFLOW_API_URL"]},
        )
        assert r.status_code == 403, r.text
    before = run_ids(client, tokens["admin"])
    with browser_login(stack, stack["IMR_ADMIN_USER"], stack["IMR_ADMIN_PASSWORD"]) as admin:
        r = admin.post(
            MONITOR + "/api/reprocess",
            json={"keys": ["letters/x.pdf"]},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "cross-origin" in r.text, r.text
    assert run_ids(client, tokens["admin"]) == before


# --------------------------------------------------------------------------- viewer


@pytest.mark.parametrize("path", sorted(READ_ROUTES))
def test_viewer_reads_the_monitor_api(client, tokens, path):
    r = client.get(MONITOR + path, headers=bearer(tokens["viewer"]))
    assert r.status_code == 200, r.text
    assert READ_ROUTES[path] <= set(r.json())


def test_viewer_reads_the_page(client, tokens):
    r = client.get(MONITOR + "/", headers=bearer(tokens["viewer"]) | {"Accept": "text/html"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()


def test_viewer_cannot_reprocess(client, tokens, quarantined):
    bucket, key = quarantined
    before = run_ids(client, tokens["admin"])
    r = client.post(
        MONITOR + "/api/reprocess", json={"keys": [key], "bucket": bucket}, headers=bearer(tokens["viewer"])
    )
    assert r.status_code == 403, r.text
    # Nor through Airflow's own API.
    r = client.post(RUNS, json={"logical_date": None, "conf": {}}, headers=bearer(tokens["viewer"]))
    assert r.status_code == 403, r.text
    assert run_ids(client, tokens["admin"]) == before


@pytest.mark.parametrize("path", VIEWER_ROUTES)
def test_viewer_reads_every_route(client, tokens, path):
    r = client.get(MONITOR + path, headers=bearer(tokens["viewer"]) | {"Accept": "text/html"})
    assert r.status_code == 200, r.text[:2000]


# --------------------------------------------------------------------------- least privilege


def test_api_server_runs_as_imr_reader(client, stack, tokens, owner, quarantined):
    """The api-server reads the warehouse as imr_ui and nothing else: with imr_reader taken from
    imr_ui, a viewer's read fails; given back, it answers again. imr_ui itself cannot write."""
    r = client.get(MONITOR + "/api/failures", headers=bearer(tokens["viewer"]))
    assert r.status_code == 200, r.text
    with owner.cursor() as cur:
        cur.execute("REVOKE imr_reader FROM imr_ui")
    try:
        try:
            status = client.get(MONITOR + "/api/failures", headers=bearer(tokens["viewer"])).status_code
        except httpx.TransportError:
            status = None  # the api-server dropped the connection on its error
        assert status is None or status >= 500, f"the api-server read without imr_reader: {status}"
    finally:
        with owner.cursor() as cur:
            cur.execute("GRANT imr_reader TO imr_ui")
    try:
        r = client.get(MONITOR + "/api/failures", headers=bearer(tokens["viewer"]))
    except httpx.TransportError:
        # The kept-alive connection the api-server dropped on its error: a new one answers.
        r = client.get(MONITOR + "/api/failures", headers=bearer(tokens["viewer"]))
    assert r.status_code == 200, r.text

    bucket, key = quarantined
    conn = psycopg2.connect(stack["IMR_UI_DSN"])
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT current_user, pg_has_role('imr_reader', 'MEMBER'),"
                " pg_has_role('imr_loader', 'MEMBER')"
            )
            assert cur.fetchone() == ("imr_ui", True, False)
            cur.execute("SELECT status FROM imr.s3_objects WHERE bucket = %s AND key = %s", (bucket, key))
            assert cur.fetchone() == ("quarantined",)
        for statement in (
            "INSERT INTO imr.letters (case_number) VALUES ('CM16-9999998')",
            "UPDATE imr.s3_objects SET status = 'pending'",
            "DELETE FROM imr.parse_failures",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), conn.cursor() as cur:
                cur.execute(statement)
            conn.rollback()
    finally:
        conn.close()


def test_stack_env_is_private(stack):
    for name in ("stack.env", "secrets.json"):
        mode = (Path(stack["IMR_STACK_DIR"]) / name).stat().st_mode & 0o777
        assert mode == 0o600, f"{name} is {mode:o}"


# --------------------------------------------------------------------------- admin


def test_admin_reprocess_triggers_a_run(client, stack, tokens, quarantined):
    bucket, key = quarantined
    before = run_ids(client, tokens["admin"])
    r = client.post(
        MONITOR + "/api/reprocess", json={"keys": [key], "bucket": bucket}, headers=bearer(tokens["admin"])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["skipped"] == []
    [queued] = body["queued"]
    assert (queued["bucket"], queued["keys"], queued["dag_id"]) == (bucket, [key], DAG_REPROCESS)
    run_id = queued["dag_run_id"]
    try:
        assert run_id and run_id not in before
        assert run_id in run_ids(client, tokens["admin"]), "the triggered run is not listed"
        run = client.get(f"{RUNS}/{run_id}", headers=bearer(tokens["admin"]))
        assert run.status_code == 200, run.text
        run = run.json()
        assert run["conf"] == {"bucket": bucket, "keys": [key]}
        assert run["run_type"] == "manual"
        # Triggered with the caller's token: Airflow records the admin, not a service identity.
        assert run.get("triggering_user_name") == stack["IMR_ADMIN_USER"]
        # The viewer may see the run (read access) but not have created it.
        assert client.get(f"{RUNS}/{run_id}", headers=bearer(tokens["viewer"])).status_code == 200
    finally:
        if run_id:
            settle(client, tokens["admin"], run_id)


# --------------------------------------------------------------------------- hostile passwords


def _token_status(client, username: str, password: str) -> int:
    for _ in range(3):  # FAB's login rate limit: wait out its window
        r = client.post(TOKEN_PATH, json={"username": username, "password": password})
        if r.status_code != 429:
            return r.status_code
        time.sleep(float(r.headers.get("retry-after") or LOGIN_WINDOW_S))
    return r.status_code


def test_setup_takes_passwords_that_look_like_options(client, stack, stack_ctl):
    """Finding 9: the stack's set-up (stack.py's airflow_init: `airflow db migrate`, then
    docker/airflow-init.sh and airflow-users.sh) with an admin and a viewer password that begin with
    `-` and hold every shell-special character; the api-server then issues tokens for them. The
    stack's own passwords are set back afterwards."""
    pw = stack_ctl._secrets()
    hostile = pw | {"admin": "-" + HOSTILE + " admin", "viewer": "--viewer=" + HOSTILE}
    users = {"admin": stack["IMR_ADMIN_USER"], "viewer": stack["IMR_VIEWER_USER"]}
    try:
        stack_ctl.airflow_init(hostile, stack_ctl.airflow_env(hostile, 1) | stack_ctl._mark())
        for role, username in users.items():
            assert _token_status(client, username, hostile[role]) == 201, role
            assert _token_status(client, username, pw[role]) == 401, role
        assert not Path("/tmp/imr-stack-pwned").exists(), "a password was run by a shell"
    finally:
        stack_ctl.airflow_init(pw, stack_ctl.airflow_env(pw, 1) | stack_ctl._mark())
    for role, username in users.items():
        assert _token_status(client, username, pw[role]) == 201, role
