"""docker/airflow-users.sh against a real Airflow metadata database with the FAB auth manager
(issue 15, findings 6 and 9).

A fresh database on the embedded PostgreSQL is migrated with `airflow db migrate`; the script then
runs twice, as compose's airflow-init and the native stack run it: first it creates the admin and
the viewer, then it rotates both passwords and fixes a viewer given an extra role. The passwords
begin with `-` and hold every shell-special character, the values that used to break
`airflow users create --password "$password"`. Each password is checked against the hash FAB
stored, the way FAB's login checks it. An `airflow` and a `python` on PATH that log their argv
before running the real ones show that no password is ever an argument of a process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
USERS_SCRIPT = REPO / "docker" / "airflow-users.sh"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
HOSTILE = "-p $(touch /tmp/pwned) `id` 'q' \"d\" ; & | < > * ? ! # ~ \\ %s ${HOME}"
ARGV_LOGGER = """#!/bin/sh
# Logs its arguments (one JSON line), then runs the real program.
"$REAL_PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$(basename "$0")" "$@" >> "$ARGV_LOG"
exec "$REAL_BIN/$(basename "$0")" "$@"
"""


@pytest.fixture
def fab_metadata(pg_dsn, tmp_path) -> dict[str, str]:
    """An environment whose Airflow metadata database (FAB auth manager) is migrated and empty."""
    kv = dict(part.split("=", 1) for part in pg_dsn.split())
    uri = f"postgresql+psycopg2://{kv['user']}@{kv['host']}:{kv['port']}/{kv['dbname']}"
    real_bin = str(Path(sys.executable).parent)
    shims = tmp_path / "bin"
    shims.mkdir()
    for name in ("airflow", "python"):
        (shims / name).write_text(ARGV_LOGGER)
        (shims / name).chmod(0o755)
    env = {
        "PATH": f"{shims}:{real_bin}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": uri,
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": "",
        "REAL_BIN": real_bin,
        "REAL_PYTHON": sys.executable,
        "ARGV_LOG": str(tmp_path / "argv.jsonl"),
        "PYTHONPATH": str(REPO / "include"),
    }
    migrate = subprocess.run(
        [str(Path(real_bin) / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env | {"PGDSN": pg_dsn}


def _run(env: dict[str, str], admin_pw: str, viewer_pw: str) -> subprocess.CompletedProcess:
    users = {
        "_AIRFLOW_WWW_USER_USERNAME": "admin",
        "_AIRFLOW_WWW_USER_PASSWORD": admin_pw,
        "IMR_VIEWER_USERNAME": "viewer",
        "IMR_VIEWER_PASSWORD": viewer_pw,
    }
    return subprocess.run(
        ["bash", str(USERS_SCRIPT)], env=env | users, capture_output=True, text=True, timeout=600
    )


def _users(dsn: str) -> dict[str, tuple[str, list[str]]]:
    """username -> (password hash, sorted role names), as FAB stored them."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT u.username, u.password, array_agg(r.name ORDER BY r.name) FROM ab_user u"
                " JOIN ab_user_role ur ON ur.user_id = u.id JOIN ab_role r ON r.id = ur.role_id"
                " GROUP BY u.username, u.password"
            )
            return {name: (pw, roles) for name, pw, roles in cur.fetchall()}
    finally:
        conn.close()


def _give_role(dsn: str, username: str, role: str) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ab_user_role (id, user_id, role_id)"
            " SELECT nextval('ab_user_role_id_seq'), u.id, r.id FROM ab_user u, ab_role r"
            " WHERE u.username = %s AND r.name = %s",
            (username, role),
        )
    conn.close()


def _argv_calls(env: dict[str, str]) -> list[list[str]]:
    return [json.loads(line) for line in Path(env["ARGV_LOG"]).read_text().splitlines()]


def test_passwords_with_leading_dash_and_shell_characters(fab_metadata, tmp_path) -> None:
    from werkzeug.security import check_password_hash

    env, dsn = fab_metadata, fab_metadata["PGDSN"]
    admin_pw, viewer_pw = "-" + HOSTILE + " admin", "--viewer=" + HOSTILE
    first = _run(env, admin_pw, viewer_pw)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    users = _users(dsn)
    assert users["admin"][1] == ["Admin"] and users["viewer"][1] == ["Viewer"]
    assert check_password_hash(users["admin"][0], admin_pw)
    assert check_password_hash(users["viewer"][0], viewer_pw)

    # Rotation: new passwords from the environment, and the viewer's roles made exactly Viewer.
    _give_role(dsn, "viewer", "Op")
    admin_pw2, viewer_pw2 = "-n" + HOSTILE[::-1], "-" + HOSTILE.replace(" ", "")
    second = _run(env, admin_pw2, viewer_pw2)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    users = _users(dsn)
    assert users["viewer"][1] == ["Viewer"], users
    assert check_password_hash(users["admin"][0], admin_pw2)
    assert check_password_hash(users["viewer"][0], viewer_pw2)
    assert not check_password_hash(users["viewer"][0], viewer_pw)

    assert not Path("/tmp/pwned").exists(), "a password was run by a shell"
    calls = _argv_calls(env)
    assert calls, "the argv logger saw no process"
    for pw in (admin_pw, viewer_pw, admin_pw2, viewer_pw2):
        assert not [c for c in calls if any(pw in arg for arg in c)], "a password was a process argument"
    for out in (first.stdout + first.stderr, second.stdout + second.stderr):
        assert HOSTILE not in out and "pwned" not in out, "a password was printed"
