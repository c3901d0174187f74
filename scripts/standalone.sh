#!/usr/bin/env bash
# `airflow standalone` (api-server, scheduler, dag-processor, triggerer) on the embedded services
# (`make standalone` starts those first): the UI, with the "IMR Ingestion" monitor in its navigation,
# on http://localhost:${AIRFLOW__API__PORT:-8080}. Stop it with Ctrl-C.
#
# Login (SimpleAuthManager): the users of AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS (default
# admin:admin, i.e. user `admin` with role admin). Airflow generates their passwords on the first
# start and prints them; they stay in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
# unless AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE names another file.
#
# IMR_STANDALONE_ENV may name a file of `export` lines applied after the embedded services'
# environment, e.g. another AIRFLOW_HOME, metadata database, warehouse or bucket
# (tests/test_monitor_browser.py runs an isolated instance that way).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/airflow_env.sh"
if [ -n "${IMR_STANDALONE_ENV:-}" ]; then
  # shellcheck disable=SC1090
  source "$IMR_STANDALONE_ENV"
  mkdir -p "$AIRFLOW_HOME"
fi
# Always SimpleAuthManager (include/imr/config.py AUTH_MANAGER_SIMPLE), whatever the environment says:
# the FAB auth manager (apache-airflow-providers-fab, installed for the production stack) is for
# docker-compose.yaml and `make stack-start`, and would need users created first.
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Task processes report to the api-server's execution API (on the port above).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:${AIRFLOW__API__PORT}/execution/}"
# The monitor triggers imr_reprocess_failures through this api-server's REST API.
export IMR_MONITOR_AIRFLOW_URL="${IMR_MONITOR_AIRFLOW_URL:-http://127.0.0.1:${AIRFLOW__API__PORT}}"

# As scripts/airflow.sh: migrate the metadata DB once per Airflow version, create the pool.
imr_airflow_prepare
exec airflow standalone
