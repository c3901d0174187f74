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
# What it does, every run (each `airflow` call costs a few seconds: the FAB app is built each time):
#   1. `airflow fab-db migrate`: FAB's tables (ab_user, ab_role, ...) at FAB's Alembic head. A no-op
#      after `airflow db migrate` with the provider installed (that migrates them too), but needed
#      for a metadata database migrated before the provider was installed: without it the first
#      FAB app would create the tables from the ORM, unversioned.
#   2. `airflow users export` to see who exists, then per user:
#      missing -> `airflow users create --role R` (the first FAB app start creates the roles);
#      present -> `airflow users reset-password` (the environment is the source of truth: a changed
#      password is rotated; `users create` would only say "already exists" and keep the old one),
#      and the role set is made exactly R (`users add-role` / `users remove-role`).
# Passwords are passed as `airflow users` arguments, as Airflow's own image entrypoint does.
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

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
airflow users export "$tmp/users.json" >/dev/null

# Prints the user's roles, one per line, or `-` alone if the user does not exist.
roles_of() {
  python - "$tmp/users.json" "$1" <<'PY'
import json
import sys

users = {u["username"]: u for u in json.load(open(sys.argv[1]))}
user = users.get(sys.argv[2])
print("\n".join(user["roles"]) if user else "-")
PY
}

# ensure_user USERNAME PASSWORD ROLE EMAIL FIRSTNAME LASTNAME
ensure_user() {
  local user="$1" password="$2" role="$3" email="$4" first="$5" last="$6" roles r
  roles="$(roles_of "$user")"
  if [ "$roles" = "-" ]; then
    echo "== User ${user}: create (role ${role})"
    airflow users create --username "$user" --password "$password" --role "$role" \
      --email "$email" --firstname "$first" --lastname "$last" >/dev/null
    return
  fi
  echo "== User ${user}: exists; password from the environment, role ${role}"
  airflow users reset-password --username "$user" --password "$password" >/dev/null
  if ! grep -qxF "$role" <<<"$roles"; then
    airflow users add-role --username "$user" --role "$role" >/dev/null
  fi
  while IFS= read -r r; do
    if [ -n "$r" ] && [ "$r" != "$role" ]; then
      echo "   removing role ${r} from ${user}"
      airflow users remove-role --username "$user" --role "$r" >/dev/null
    fi
  done <<<"$roles"
}

ensure_user "$_AIRFLOW_WWW_USER_USERNAME" "$_AIRFLOW_WWW_USER_PASSWORD" Admin \
  "${_AIRFLOW_WWW_USER_EMAIL:-${_AIRFLOW_WWW_USER_USERNAME}@example.invalid}" \
  "${_AIRFLOW_WWW_USER_FIRSTNAME:-Airflow}" "${_AIRFLOW_WWW_USER_LASTNAME:-Admin}"
ensure_user "$IMR_VIEWER_USERNAME" "$IMR_VIEWER_PASSWORD" Viewer \
  "${IMR_VIEWER_EMAIL:-${IMR_VIEWER_USERNAME}@example.invalid}" "IMR" "Viewer"
echo "airflow-users.sh: ${_AIRFLOW_WWW_USER_USERNAME} (Admin) and ${IMR_VIEWER_USERNAME} (Viewer) are up to date"
