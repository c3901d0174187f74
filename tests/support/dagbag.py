"""The DagBag of dags/, built once per test session in this process (the DAG tests parametrize over
it at collection time, so it cannot be a fixture)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


@functools.cache
def dag_bag():
    """Airflow's DagBag over dags/, loaded without example DAGs.

    An Airflow imported for the first time here gets an AIRFLOW_HOME of its own (a temporary
    directory), which is not left in os.environ: the `airflow` subprocesses of later tests keep the
    one scripts/airflow_env.sh gives them.

    :return: the DagBag (its ``dags`` and ``import_errors``)
    """
    saved = dict(os.environ)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="imr-dagbag-"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    try:
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=str(DAGS))
    finally:
        os.environ.clear()
        os.environ.update(saved)
