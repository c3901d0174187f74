#!/usr/bin/env bash
# The UI/API users of the Flask-AppBuilder (FAB) auth manager, created or brought up to date with
# the `airflow` CLI. One script for both deployments: compose's airflow-init (docker/airflow-init.sh)
# and the native stack (`make stack-start`). Idempotent: run it on every start.
#
#   _AIRFLOW_WWW_USER_USERNAME / _AIRFLOW_WWW_USER_PASSWORD   the admin (FAB role Admin)
#   IMR_VIEWER_USERNAME / IMR_VIEWER_PASSWORD                 the viewer (FAB role Viewer): reads the
#                                                             IMR monitor, cannot reprocess
#   optional: _AIRFLOW_WWW_USER_EMAIL, IMR_VIEWER_EMAIL (FAB wants a unique e-mail per user;
#             default <username>@example.invalid), _AIRFLOW_WWW_USER_FIRSTNAME/_LASTNAME
#
# Needs the Airflow metadata database migrated (`airflow db migrate`) and
# AIRFLOW__CORE__AUTH_MANAGER = the FAB auth manager (include/imr/config.py AUTH_MANAGER_FAB).
#
# What it does, every run:
#   1. `airflow fab-db migrate`: FAB's tables (ab_user, ab_role, ...) at FAB's Alembic head. A no-op
#      after `airflow db migrate` with the provider installed (that migrates them too), but needed
#      for a metadata database migrated before the provider was installed: without it the first
#      FAB app would create the tables from the ORM, unversioned.
#   2. docker/fab_users.py, in one process: per user, missing -> created with role R (the FAB app's
#      start creates the roles); present -> password from the environment (a changed password is
#      rotated) and the role set made exactly R.
# No password is ever an argument of a command: `airflow users create --password X` would show it
# in the process list, and a password beginning with `-` would be read as an option. fab_users.py
# reads them from the environment (exported by the caller, never printed).
set -euo pipefail

: "${_AIRFLOW_WWW_USER_USERNAME:?admin username}" "${_AIRFLOW_WWW_USER_PASSWORD:?admin password}"
: "${IMR_VIEWER_USERNAME:?viewer username}" "${IMR_VIEWER_PASSWORD:?viewer password}"

FAB_AUTH_MANAGER="airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
auth_manager="${AIRFLOW__CORE__AUTH_MANAGER:-}"
if [ -z "$auth_manager" ]; then
  auth_manager="$(airflow config get-value core auth_manager 2>/dev/null | tail -n 1)"
fi
if [ "$auth_manager" != "$FAB_AUTH_MANAGER" ]; then
  echo "airflow-users.sh: the auth manager is '${auth_manager}', not ${FAB_AUTH_MANAGER};" \
    "users exist only with the FAB auth manager (set AIRFLOW__CORE__AUTH_MANAGER)" >&2
  exit 1
fi
if [ "$_AIRFLOW_WWW_USER_USERNAME" = "$IMR_VIEWER_USERNAME" ]; then
  echo "airflow-users.sh: the admin and the viewer must be different users" >&2
  exit 1
fi

echo "== FAB tables: airflow fab-db migrate"
airflow fab-db migrate >/dev/null

python "$(dirname "${BASH_SOURCE[0]}")/fab_users.py"
echo "airflow-users.sh: ${_AIRFLOW_WWW_USER_USERNAME} (Admin) and ${IMR_VIEWER_USERNAME} (Viewer) are up to date"
