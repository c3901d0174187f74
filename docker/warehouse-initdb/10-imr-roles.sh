#!/usr/bin/env bash
# First-start initialisation of the `warehouse` service (postgres image, /docker-entrypoint-initdb.d).
# Runs once, when the data volume is empty, as the superuser $POSTGRES_USER (the warehouse owner,
# WAREHOUSE_USER in .env), which is also the migration/admin role.
#
# It creates only what the migrations cannot know about:
#   * database `imr` (normally already made by the image from POSTGRES_DB=imr; kept idempotent),
#   * LOGIN role `imr_app` with password $IMR_APP_PASSWORD -- the role the DAGs connect as
#     (connection `imr_warehouse`).
# The group role `imr_loader` and its grants (USAGE on schema imr, DML on its tables) belong to the
# project's migrations (include/imr/migrations). The migrations run later, from airflow-init
# (`imr db upgrade`), which then grants `imr_loader` to `imr_app`: see docker/airflow-init.sh.
# This script only does that grant itself if `imr_loader` already exists.
# No `set -u`: the postgres entrypoint sources (rather than runs) a script without the executable
# bit, and its own shell options (-Eeo pipefail) would then be changed for the rest of its run.
set -eo pipefail

if [[ -z "${IMR_APP_PASSWORD:-}" ]]; then
    echo "IMR_APP_PASSWORD is not set: cannot create role imr_app" >&2
    false
fi

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v app_password="$IMR_APP_PASSWORD" <<'EOSQL'
SELECT 'CREATE DATABASE imr' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'imr')\gexec

SELECT format('CREATE ROLE imr_app LOGIN PASSWORD %L', :'app_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'imr_app')\gexec
-- INHERIT: imr_app acts with imr_loader's privileges once it is a member.
ALTER ROLE imr_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT;

-- Only members can connect; PUBLIC gets nothing on the warehouse database.
REVOKE ALL ON DATABASE imr FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE imr TO imr_app;

SELECT 'GRANT imr_loader TO imr_app' WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'imr_loader')\gexec
EOSQL

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname imr <<'EOSQL'
-- PostgreSQL 15+ already denies CREATE on schema public to PUBLIC; say so explicitly.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EOSQL

echo "warehouse init: database imr and role imr_app ready (imr_loader membership is granted after migrations)"
