"""How the DAGs chain the tasks of imr_airflow.tasks: the common tail every ingestion DAG ends with
(plan, mapped lanes, quality record then gates, publish, claim release), the sweep's tail, and the
SQL check operators that gate a run. The DAG files in dags/ call `ingest_tail` or `sweep_tail` after
their own first tasks."""

from __future__ import annotations

from airflow.providers.common.sql.operators.sql import SQLCheckOperator

from imr import quality
from imr.config import CONN_WAREHOUSE
from imr_airflow.tasks import (
    plan,
    process_lane,
    publish,
    record_quality,
    record_sweep,
    release_claims,
)

# The run's id as a SQL literal, rendered by Airflow (sql is a template field); quotes doubled so no
# run id can end the literal.
RUN_ID_SQL = """'{{ run_id | replace("'", "''") }}'"""

# What every ingestion DAG passes to @dag (tests/dags/test_dag_validity.py asks each DAG for tags, an
# owner and retries in default_args). No retry unless a task asks for one: the tasks that read S3 or
# write the warehouse carry imr_airflow.tasks.RETRY; a failed quality gate or schema check is not
# fixed by running it again.
DEFAULT_ARGS = {"owner": "imr", "retries": 0}
COMMON_DAG_ARGS = {"default_args": DEFAULT_ARGS, "tags": ["imr"]}


def quality_gates(scope: str = quality.SCOPE_RUN) -> list:
    """One common-sql check operator per table judged: it reads the results the run recorded (the
    checks ran once, in record_quality or record_sweep), and a failing or unrecorded check fails its
    task, and so the run, in the UI, its log naming the check and the observed value.

    :param scope: the checks' scope (imr.quality.SCOPE_RUN or SCOPE_ARCHIVE), for their names.
    :return: the gate tasks.
    """
    return [
        SQLCheckOperator(
            task_id=f"gate_table_{table.split('.')[-1]}",
            conn_id=CONN_WAREHOUSE,
            sql=quality.gate_sql(names, RUN_ID_SQL),
            retries=0,  # a verdict, not an outage: trying again reads the same rows
        )
        for table, names in quality.names_by_table(run_id="run", scope=scope).items()
    ]


def ingest_tail(start):
    """Plan -> lanes -> quality record -> gates -> publish, with the claim release as the lanes'
    teardown. The gates follow the lanes too, so a failed lane leaves them upstream_failed while the
    results are still recorded.

    :param start: the DAG's first task(s).
    :return: the gate tasks, for what a DAG adds once a run passed them (beside publish, so no step
        is added to the run's end).
    """
    planned = plan()
    start >> planned
    lanes = process_lane.expand(spec=planned)
    recorded = record_quality()
    gates = quality_gates()
    lanes >> recorded >> gates
    lanes >> gates
    done = publish()
    gates >> done
    # A teardown: runs whatever happened upstream but does not decide the run's state. It follows the
    # lanes, not publish: once the lanes have ended there is nothing left to claim, and beside the
    # gates it costs the run no extra step.
    lanes >> release_claims().as_teardown(setups=planned)
    return gates


def sweep_tail(start) -> None:
    """imr_quality_sweep: the whole-archive checks recorded once, then their gates.

    :param start: the DAG's first task(s).
    """
    start >> record_sweep() >> quality_gates(quality.SCOPE_ARCHIVE)
