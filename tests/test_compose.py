"""The Docker Compose stack agrees with the code: fast, static checks (no Docker daemon needed).

docker-compose.yaml, Dockerfile, .env.example and docker/ are read as text/YAML and compared with
the names the DAGs use (include/imr/config.py). If a `docker-compose` binary (or the `docker
compose` plugin) is installed, `config -q` validates the file as Compose itself parses it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
INIT_SCRIPT = REPO / "docker" / "airflow-init.sh"
USERS_SCRIPT = REPO / "docker" / "airflow-users.sh"
FAB_USERS = REPO / "docker" / "fab_users.py"
CHECK_SECRETS = REPO / "docker" / "check_secrets.py"
STANDALONE = REPO / "scripts" / "standalone.sh"
WAREHOUSE_INITDB = REPO / "docker" / "warehouse-initdb"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
# Mounted for development at the paths Airflow (dags, plugins) and PYTHONPATH (include) read.
MOUNTS = {
    "./dags": "/opt/airflow/dags",
    "./plugins": "/opt/airflow/plugins",
    "./include": "/opt/airflow/include",
}

CONFIG = REPO / "include" / "imr" / "config.py"
# The names of include/imr/config.py that the deployment must agree with (their values come from there).
CONFIG_NAMES = (
    "CONN_AWS",
    "CONN_WAREHOUSE",
    "VAR_BUCKET",
    "VAR_PREFIX",
    "VAR_EVENTS_QUEUE_URL",
    "CONN_SMTP",
    "CONN_SLACK",
    "VAR_ALERT_EMAILS",
    "POOL_WAREHOUSE",
    "AUTH_MANAGER_FAB",
    "AUTH_MANAGER_SIMPLE",
    "ROLE_ADMIN",
    "ROLE_VIEWER",
    "USERS_SCRIPT",
    "ENV_ADMIN_USERNAME",
    "ENV_ADMIN_PASSWORD",
    "ENV_VIEWER_USERNAME",
    "ENV_VIEWER_PASSWORD",
)

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}; `$$` is a literal dollar.
_VAR_RE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


# --------------------------------------------------------------------------- helpers


def _names() -> dict[str, str]:
    """The names as the DAGs get them: from the module `imr.config`, which must be this repository's
    include/imr/config.py (not another installed copy), with every name set."""
    import imr.config

    assert Path(imr.config.__file__).resolve() == CONFIG.resolve(), (
        f"imr.config is {imr.config.__file__}, not {CONFIG}"
    )
    missing = [k for k in CONFIG_NAMES if not isinstance(getattr(imr.config, k, None), str)]
    assert not missing, f"include/imr/config.py does not define {missing}"
    return {k: getattr(imr.config, k) for k in CONFIG_NAMES}


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    return _names()


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    # safe_load resolves the <<: merge keys of the x-airflow-common anchors, as Compose does.
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    env: dict[str, str] = {}
    for n, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example:{n}: not KEY=VALUE: {line!r}"
        assert key not in env, f".env.example:{n}: {key} is set twice"
        env[key] = value
    return env


def _strings(node) -> list[str]:
    """Every string value (and key) in the parsed YAML: what Compose interpolates (not comments)."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _vars_used(compose: dict) -> list[tuple[str, str | None, str | None]]:
    """(name, operator, default) for every interpolated ${...} in the compose file."""
    return [
        (m.group(1), m.group(2), m.group(3))
        for text in _strings(compose)
        for m in _VAR_RE.finditer(text)
        if m.group(1)
    ]


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string, for checking resolved values."""

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name is None:
            return "$"
        val = env.get(name)
        if op == ":-":
            return val if val else arg
        if op == "-":
            return arg if val is None else val
        if op in (":?", "?") and not val and (op == ":?" or val is None):
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return val or ""

    return _VAR_RE.sub(sub, value)


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _command_text(service: dict) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def _volume_map(service: dict) -> dict[str, str]:
    """container path -> host source, for the short volume syntax."""
    out = {}
    for v in service.get("volumes") or []:
        src, _, rest = str(v).partition(":")
        out[rest.split(":")[0]] = src
    return out


def _conn_env(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _var_env(var: str) -> str:
    return f"AIRFLOW_VAR_{var.upper()}"


# --------------------------------------------------------------------------- services


def test_services_present(services):
    expected = set(AIRFLOW_SERVICES) | {"postgres", "redis", "warehouse", "minio", "minio-init"}
    missing = expected - set(services)
    assert not missing, f"docker-compose.yaml lacks services {sorted(missing)}"


def test_airflow_services_use_the_project_image(services):
    for name in AIRFLOW_SERVICES:
        build = services[name].get("build")
        context = build.get("context") if isinstance(build, dict) else build
        assert context == ".", f"{name} must be built from ./Dockerfile"


def test_component_commands(services):
    assert _command_text(services["airflow-apiserver"]) == "api-server"
    assert _command_text(services["airflow-scheduler"]) == "scheduler"
    assert _command_text(services["airflow-dag-processor"]) == "dag-processor"
    assert _command_text(services["airflow-triggerer"]) == "triggerer"
    assert _command_text(services["airflow-worker"]) == "celery worker"
    assert "8080" in " ".join(str(p) for p in services["airflow-apiserver"].get("ports", []))


def test_celery_executor_and_broker(services, env_example):
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        broker = urlsplit(_interpolate(env["AIRFLOW__CELERY__BROKER_URL"], env_example))
        assert broker.scheme == "redis" and broker.hostname in services, name
        assert "AIRFLOW__CELERY__RESULT_BACKEND" in env, name
        assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "").startswith(
            "http://airflow-apiserver:8080/"
        ), name


def test_worker_is_scalable(services):
    worker = services["airflow-worker"]
    assert "container_name" not in worker, "--scale airflow-worker=N needs distinct container names"
    assert not worker.get("ports"), "--scale airflow-worker=N cannot share a host port"
    assert "AIRFLOW__CELERY__WORKER_CONCURRENCY" in _env(worker)


def test_components_share_secrets(services):
    """JWT secret (task tokens), api secret key and Fernet key must be the same in every component."""
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        values = {_env(services[name]).get(key) for name in AIRFLOW_SERVICES}
        assert len(values) == 1 and None not in values, f"{key} differs between Airflow services: {values}"


def test_fab_auth_manager_everywhere(services, names):
    """Every Airflow component runs the FAB auth manager of include/imr/config.py; nothing of the
    SimpleAuthManager set-up (users list, password file) is left."""
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env.get("AIRFLOW__CORE__AUTH_MANAGER") == names["AUTH_MANAGER_FAB"], name
        leftovers = sorted(k for k in env if k.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER"))
        assert not leftovers, f"{name}: SimpleAuthManager settings under FAB: {leftovers}"
    # The entrypoint's own `users create` would create the admin once and never rotate its password.
    assert _env(services["airflow-init"]).get("_AIRFLOW_WWW_USER_CREATE", "false").lower() != "true"


def test_init_creates_users_with_the_shared_script(services, names):
    """airflow-init runs docker/airflow-users.sh (the script the native stack runs too), from the
    mounted ./docker, with every variable the script requires."""
    assert REPO / names["USERS_SCRIPT"] == USERS_SCRIPT
    init = services["airflow-init"]
    command = _command_text(init)
    script_dir = {host: container for container, host in _volume_map(init).items()}.get("./docker")
    assert script_dir, "airflow-init does not mount ./docker"
    assert f"{script_dir}/{INIT_SCRIPT.name}" in command
    init_text = INIT_SCRIPT.read_text()
    calls = [
        ln.strip()
        for ln in init_text.splitlines()
        if "airflow-users.sh" in ln and not ln.lstrip().startswith("#")
    ]
    assert calls == ['bash "$(dirname "${BASH_SOURCE[0]}")/airflow-users.sh"'], (
        f"airflow-init.sh must run the airflow-users.sh next to it, once: {calls}"
    )
    assert "SIMPLE_AUTH_MANAGER" not in init_text
    # What the script requires (`: "${VAR:?...}"`) is what airflow-init passes, and is what
    # include/imr/config.py names.
    script = USERS_SCRIPT.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", script))
    expected = {names[k] for k in ("ENV_ADMIN_USERNAME", "ENV_ADMIN_PASSWORD")} | {
        names[k] for k in ("ENV_VIEWER_USERNAME", "ENV_VIEWER_PASSWORD")
    }
    assert required == expected, f"airflow-users.sh requires {sorted(required)}"
    env = _env(init)
    missing = sorted(expected - set(env))
    assert not missing, f"airflow-init does not pass {missing}"
    assert f'FAB_AUTH_MANAGER="{names["AUTH_MANAGER_FAB"]}"' in script


def test_env_example_users_are_distinct(services, names, env_example):
    env = {k: _interpolate(v, env_example) for k, v in _env(services["airflow-init"]).items()}
    assert env[names["ENV_ADMIN_USERNAME"]] != env[names["ENV_VIEWER_USERNAME"]]
    init = _env(services["airflow-init"])
    empty = {
        k: _interpolate(init[k], {}) for k in (names["ENV_ADMIN_USERNAME"], names["ENV_VIEWER_USERNAME"])
    }
    assert empty[names["ENV_ADMIN_USERNAME"]] != empty[names["ENV_VIEWER_USERNAME"]]


def test_standalone_stays_on_simple_auth_manager(names):
    """`make standalone` sets SimpleAuthManager itself: installing the FAB provider, or an
    AIRFLOW__CORE__AUTH_MANAGER left in the shell by the stack's environment, does not change it."""
    lines = [ln.strip() for ln in STANDALONE.read_text().splitlines()]
    sets = [ln for ln in lines if re.match(r"(export\s+)?AIRFLOW__CORE__AUTH_MANAGER=", ln)]
    assert sets == [f"export AIRFLOW__CORE__AUTH_MANAGER={names['AUTH_MANAGER_SIMPLE']}"], sets
    assert lines.index(sets[0]) < lines.index("exec airflow standalone")


# --------------------------------------------------------------------------- airflow-users.sh, run


FAKE_AIRFLOW = r"""#!/usr/bin/env python3
# A stand-in for the `airflow` CLI: records its arguments; `users export FILE` writes $FAKE_USERS.
import json, os, shutil, sys

with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\n")
if sys.argv[1:3] == ["users", "export"]:
    shutil.copy(os.environ["FAKE_USERS"], sys.argv[3])
"""


def _run_users_script(tmp_path, env_example, services, users, **overrides):
    """docker/airflow-users.sh with airflow-init's environment (from .env.example) and a fake
    `airflow` that records every call; returns (completed process, calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "airflow"
    fake.write_text(FAKE_AIRFLOW)
    fake.chmod(0o755)
    (bin_dir / "python").unlink(missing_ok=True)
    (bin_dir / "python").symlink_to(sys.executable)
    (tmp_path / "users.json").write_text(json.dumps(users))
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    init_env = {k: _interpolate(v, env_example) for k, v in _env(services["airflow-init"]).items()}
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_LOG": str(log),
        "FAKE_USERS": str(tmp_path / "users.json"),
        **init_env,
        **overrides,
    }
    proc = subprocess.run(["bash", str(USERS_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    calls = [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def _opts(call: list[str]) -> dict[str, str]:
    return {call[i]: call[i + 1] for i in range(2, len(call) - 1) if call[i].startswith("--")}


def test_users_script_passes_no_password_as_an_argument(tmp_path, env_example, services, names):
    """Finding 6/9: the only `airflow` call is `fab-db migrate`; the users are made by fab_users.py
    from the environment (tests/test_airflow_users.py runs it on a real metadata database with
    passwords that begin with `-`)."""
    script = USERS_SCRIPT.read_text()
    code = [ln for ln in script.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert not [ln for ln in code if "--password" in ln or ("PASSWORD" in ln and "airflow " in ln)], code
    assert 'python "$(dirname "${BASH_SOURCE[0]}")/fab_users.py"' in code
    fab = FAB_USERS.read_text()
    assert 'env["_AIRFLOW_WWW_USER_PASSWORD"]' in fab and 'env["IMR_VIEWER_PASSWORD"]' in fab
    assert "subprocess" not in fab and "print(" in fab and "password}" not in fab


def test_users_script_refuses_other_auth_managers(tmp_path, env_example, services, names):
    proc, calls = _run_users_script(
        tmp_path, env_example, services, users=[], AIRFLOW__CORE__AUTH_MANAGER=names["AUTH_MANAGER_SIMPLE"]
    )
    assert proc.returncode != 0 and "FAB auth manager" in proc.stderr
    assert calls == []
    proc, calls = _run_users_script(tmp_path, env_example, services, users=[], IMR_VIEWER_PASSWORD="")
    assert proc.returncode != 0 and "IMR_VIEWER_PASSWORD" in proc.stderr
    assert calls == []


# --------------------------------------------------------------------------- secrets (finding 1)


def _secret_vars(compose: dict) -> set[str]:
    """Variables docker-compose.yaml requires (`${VAR:?...}`): the secrets."""
    return {name for name, op, _ in _vars_used(compose) if op == ":?"}


def _check_secrets(env: dict[str, str]) -> subprocess.CompletedProcess:
    """docker/check_secrets.py (airflow-init's first step) with exactly `env`."""
    return subprocess.run(
        [sys.executable, str(CHECK_SECRETS)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _generated_secrets(compose: dict) -> dict[str, str]:
    """What an operator following .env.example generates: token_urlsafe(32), a Fernet key."""
    import base64
    import secrets

    out = {name: secrets.token_urlsafe(32) for name in _secret_vars(compose)}
    out["AIRFLOW_FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return out


def test_every_secret_is_mandatory(compose):
    """Finding 1: no secret has a fallback anywhere; each is `${VAR:?...}` and its message names it."""
    secrets = _secret_vars(compose)
    expected = {
        "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY", "_AIRFLOW_WWW_USER_PASSWORD",
        "IMR_VIEWER_PASSWORD", "POSTGRES_PASSWORD", "WAREHOUSE_PASSWORD", "IMR_APP_PASSWORD",
        "IMR_UI_PASSWORD", "MINIO_ROOT_PASSWORD", "MINIO_READER_PASSWORD", "REDIS_PASSWORD",
    }  # fmt: skip
    assert secrets == expected
    for name, op, arg in _vars_used(compose):
        if name in secrets:
            assert op == ":?" and arg.startswith(f"{name} is not set"), (name, op, arg)
        if any(word in name for word in ("PASSWORD", "SECRET", "FERNET")):
            assert name in secrets, f"{name} looks like a secret but has a default"


def test_init_checks_every_secret_first(compose, services):
    """airflow-init gets every secret under its .env name and refuses placeholders before anything."""
    init = services["airflow-init"]
    env = _env(init)
    missing = sorted(name for name in _secret_vars(compose) if name not in env)
    assert not missing, f"airflow-init does not get {missing} for docker/check_secrets.py"
    command = _command_text(init)
    assert "python /opt/airflow/docker/check_secrets.py" in command
    assert command.index("check_secrets.py") < command.index("/entrypoint airflow version")
    source = CHECK_SECRETS.read_text()
    for name in _secret_vars(compose):
        assert f'"{name}"' in source, f"docker/check_secrets.py does not check {name}"


def test_check_refuses_the_example_placeholders(compose, env_example):
    """.env.example copied unchanged: airflow-init refuses, naming every placeholder."""
    proc = _check_secrets(env_example)
    assert proc.returncode == 1
    for name in sorted(_secret_vars(compose)):
        assert f"{name} is still the placeholder {env_example[name]!r}" in proc.stderr, name
    assert "secrets.token_urlsafe(32)" in proc.stderr and "refusing to start" in proc.stderr


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("AIRFLOW_JWT_SECRET", "", "is empty or not set"),
        ("AIRFLOW_JWT_SECRET", "Change-Me-but-long-enough-for-the-minimum-length", "placeholder"),
        ("AIRFLOW_JWT_SECRET", "x" * 31, "shorter than 32 characters"),
        ("IMR_VIEWER_PASSWORD", "x" * 15, "shorter than 16 characters"),
        ("AIRFLOW_FERNET_KEY", "not-a-fernet-key-but-long-enough-xxxxxxxxxx", "not a Fernet key"),
        ("REDIS_PASSWORD", None, "is empty or not set"),
    ],
)
def test_check_refuses_weak_values(compose, name, value, reason):
    env = _generated_secrets(compose)
    if value is None:
        del env[name]
    else:
        env[name] = value
    proc = _check_secrets(env)
    assert proc.returncode == 1
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("airflow-init: ") and name in ln]
    assert reason in line and "generate one with python3 -c" in line
    assert value is None or not value or value not in proc.stdout


def test_check_accepts_generated_values(compose):
    proc = _check_secrets(_generated_secrets(compose))
    assert proc.returncode == 0, proc.stderr
    assert "none a placeholder" in proc.stdout


def test_example_secrets_are_placeholders(compose, env_example):
    for name in _secret_vars(compose):
        assert env_example[name].startswith("change-me"), f".env.example must not hold a real {name}"


# --------------------------------------------------------------------------- least privilege (finding 2)


def _conn_of(service: dict, conn_id: str, env_example: dict[str, str]) -> str:
    return _interpolate(_env(service)[_conn_env(conn_id)], env_example)


def test_api_server_holds_read_only_identities(compose, services, names, env_example):
    env_example = env_example | _generated_secrets(compose)  # distinct values: no one is part of another
    api = services["airflow-apiserver"]
    uri = urlsplit(_conn_of(api, names["CONN_WAREHOUSE"], env_example))
    assert (uri.username, uri.password) == ("imr_ui", env_example["IMR_UI_PASSWORD"])
    assert (uri.hostname, uri.port, uri.path) == ("warehouse", 5432, "/imr")
    aws = json.loads(_conn_of(api, names["CONN_AWS"], env_example))
    assert (aws["login"], aws["password"]) == (
        env_example["MINIO_READER_USER"],
        env_example["MINIO_READER_PASSWORD"],
    )
    assert aws["login"] != env_example["MINIO_ROOT_USER"]
    api_env = {k: _interpolate(v, env_example) for k, v in _env(api).items()}
    for secret in ("MINIO_ROOT_PASSWORD", "IMR_APP_PASSWORD", "WAREHOUSE_PASSWORD"):
        assert not [k for k, v in api_env.items() if env_example[secret] in v], f"api-server holds {secret}"
    # The tasks' components keep the writers' identities.
    for name in ("airflow-scheduler", "airflow-worker", "airflow-triggerer", "airflow-dag-processor"):
        assert urlsplit(_conn_of(services[name], names["CONN_WAREHOUSE"], env_example)).username == "imr_app"
        assert (
            json.loads(_conn_of(services[name], names["CONN_AWS"], env_example))["login"]
            == (env_example["MINIO_ROOT_USER"])
        )
    # airflow-init checks the very login the api-server uses.
    assert _interpolate(_env(services["airflow-init"])["IMR_UI_CONN"], env_example) == uri.geturl()


def test_minio_reader_may_only_read_the_bucket(services, env_example):
    init = services["minio-init"]
    command = _command_text(init)
    init_env = {k: _interpolate(v, env_example) for k, v in _env(init).items()}
    assert 'mc admin user add local "$$MINIO_READER_USER" "$$MINIO_READER_PASSWORD"' in command
    assert "mc admin policy create local imr-letters-read" in command
    assert 'mc admin policy attach local imr-letters-read --user "$$MINIO_READER_USER"' in command
    actions = set(re.findall(r'"(s3:[A-Za-z*]+)"', command))
    assert actions == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}, actions
    assert (
        "arn:aws:s3:::'\"$$IMR_BUCKET\"'" in command and init_env["IMR_BUCKET"] == env_example["IMR_BUCKET"]
    )
    assert "mc alias set" not in command, "root keys on mc's command line"
    assert init_env["MC_HOST_local"] == (
        f"http://{env_example['MINIO_ROOT_USER']}:{env_example['MINIO_ROOT_PASSWORD']}@minio:9000"
    )


# --------------------------------------------------------------------------- network (finding 7)


def test_api_server_is_published_on_loopback(services, env_example):
    (published,) = services["airflow-apiserver"]["ports"]
    assert _interpolate(published, {}) == "127.0.0.1:8080:8080"
    assert env_example["AIRFLOW_API_BIND_ADDRESS"] == "127.0.0.1"
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert _interpolate(str(port), {}).startswith("127.0.0.1:"), (
                f"{name} publishes {port} beyond loopback"
            )


def test_redis_requires_a_password(services, env_example):
    redis = services["redis"]
    command = _command_text(redis)
    assert "requirepass $$REDIS_PASSWORD" in command and "redis-server -" in command
    assert "--requirepass" not in command, "the password would be on redis-server's command line"
    assert _interpolate(_env(redis)["REDIS_PASSWORD"], env_example) == env_example["REDIS_PASSWORD"]
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    for name in AIRFLOW_SERVICES:
        broker = urlsplit(_interpolate(_env(services[name])["AIRFLOW__CELERY__BROKER_URL"], env_example))
        assert broker.password == env_example["REDIS_PASSWORD"], name


# --------------------------------------------------------------------------- code <-> deployment


def test_connections_and_variables_match_code(services, names, env_example):
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        for conn in (names["CONN_AWS"], names["CONN_WAREHOUSE"]):
            assert _conn_env(conn) in env, f"{name} lacks {_conn_env(conn)}"
        for var in (names["VAR_BUCKET"], names["VAR_PREFIX"]):
            assert _var_env(var) in env, f"{name} lacks {_var_env(var)}"
    env = {k: _interpolate(v, env_example) for k, v in _env(services["airflow-worker"]).items()}
    assert env[_var_env(names["VAR_BUCKET"])] == "imr-letters"
    assert env[_var_env(names["VAR_PREFIX"])] == "letters/"


def test_aws_connection_points_at_minio(services, names, env_example):
    raw = _env(services["airflow-worker"])[_conn_env(names["CONN_AWS"])]
    conn = json.loads(_interpolate(raw, env_example))
    assert conn["conn_type"] == "aws"
    assert conn["login"] == env_example["MINIO_ROOT_USER"]
    assert conn["password"] == env_example["MINIO_ROOT_PASSWORD"]
    endpoint = urlsplit(conn["extra"]["endpoint_url"])
    assert endpoint.hostname == "minio" and endpoint.port == 9000
    assert conn["extra"].get("region_name")


def test_warehouse_connection_is_imr_app(services, names, env_example):
    raw = _env(services["airflow-worker"])[_conn_env(names["CONN_WAREHOUSE"])]
    uri = urlsplit(_interpolate(raw, env_example))
    assert uri.scheme in ("postgres", "postgresql")
    assert (uri.hostname, uri.port, uri.path) == ("warehouse", 5432, "/imr")
    assert uri.username == "imr_app", "DAGs must connect as the DML-only login role, not the owner"
    assert uri.password == env_example["IMR_APP_PASSWORD"]
    assert uri.hostname in services


def test_bucket_created_is_the_bucket_read(services, names, env_example):
    bucket = _interpolate(_env(services["airflow-worker"])[_var_env(names["VAR_BUCKET"])], env_example)
    init = services["minio-init"]
    init_env = {k: _interpolate(v, env_example) for k, v in _env(init).items()}
    command = _command_text(init)
    assert "mc mb" in command
    assert bucket in command or ("$$IMR_BUCKET" in command and init_env.get("IMR_BUCKET") == bucket)


def test_pool_created_by_init(services, names):
    """The pool the loader tasks use is created, with a slot count, by airflow-init."""
    text = _command_text(services["airflow-init"])
    assert INIT_SCRIPT.name in text, f"airflow-init does not run {INIT_SCRIPT.name}"
    text += "\n" + INIT_SCRIPT.read_text()
    m = re.search(rf"airflow pools set {re.escape(names['POOL_WAREHOUSE'])}\s+(\S+)", text)
    assert m, f"airflow-init does not run `airflow pools set {names['POOL_WAREHOUSE']} ...`"
    slots = m.group(1).strip("\"'")
    if slots.startswith("$"):
        var = slots.strip("${}")
        assert var in _env(services["airflow-init"]), f"{var} is not passed to airflow-init"


def test_warehouse_roles(services, env_example):
    init_volumes = _volume_map(services["warehouse"])
    assert init_volumes.get("/docker-entrypoint-initdb.d") == "./docker/warehouse-initdb"
    initdb = "\n".join(p.read_text() for p in sorted(WAREHOUSE_INITDB.iterdir()) if p.is_file())
    assert "CREATE ROLE imr_app LOGIN" in initdb
    assert "CREATE DATABASE imr" in initdb
    script = INIT_SCRIPT.read_text()
    assert "imr db upgrade" in script
    assert "GRANT imr_loader TO imr_app" in script
    assert '("imr_ui", "imr_reader", "IMR_UI_PASSWORD")' in script and "IMR_UI_CONN" in script
    # The migrations, not the deployment, define the group role.
    sql = "\n".join(p.read_text() for p in (REPO / "include" / "imr" / "migrations").glob("*.sql"))
    assert "imr_loader" in sql, "the migrations no longer create role imr_loader"
    assert "CREATE ROLE imr_reader NOLOGIN" in sql, "the migrations no longer create role imr_reader"
    # Migrations run as the warehouse owner, the DAGs as imr_app.
    dsn = urlsplit(_interpolate(_env(services["airflow-init"])["IMR_WAREHOUSE_DSN"], env_example))
    assert dsn.hostname == "warehouse" and dsn.path == "/imr" and dsn.username != "imr_app"


def _module_file(name: str) -> Path | None:
    """include/<a>/<b>.py or include/<a>/<b>/__init__.py for module a.b; None if not in include/."""
    base = REPO / "include" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Modules (absolute names) one file imports, `from pkg import sub` counted as pkg.sub if it is one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")}
    return out


def _dag_code() -> dict[str, Path]:
    """What the DAG files run: dags/*.py and every include/ module they import, transitively."""
    todo = [(f"dags.{p.stem}", p) for p in sorted((REPO / "dags").glob("*.py"))]
    assert todo, "dags/ has no DAG files"
    seen: dict[str, Path] = {}
    while todo:
        module, path = todo.pop()
        if module in seen:
            continue
        seen[module] = path
        for name in _imports(path, module):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c imports a and a.b too
                sub = ".".join(parts[:i])
                if sub not in seen and (file := _module_file(sub)):
                    todo.append((sub, file))
    return seen


def _config_aliases(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """(local name -> imr.config name, local names bound to the imr.config module) in one file."""
    names: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "imr.config":
            names |= {(a.asname or a.name): a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "imr":
            modules |= {(a.asname or a.name) for a in node.names if a.name == "config"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == "imr.config" and a.asname}
    return names, modules


def _name_uses(path: Path, config) -> list[tuple[str, str, str, str]]:
    """(kind, value, how, where) for each pool=, *conn_id=, get_connection(...), Variable.get(...)
    and dag_id= in one file; `how` is "config" for a name imported from imr.config, "literal" for a
    string, and "unresolved" for anything else."""
    tree = ast.parse(path.read_text(), str(path))
    names, modules = _config_aliases(tree)

    def resolve(node: ast.expr) -> tuple[str, str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value, "literal"
        if isinstance(node, ast.Name) and node.id in names:
            return getattr(config, names[node.id]), "config"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            return getattr(config, node.attr), "config"
        return ast.unparse(node), "unresolved"

    uses = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{path.relative_to(REPO)}:{node.lineno}"
        found = [(kw.arg, kw.value) for kw in node.keywords if kw.arg]
        func = node.func
        if isinstance(func, ast.Attribute) and node.args:
            if func.attr == "get_connection":
                found.append(("conn_id", node.args[0]))
            elif func.attr == "get" and isinstance(func.value, ast.Name) and func.value.id == "Variable":
                found.append(("variable", node.args[0]))
        for arg, value in found:
            kind = "conn" if arg.endswith("conn_id") else arg
            if kind in ("pool", "conn", "variable", "dag_id"):
                uses.append((kind, *resolve(value), where))
    return uses


def test_config_is_what_the_dags_import(names):
    """The DAG files reach include/imr/config.py through their imports, and every pool, connection
    and Variable the DAGs' code names is an imr.config name, not a literal or an expression this test
    cannot check. DAG ids may be literals in dags/, but must be imr.config's DAG_IDS."""
    import imr.config

    code = _dag_code()
    assert code.get("imr.config") == CONFIG, f"the DAGs do not import imr.config: {sorted(code)}"
    uses = [u for m, path in code.items() if m != "imr.config" for u in _name_uses(path, imr.config)]
    bad = [u for u in uses if u[2] == "unresolved" or (u[2] == "literal" and u[0] != "dag_id")]
    assert not bad, f"names not taken from imr.config: {bad}"
    found = {kind: {value for k, value, _, _ in uses if k == kind} for kind in ("pool", "conn", "variable")}
    assert found == {
        "pool": {names["POOL_WAREHOUSE"]},
        "conn": {names["CONN_AWS"], names["CONN_WAREHOUSE"], names["CONN_SMTP"], names["CONN_SLACK"]},
        "variable": {
            names["VAR_BUCKET"],
            names["VAR_PREFIX"],
            names["VAR_ALERT_EMAILS"],
            names["VAR_EVENTS_QUEUE_URL"],
        },
    }, found
    dag_ids = sorted(value for kind, value, _, _ in uses if kind == "dag_id")
    assert dag_ids == sorted(imr.config.DAG_IDS), dag_ids


def test_dags_use_known_names(services, names):
    """Every pool, connection and Variable the DAGs' code uses (see above) exists in the stack."""
    import imr.config

    env = _env(services["airflow-worker"])
    init_text = _command_text(services["airflow-init"]) + INIT_SCRIPT.read_text()
    pools = set(re.findall(r"airflow pools set (\S+)", init_text)) | {"default_pool"}
    conns = {k[len("AIRFLOW_CONN_") :].lower() for k in env if k.startswith("AIRFLOW_CONN_")}
    variables = {k[len("AIRFLOW_VAR_") :].lower() for k in env if k.startswith("AIRFLOW_VAR_")}
    defined = {"pool": pools, "conn": conns, "variable": variables}
    uses = [u for m, path in _dag_code().items() if m != "imr.config" for u in _name_uses(path, imr.config)]
    kinds = {kind for kind, *_ in uses}
    assert {"pool", "conn", "variable"} <= kinds, f"found only {sorted(kinds)}: the scan checks nothing"
    # Slack alerts are an optional channel: a stack without the connection just sends none. The
    # events queue too: MinIO cannot notify SQS, so compose's nightly run lists (docs/discovery.md).
    optional = {("conn", names["CONN_SLACK"]), ("variable", names["VAR_EVENTS_QUEUE_URL"])}
    for kind, value, _how, where in uses:
        if kind in defined and (kind, value) not in optional:
            assert value in defined[kind], f"{where}: {kind} {value!r} is not defined by the stack"
    assert names["POOL_WAREHOUSE"] in pools
    assert {names["CONN_AWS"], names["CONN_WAREHOUSE"]} <= conns


# --------------------------------------------------------------------------- mounts and image


def test_code_is_mounted_where_airflow_reads_it(services):
    for name in AIRFLOW_SERVICES:
        volumes = _volume_map(services[name])
        for host, container in MOUNTS.items():
            assert volumes.get(container) == host, f"{name} does not mount {host} at {container}"
        assert "/opt/airflow/include" in _env(services[name]).get("PYTHONPATH", "").split(":"), name


def test_dockerfile(compose_text):
    text = DOCKERFILE.read_text()
    instructions = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    from_line = next(ln for ln in instructions if ln.upper().startswith("FROM "))
    pinned = re.search(r"^apache-airflow==(\S+)", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned, "requirements.txt no longer pins apache-airflow"
    assert from_line == f"FROM apache/airflow:{pinned.group(1)}-python3.11", (
        f"{from_line!r} does not match requirements.txt's apache-airflow=={pinned.group(1)}"
    )
    assert any(re.match(r"COPY\b.*\brequirements\.txt\b", ln) for ln in instructions)
    pip = [ln for ln in instructions if ln.startswith("RUN") and "pip install" in ln]
    assert any(re.search(r"-r\s+\S*requirements\.txt", ln) for ln in pip), (
        "the image must install requirements.txt"
    )
    # Installed as the airflow user (the image refuses pip as root), not at container start.
    users = [ln for ln in instructions if ln.startswith("USER")]
    assert users and users[-1] == "USER airflow"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in text
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in compose_text
    # include/ is importable: installed package and/or PYTHONPATH.
    assert re.search(r"ENV PYTHONPATH=/opt/airflow/include\b", text) or any(
        "/imr-src" in ln or re.search(r"pip install .*\s\.$", ln) for ln in pip
    )


def test_dockerignore_keeps_secrets_out():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    if "*" in lines:  # whitelist style: the build context holds only what the Dockerfile copies
        for needed in ("requirements.txt", "pyproject.toml", "include/", "dags/", "plugins/"):
            assert f"!{needed}" in lines
        assert "!.env" not in lines
        # The dev tooling (embedded engines, fault proxy, native stack) stays out of the image.
        assert "include/imr_devtools" in lines[lines.index("!include/") :]
    else:
        assert ".env" in lines and ".venv" in lines
    assert not any(m.split(".")[0] == "imr_devtools" for m in _dag_code()), "the DAGs reach imr_devtools"


# --------------------------------------------------------------------------- environment


def test_every_variable_is_in_env_example(compose, env_example):
    used = {name for name, _, _ in _vars_used(compose)}
    missing = sorted(used - set(env_example))
    assert not missing, f".env.example lacks {missing}"
    unused = sorted(set(env_example) - used)
    assert not unused, f".env.example sets variables docker-compose.yaml never uses: {unused}"


def test_defaults_agree(compose, env_example):
    """A variable's fallback is the same everywhere (else e.g. two services disagree on a password)."""
    defaults: dict[str, set[str]] = {}
    for name, op, arg in _vars_used(compose):
        if op in (":-", "-"):
            defaults.setdefault(name, set()).add(arg)
    for name, values in defaults.items():
        assert len(values) == 1, f"${{{name}}} has different defaults: {sorted(values)}"
    # Non-secret settings default to the documented example value.
    for name in ("IMR_BUCKET", "IMR_PREFIX", "AIRFLOW_WORKER_CONCURRENCY", "IMR_WAREHOUSE_POOL_SLOTS"):
        assert defaults[name] == {env_example[name]}, name


def test_env_is_gitignored_and_example_has_no_real_secrets(env_example):
    ignored = [ln.strip() for ln in (REPO / ".gitignore").read_text().splitlines()]
    assert ".env" in ignored
    for key, value in env_example.items():
        if any(word in key for word in ("PASSWORD", "SECRET")):
            assert value.startswith("change-me"), f"{key} in .env.example must be a change-me placeholder"


def test_shell_scripts_parse():
    scripts = [INIT_SCRIPT, USERS_SCRIPT, *sorted(WAREHOUSE_INITDB.glob("*.sh"))]
    for script in (FAB_USERS, CHECK_SECRETS):
        compile(script.read_text(), str(script), "exec")
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


# --------------------------------------------------------------------------- Compose itself


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def _compose_config(env_file: Path) -> subprocess.CompletedProcess:
    cmd = _compose_command()
    if cmd is None:
        pytest.skip("no docker-compose nor docker compose plugin on PATH (apt-get install docker-compose)")
    return subprocess.run(
        [
            *cmd,
            "-f",
            str(COMPOSE),
            "--project-directory",
            str(REPO),
            "--env-file",
            str(env_file),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in _ALL_VARS},
    )


_ALL_VARS = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))


def test_compose_config_validates_the_example():
    """.env.example defines every variable (placeholders): Compose accepts it (.ci/run runs this);
    airflow-init's check then refuses it (test_check_refuses_the_example_placeholders)."""
    result = _compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, f"config failed:\n{result.stdout}\n{result.stderr}"


def test_compose_config_refuses_an_empty_environment(compose, tmp_path):
    """Finding 1: no .env at all is refused, naming the missing secret."""
    path = tmp_path / "empty.env"
    path.write_text("")
    result = _compose_config(path)
    assert result.returncode != 0
    named = [
        n
        for n in sorted(_secret_vars(compose))
        if f"{n} is not set (a secret, required in .env" in result.stderr
    ]
    assert named, result.stderr


def test_compose_config_accepts_generated_secrets(compose, tmp_path, env_example):
    values = env_example | _generated_secrets(compose)
    path = tmp_path / "generated.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    result = _compose_config(path)
    assert result.returncode == 0, result.stderr
    assert _check_secrets(values).returncode == 0
