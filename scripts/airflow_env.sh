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
# imr.config.WORKER_MIN_HEARTBEAT_INTERVAL_S: a finished task's executor slot is free at most 1 s late.
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL="${AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL:-1}"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
export PATH="$_repo/.venv/bin:$PATH"
mkdir -p "$AIRFLOW_HOME"
unset _repo _run _line _kv _k

# Before any airflow command on these services (scripts/airflow.sh, scripts/standalone.sh): migrate
# the metadata database once per Airflow version, and create the warehouse writers' pool, whose name
# comes from include/imr/config.py (POOL_WAREHOUSE), as the DAGs read it.
imr_airflow_prepare() {
  local names version pool stamp
  names="$(python -c 'import importlib.metadata as m
from imr.config import POOL_WAREHOUSE
print(m.version("apache-airflow"), POOL_WAREHOUSE)')"
  read -r version pool <<<"$names"
  stamp="$AIRFLOW_HOME/.migrated-$version"
  if [ ! -f "$stamp" ]; then
    airflow db migrate >/dev/null
    touch "$stamp"
  fi
  airflow pools set "$pool" "${IMR_WAREHOUSE_POOL_SLOTS:-4}" "concurrent warehouse writers" >/dev/null
}
