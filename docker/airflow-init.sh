#!/usr/bin/env bash
# Project part of the one-shot `airflow-init` service (docker-compose.yaml). It runs as root after
# the image entrypoint has migrated the Airflow metadata database (`/entrypoint airflow version`
# with _AIRFLOW_DB_MIGRATE=true), and it is safe to run again: every step is idempotent. The native
# stack (scripts/stack.py) runs this same file after `airflow db migrate`.
#
#   1. The UI/API users of the FAB auth manager (admin and viewer from .env): docker/airflow-users.sh.
#   2. Pool `imr_warehouse` (warehouse writers; parse tasks use default_pool).
#   3. Warehouse schema: `imr db upgrade` as the warehouse owner (migration/admin role).
#   4. Role wiring the migrations cannot know: imr_app (the DAGs' login) joins imr_loader, imr_ui
#      (the api-server's login) joins imr_reader; both passwords come from the environment.
#   5. A least-privilege check of connection `imr_warehouse` (imr_app) and of the api-server's
#      (IMR_UI_CONN, imr_ui: may read the manifest, may not write it).
# Compose runs docker/check_secrets.py before this (placeholder secrets); the native stack generates
# its own.
set -euo pipefail

: "${_AIRFLOW_WWW_USER_USERNAME:?}" "${_AIRFLOW_WWW_USER_PASSWORD:?}"
: "${IMR_VIEWER_USERNAME:?}" "${IMR_VIEWER_PASSWORD:?}"
: "${IMR_WAREHOUSE_POOL_SLOTS:?}" "${IMR_WAREHOUSE_DSN:?}" "${IMR_APP_PASSWORD:?}"
: "${AIRFLOW_CONN_IMR_WAREHOUSE:?}" "${IMR_UI_PASSWORD:?}" "${IMR_UI_CONN:?}"

echo "== Airflow users (FAB auth manager): ${_AIRFLOW_WWW_USER_USERNAME} (Admin), ${IMR_VIEWER_USERNAME} (Viewer)"
bash "$(dirname "${BASH_SOURCE[0]}")/airflow-users.sh"

echo "== Pool imr_warehouse (${IMR_WAREHOUSE_POOL_SLOTS} slots)"
airflow pools set imr_warehouse "${IMR_WAREHOUSE_POOL_SLOTS}" \
    "Concurrent warehouse writers (loader tasks); bounds connections to the imr database"

echo "== Warehouse migrations: imr db upgrade (as the warehouse owner)"
imr db upgrade

echo "== Warehouse roles: GRANT imr_loader TO imr_app, GRANT imr_reader TO imr_ui"
python - <<'PY'
import os

import psycopg2

conn = psycopg2.connect(os.environ["IMR_WAREHOUSE_DSN"])
conn.autocommit = True
with conn.cursor() as cur:
    for login, group, env in (("imr_app", "imr_loader", "IMR_APP_PASSWORD"), ("imr_ui", "imr_reader", "IMR_UI_PASSWORD")):
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,))
        if cur.fetchone() is None:
            raise SystemExit(f"role {group} does not exist after `imr db upgrade`: the migrations must create it")
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,))
        # Created when missing (imr_ui, or a warehouse volume initialised before
        # docker/warehouse-initdb existed); otherwise .env stays the source of truth when the
        # password is rotated.
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(
            f"{verb} ROLE {login} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD %s",
            (os.environ[env],),
        )
        cur.execute(f"GRANT {group} TO {login}")
    cur.execute("GRANT CONNECT, TEMPORARY ON DATABASE imr TO imr_app")
conn.close()
PY

python - <<'PY'
import os

import psycopg2

# One check a login: (what, the variable with its DSN, a query of one row, the row's labels, whether
# the row is right, what to fix when it is not).
CHECKS = (
    (
        "connection imr_warehouse (imr_app) can use schema imr but not change it",
        "AIRFLOW_CONN_IMR_WAREHOUSE",
        "SELECT current_user, has_schema_privilege('imr', 'USAGE'), has_schema_privilege('imr', 'CREATE'),"
        " has_database_privilege(current_database(), 'CREATE')",
        ("user", "usage(imr)", "create(imr)", "create(db)"),
        lambda user, usage, create_in_schema, create_schema: usage and not create_in_schema and not create_schema,
        "imr_app must have USAGE on schema imr and no CREATE: check the imr_loader grants",
    ),
    (
        "the api-server's login (imr_ui) reads the manifest and can write nothing",
        "IMR_UI_CONN",
        "SELECT current_user, has_table_privilege('imr.s3_objects', 'SELECT'),"
        " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "   WHERE n.nspname = 'imr' AND c.relkind IN ('r', 'p', 'v', 'm')"
        "   AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')),"
        " has_schema_privilege('imr', 'CREATE')",
        ("user", "select(s3_objects)", "writable tables", "create(imr)"),
        lambda user, select, writable, create: user == "imr_ui" and select and not writable and not create,
        "the api-server's login must be imr_ui, read imr.s3_objects and write nothing: check imr_reader",
    ),
)
for what, dsn_var, query, labels, right, fix in CHECKS:
    print(f"== Check: {what}", flush=True)
    conn = psycopg2.connect(os.environ[dsn_var])
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
    conn.close()
    print(" ".join(f"{label}={value}" for label, value in zip(labels, row)), flush=True)
    if not right(*row):
        raise SystemExit(fix)
PY

if [ -n "${AIRFLOW_UID:-}" ]; then  # in the image only: the native stack runs as the caller
  echo "== Ownership of /opt/airflow/logs for ${AIRFLOW_UID}:0"
  mkdir -p /opt/airflow/logs
  chown -R "${AIRFLOW_UID}:0" /opt/airflow/logs
fi
echo "airflow-init: project initialisation done"
