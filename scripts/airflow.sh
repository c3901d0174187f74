#!/usr/bin/env bash
# `airflow` on the embedded services: migrates the metadata DB and creates the pool once
# (imr_airflow_prepare in airflow_env.sh), then runs the given airflow command,
# e.g. scripts/airflow.sh dags test imr_ingest_nightly
set -euo pipefail
source "$(dirname "$0")/airflow_env.sh"
imr_airflow_prepare
exec airflow "$@"
