"""How the ingestion DAGs chain the tasks of imr_airflow.tasks: the common tail every DAG ends with
(plan, mapped lanes, quality record and gates, publish, claim release) and the SQL check operators
that gate a run. The DAG files in dags/ call `ingest_tail` after their own first tasks."""

from __future__ import annotations

from airflow.providers.common.sql.operators.sql import SQLColumnCheckOperator, SQLTableCheckOperator

from imr import quality
from imr.config import CONN_WAREHOUSE
from imr_airflow.tasks import plan, process_lane, publish, record_quality, release_claims

# What every ingestion DAG passes to @dag (tests/dags/test_dag_validity.py asks each DAG for tags, an
# owner and retries in default_args). No retry unless a task asks for one: the tasks that read S3 or
# write the warehouse carry imr_airflow.tasks.RETRY; a failed quality gate or schema check is not
# fixed by running it again.
DEFAULT_ARGS = {"owner": "imr", "retries": 0}
COMMON_DAG_ARGS = {"default_args": DEFAULT_ARGS, "tags": ["imr"]}


def quality_gates() -> list:
    """The common-sql check operators: a failing check fails its task, and so the run, in the UI."""
    gates = []
    for table, mapping in quality.column_mapping().items():
        gates.append(
            SQLColumnCheckOperator(
                task_id=f"gate_columns_{table.split('.')[-1]}",
                conn_id=CONN_WAREHOUSE,
                table=table,
                column_mapping=mapping,
            )
        )
    for table, checks in quality.table_checks(run_id="{{ run_id }}").items():
        gates.append(
            SQLTableCheckOperator(
                task_id=f"gate_table_{table.split('.')[-1]}",
                conn_id=CONN_WAREHOUSE,
                table=table,
                checks=checks,
            )
        )
    return gates


def ingest_tail(start) -> None:
    """Plan -> lanes -> (quality record | gates) -> publish, with the claim release as the lanes'
    teardown.
    Recording and the gates run side by side: they read the same tables, and a gate failing must
    not stop the results from being recorded."""
    planned = plan()
    start >> planned
    lanes = process_lane.expand(spec=planned)
    recorded = record_quality()
    gates = quality_gates()
    lanes >> [recorded, *gates]
    done = publish()
    [recorded, *gates] >> done
    # A teardown: runs whatever happened upstream but does not decide the run's state. It follows the
    # lanes, not publish: once the lanes have ended there is nothing left to claim, and beside the
    # gates it costs the run no extra step.
    lanes >> release_claims().as_teardown(setups=planned)
