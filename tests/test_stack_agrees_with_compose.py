"""One source of truth: the native stack (scripts/stack.py) and docker-compose.yaml run the same
topology with the same names and settings. Static: nothing is started here (tests/stack/ runs it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers import load_script
from imr import config

REPO = Path(__file__).resolve().parents[1]
SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    # Lanes default to the pool's size, which every component must know (not only airflow-init).
    "IMR_WAREHOUSE_POOL_SLOTS",
)


@pytest.fixture(scope="module")
def stack():
    return load_script("stack", "imr_stack")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def stack_env(stack) -> dict[str, str]:
    fake = {
        k: "x"
        for k in (
            "metadata",
            "warehouse_owner",
            "imr_app",
            "imr_ui",
            "admin",
            "viewer",
            "s3",
            "jwt_secret",
            "api_secret_key",
        )
    }
    return stack.airflow_env(fake | {"fernet_key": "k"}, concurrency=1)


@pytest.fixture(scope="module")
def api_server_env(stack, stack_env) -> dict[str, str]:
    return stack.api_server_env({"imr_ui": "x"}, stack_env)


def _compose_env(compose: dict) -> dict[str, str]:
    """x-airflow-common's environment with ${VAR:-default} read as its default (.env unset)."""
    env = compose["x-airflow-common"]["environment"].items()
    return {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in env}


def test_same_connections_and_variables(stack_env, compose) -> None:
    def names(env: dict[str, str]) -> set[str]:
        return {k for k in env if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}

    assert names(stack_env) == names(_compose_env(compose))
    assert f"AIRFLOW_CONN_{config.CONN_WAREHOUSE.upper()}" in stack_env
    assert f"AIRFLOW_CONN_{config.CONN_AWS.upper()}" in stack_env
    # Both log the DAGs in to the warehouse as the least-privilege login.
    assert stack_env["AIRFLOW_CONN_IMR_WAREHOUSE"].startswith("postgresql://imr_app:")
    assert _compose_env(compose)["AIRFLOW_CONN_IMR_WAREHOUSE"].startswith("postgresql://imr_app:")


def test_same_airflow_settings(stack_env, compose) -> None:
    env = _compose_env(compose)
    for key in SETTINGS:
        assert stack_env[key].lower() == env[key].lower(), key
    assert stack_env["AIRFLOW__CORE__AUTH_MANAGER"] == config.AUTH_MANAGER_FAB
    assert (
        int(stack_env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"])
        == config.TASK_HEARTBEAT_TIMEOUT_S
    )


def test_same_s3_retry_policy(stack_env, compose) -> None:
    import json

    for env in (stack_env, _compose_env(compose)):
        extra = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]
        assert extra["config_kwargs"] == config.S3_RETRY_EXTRA["config_kwargs"]


def test_same_init_scripts_and_pool(stack) -> None:
    source = (REPO / "scripts" / "stack.py").read_text()
    assert '"docker" / "airflow-init.sh"' in source
    assert '"docker" / "warehouse-initdb" / "10-imr-roles.sh"' in source
    init = (REPO / "docker" / "airflow-init.sh").read_text()
    assert f"airflow pools set {config.POOL_WAREHOUSE}" in init
    assert "airflow-users.sh" in init
    assert "imr db upgrade" in init


def test_api_server_reads_as_imr_ui(stack_env, api_server_env, compose) -> None:
    """Finding 2: both run the api-server with the read-only warehouse login, the rest with imr_app."""
    conn = "AIRFLOW_CONN_IMR_WAREHOUSE"
    assert api_server_env[conn].startswith("postgresql://imr_ui:")
    assert stack_env[conn].startswith("postgresql://imr_app:")
    api = compose["services"]["airflow-apiserver"]["environment"]
    assert api[conn].startswith("postgresql://imr_ui:")
    assert {k: v for k, v in api_server_env.items() if k != conn} == {
        k: v for k, v in stack_env.items() if k != conn
    }
    source = (REPO / "scripts" / "stack.py").read_text()
    assert '_spawn("api-server", ["airflow", "api-server"], api_server_env(pw, env))' in source


def test_stack_passwords_may_hold_any_character(stack) -> None:
    """Finding 9: a password that begins with `-` or holds URI/shell characters survives the URIs
    and DSNs the stack builds (percent-encoded or quoted), decoded as it was."""
    from urllib.parse import unquote, urlsplit

    import psycopg2.extensions

    hostile = "-p@ss:/w?o#r%d 'q' \\ $(x) `y`"
    pw = {k: hostile for k in (*stack.PASSWORDS, "jwt_secret", "api_secret_key")} | {"fernet_key": "k"}
    for uri in (
        stack.api_server_env(pw, stack.airflow_env(pw, 1))["AIRFLOW_CONN_IMR_WAREHOUSE"],
        stack.airflow_env(pw, 1)["AIRFLOW_CONN_IMR_WAREHOUSE"],
        stack.init_env(pw, {})["IMR_WAREHOUSE_DSN"],
        stack.init_env(pw, {})["IMR_UI_CONN"],
    ):
        parts = urlsplit(uri)
        assert unquote(parts.password) == hostile and parts.hostname == "127.0.0.1", uri
    for key in ("IMR_WAREHOUSE_DSN", "IMR_APP_DSN", "IMR_UI_DSN", "IMR_METADATA_DSN"):
        assert psycopg2.extensions.parse_dsn(stack.client_env(pw)[key])["password"] == hostile, key


def test_redis_keeps_queued_messages(stack, compose) -> None:
    assert "--appendonly yes" in " ".join(compose["services"]["redis"]["command"])
    assert '"--appendonly", "yes"' in (REPO / "scripts" / "stack.py").read_text()


def test_two_workers_in_sessions_of_their_own(stack) -> None:
    assert stack.WORKERS == ("worker-1", "worker-2")
    assert "start_new_session=True" in (REPO / "scripts" / "stack.py").read_text()


def test_same_alert_mail_settings(stack_env, compose) -> None:
    """Both send alert mail through smtp_default to a local sink (compose: mailpit; the stack:
    aiosmtpd), from the same sender, to recipients from the same Variable."""
    import json

    env = _compose_env(compose)
    key = f"AIRFLOW_CONN_{config.CONN_SMTP.upper()}"
    conns = [json.loads(e[key]) for e in (stack_env, env)]
    for conn in conns:
        assert conn["conn_type"] == "smtp"
        assert conn["extra"]["from_email"] == "imr-alerts@localhost"
        assert conn["extra"]["disable_ssl"] is True
    assert conns[1]["host"] == "mailpit" and "mailpit" in compose["services"]
    assert conns[0]["host"] == "127.0.0.1"
    var = f"AIRFLOW_VAR_{config.VAR_ALERT_EMAILS.upper()}"
    assert stack_env[var] and stack_env[var] == env[var]


def test_stack_secrets_files_are_private(stack, tmp_path, monkeypatch) -> None:
    """Finding 6: secrets.json and stack.env (every password) are 0600, even when they existed
    before with a wider mode; an old secrets.json gains the secrets added since (imr_ui)."""
    monkeypatch.setenv("IMR_RUN_DIR", str(tmp_path))
    old = tmp_path / "stack" / "secrets.json"
    old.parent.mkdir()
    old.write_text('{"admin": "kept"}')
    old.chmod(0o644)
    values = stack._secrets()
    assert values["admin"] == "kept" and len(values["imr_ui"]) >= 16
    assert old.stat().st_mode & 0o777 == 0o600
    env_file = tmp_path / "stack" / "stack.env"
    env_file.write_text("")
    env_file.chmod(0o644)
    stack.write_private(env_file, "export X=1\n")
    assert env_file.stat().st_mode & 0o777 == 0o600 and env_file.read_text() == "export X=1\n"
    assert 'write_private(stack_dir() / "stack.env"' in (REPO / "scripts" / "stack.py").read_text()
