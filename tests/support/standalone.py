"""Fixtures and start-up for the browser tests (a pytest plugin, registered in tests/conftest.py):
an isolated `airflow standalone` (scripts/standalone.sh with IMR_STANDALONE_ENV: its own AIRFLOW_HOME,
metadata database, warehouse database and ports) on the embedded services, and a logged-in headless
Chromium page on it (Playwright).

Each browser test module defines its `airflow` fixture with :func:`standalone_airflow`; `page` and
`shots` log in to that module's `airflow`. The monitor's and the Insights page's tests do not share
one instance: each page needs a warehouse of its own (the nightly DAG's failures; `imr insights`'s
letters with exact totals), and a standalone Airflow reads one `imr_warehouse` connection.

Needs /usr/bin/chromium (apt-get install -y chromium) and the `playwright` package; never
`playwright install`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from imr_devtools.scratch import scratch_database

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM = Path(os.environ.get("IMR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# On a loaded two-core machine the components took more than 120 s to start.
STARTUP_TIMEOUT = 300


def require_browser() -> None:
    """Skip the test unless Chromium and the playwright package are there."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (never `playwright install`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the whole process group (standalone and its components), then SIGKILL what is left,
    including any descendant that left the group."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        for p in family:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
        _gone, alive = psutil.wait_procs(family, timeout=wait)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        family = alive
        if not alive:
            break


def _wait_until_up(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"airflow standalone exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the api-server did not answer within {STARTUP_TIMEOUT}s; see {log_path}")
        time.sleep(1)


def _standalone_env(home: Path, port: int, password: str, extra_env: dict[str, str]) -> Path:
    """The instance's IMR_STANDALONE_ENV file."""
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # Unpaused by a test that needs a DAG to run, once the api-server answers: a task started
        # before its execution API is up fails at once (no retries), which a loaded machine made happen.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # Ports of this instance only, so that it runs beside a developer's `make standalone`.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        **extra_env,
    }
    env_file = home / "standalone.env"
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    return env_file


@contextlib.contextmanager
def standalone_airflow(
    services: dict[str, str],
    admin_dsn: str,
    home: Path,
    log_name: str,
    *,
    extra_env: dict[str, str] | None = None,
    prepare: Callable[[str], None] | None = None,
) -> Iterator[dict]:
    """A running isolated `airflow standalone` with a scratch metadata and warehouse database.

    :param services: the `services` fixture (the embedded engines' environment)
    :param admin_dsn: the `admin_dsn` fixture (creates and drops the scratch databases)
    :param home: an empty directory for AIRFLOW_HOME
    :param log_name: the standalone's log file under artifacts/
    :param extra_env: more variables of the instance (Airflow variables, scheduler settings)
    :param prepare: called with the warehouse's DSN before Airflow starts (migrate it, fill it)
    :return: (yields) {"url", "password", "token", "log", "warehouse_dsn"}
    """
    require_browser()
    tag = uuid.uuid4().hex[:10]
    port, password = free_port(), secrets.token_urlsafe(12)
    # The embedded server, from the metadata connection of the services' environment.
    server = services["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[0]
    with (
        scratch_database(admin_dsn, name=f"airflow_test_{tag}"),
        scratch_database(admin_dsn, name=f"imr_test_{tag}") as wh_dsn,
    ):
        env_file = _standalone_env(
            home,
            port,
            password,
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{server}/airflow_test_{tag}",
                "AIRFLOW_CONN_IMR_WAREHOUSE": (
                    f"{server.replace('postgresql+psycopg2://', 'postgresql://')}/imr_test_{tag}"
                ),
                **(extra_env or {}),
            },
        )
        if prepare is not None:
            prepare(wh_dsn)
        ARTIFACTS.mkdir(exist_ok=True)
        log_path = ARTIFACTS / log_name
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                ["bash", str(REPO / "scripts" / "standalone.sh")],
                cwd=REPO,
                env=os.environ | {"IMR_STANDALONE_ENV": str(env_file)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_until_up(proc, url, log_path)
                r = httpx.post(
                    f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30
                )
                assert r.status_code in (200, 201), r.text
                yield {
                    "url": url,
                    "password": password,
                    "token": r.json()["access_token"],
                    "log": log_path,
                    "warehouse_dsn": wh_dsn,
                }
            finally:
                stop(proc)


def api(airflow: dict, method: str, path: str, **kw) -> httpx.Response:
    """A request to the instance's REST API with its admin token.

    :param airflow: what :func:`standalone_airflow` yielded
    :param method: the HTTP method
    :param path: the path after the instance's URL
    :param kw: more arguments of httpx.request (params, json)
    :return: the response
    """
    headers = {"Authorization": f"Bearer {airflow['token']}"}
    return httpx.request(method, airflow["url"] + path, headers=headers, timeout=30, **kw)


def assert_refuses_anonymous(airflow: dict, api_path: str, page_path: str) -> None:
    """Without a token or session the plugin's API answers 401 and its page sends to the login.

    :param airflow: what :func:`standalone_airflow` yielded
    :param api_path: a JSON route of the plugin
    :param page_path: a page of the plugin
    """
    r = httpx.get(f"{airflow['url']}{api_path}", timeout=10)
    assert r.status_code == 401
    r = httpx.get(f"{airflow['url']}{page_path}", headers={"Accept": "text/html"}, timeout=10)
    assert r.status_code == 303 and "/auth/login" in r.headers["location"]


@pytest.fixture(scope="module")
def corpus_dir_optional() -> Path | None:
    """The real letters if they are there (the browser tests fall back to generated ones)."""
    path = Path(os.environ.get("IMR_CORPUS_DIR") or REPO.parent / "shared" / "corpus" / "dwc-2016")
    return path if path.is_dir() else None


@pytest.fixture
def page(airflow):
    """A headless Chromium page logged in to the module's `airflow` as admin."""
    from playwright.sync_api import expect, sync_playwright

    # The page's first render in a fresh api-server takes seconds on a busy machine (expect's own
    # default is 5 s).
    expect.set_options(timeout=20_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{airflow['url']}/auth/login")
            page.locator("input[name=username]").fill("admin")
            page.locator("input[name=password]").fill(airflow["password"])
            page.locator("button[type=submit]").click()
            page.wait_for_url(lambda u: "/auth/login" not in u)
            yield page
        finally:
            browser.close()


@pytest.fixture
def shots(page, request):
    """shots(name) saves the page as artifacts/<name>.png; the page as the test left it (passed or
    not) goes to artifacts/<test>-end.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    yield shot
    shot(f"{request.node.name}-end")
