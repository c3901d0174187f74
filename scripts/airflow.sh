#!/usr/bin/env bash
# `airflow` on the embedded services: migrates the metadata DB and creates the pool once, then
# runs the given airflow command, e.g. scripts/airflow.sh dags test imr_ingest_nightly
set -euo pipefail
source "$(dirname "$0")/airflow_env.sh"
stamp="$AIRFLOW_HOME/.migrated-$(airflow version)"
if [ ! -f "$stamp" ]; then
  airflow db migrate >/dev/null
  touch "$stamp"
fi
airflow pools set imr_warehouse "${IMR_WAREHOUSE_POOL_SLOTS:-4}" "concurrent warehouse writers" >/dev/null
exec airflow "$@"
