# Sourced by the Makefile targets and scripts: Airflow on the embedded services (scripts/devservices.py).
# Metadata lives in the embedded PostgreSQL (SQLite would serialize parallel tasks).
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_run="${IMR_RUN_DIR:-$_repo/.run}"
# The services' variables, except where the caller set one already (tests point the connections at
# their own database and bucket).
while IFS= read -r _line; do
  [[ $_line == export\ * ]] || continue
  _kv=${_line#export }
  _k=${_kv%%=*}
  [ -n "${!_k+x}" ] || eval "$_line"
done <"$_run/services.env"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$_run/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$_repo/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$_repo/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-2}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
export PATH="$_repo/.venv/bin:$PATH"
mkdir -p "$AIRFLOW_HOME"
unset _repo _run _line _kv _k
