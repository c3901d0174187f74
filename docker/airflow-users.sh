#!/usr/bin/env bash
# The Flask-AppBuilder users of a deployment, idempotently: an admin (role Admin) and a read-only
# viewer (role Viewer). Run by docker/airflow-init.sh (compose's airflow-init and the native stack).
# A user that exists gets its password reset to the one given, so .env stays the source of truth.
set -euo pipefail
: "${_AIRFLOW_WWW_USER_USERNAME:?}" "${_AIRFLOW_WWW_USER_PASSWORD:?}"
: "${IMR_VIEWER_USERNAME:?}" "${IMR_VIEWER_PASSWORD:?}"

existing="$(airflow users list --output json 2>/dev/null || echo '[]')"

ensure_user() {  # username password role
  if USERNAME="$1" python -c 'import json, os, sys; sys.exit(0 if any(u.get("username") == os.environ["USERNAME"] for u in json.loads(sys.stdin.read() or "[]")) else 1)' <<<"$existing"; then
    airflow users reset-password --username "$1" --password "$2" >/dev/null
    echo "user $1 exists (role $3): password reset"
  else
    airflow users create --username "$1" --password "$2" --role "$3" \
      --firstname "$1" --lastname imr --email "$1@imr.invalid" >/dev/null
    echo "user $1 created (role $3)"
  fi
}

ensure_user "${_AIRFLOW_WWW_USER_USERNAME}" "${_AIRFLOW_WWW_USER_PASSWORD}" Admin
ensure_user "${IMR_VIEWER_USERNAME}" "${IMR_VIEWER_PASSWORD}" Viewer
