"""One source of truth: the native stack (scripts/stack.py) and docker-compose.yaml run the same
topology with the same names and settings. Static: nothing is started here (tests/stack/ runs it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from imr import config
from imr_devtools import stack as stack_module

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
    return stack_module


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
            "admin",
            "viewer",
            "s3",
            "jwt_secret",
            "api_secret_key",
        )
    }
    return stack.airflow_env(fake | {"fernet_key": "k"}, concurrency=1)


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
    source = Path(stack_module.__file__).read_text()
    assert '"docker" / "airflow-init.sh"' in source
    assert '"docker" / "warehouse-initdb" / "10-imr-roles.sh"' in source
    init = (REPO / "docker" / "airflow-init.sh").read_text()
    assert f"airflow pools set {config.POOL_WAREHOUSE}" in init
    assert "airflow-users.sh" in init
    assert "imr db upgrade" in init


def test_redis_keeps_queued_messages(stack, compose) -> None:
    assert "--appendonly" in compose["services"]["redis"]["command"]
    assert '"--appendonly", "yes"' in Path(stack_module.__file__).read_text()


def test_two_workers_in_sessions_of_their_own(stack) -> None:
    assert stack.WORKERS == ("worker-1", "worker-2")
    assert "start_new_session=True" in Path(stack_module.__file__).read_text()
