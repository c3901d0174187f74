"""Fixtures (a pytest plugin, registered in tests/conftest.py): Airflow's own api-server app with the
monitor plugin mounted from plugins/, the SimpleAuthManager with users admin and viewer, real JWTs,
and a TestClient whose `imr_warehouse` connection is the test's fresh database. The monitor's and
the Insights page's API tests use them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
PREFIX = "/imr-monitor"
BASE_URL = "http://localhost:8080"


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
    # plugins/ itself is importable through pytest's `pythonpath` (pyproject.toml).
    settings.PLUGINS_FOLDER = str(PLUGINS)
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


def auth(tokens: dict[str, str], role: str = "admin") -> dict[str, str]:
    """The Authorization header of `role`'s token.

    :param tokens: the `tokens` fixture
    :param role: admin, viewer or expired
    :return: headers for an httpx/TestClient request
    """
    return {"Authorization": f"Bearer {tokens[role]}"}


@pytest.fixture
def metadata_orm(services):
    """Call it to point this process's Airflow ORM at the engines' metadata database. An earlier test
    in the session may have imported Airflow before the engines' environment was set, leaving the ORM
    on the default SQLite file, where the rows a run wrote are not."""

    def use() -> None:
        from airflow import settings

        uri = services["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        if settings.engine is not None and str(settings.engine.url) == uri:
            return
        settings.dispose_orm(do_log=False)
        settings.SQL_ALCHEMY_CONN = uri
        settings.configure_orm()

    return use
