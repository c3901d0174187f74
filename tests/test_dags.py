"""The DAG files import cleanly and are wired the way operators rely on (ids, schedule, params, pool,
mapping by lanes, gates)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.dagbag import dag_bag

REPO = Path(__file__).resolve().parents[1]
INGEST_DAG_IDS = {"imr_ingest_nightly", "imr_backfill", "imr_reprocess_failures"}
DAG_IDS = INGEST_DAG_IDS | {"imr_quality_sweep"}


@pytest.fixture(scope="module")
def dagbag():
    return dag_bag()


def test_dagbag_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == DAG_IDS | {"imr_relabel"}


def test_relabel_dag_is_thin_and_documented(dagbag) -> None:
    dag = dagbag.dags["imr_relabel"]
    assert dag.schedule is None and dag.max_active_runs == 1 and dag.doc_md
    assert {"batch_letters", "force"} <= set(dag.params) and "labels" in dag.tags
    relabel = dag.get_task("relabel_items")
    assert relabel.pool == "imr_warehouse" and relabel.retries >= 1 and relabel.owner == "imr"
    assert dag.get_task("check_schema").downstream_task_ids == {"relabel_items"}


def test_schedules_and_params(dagbag) -> None:
    nightly = dagbag.dags["imr_ingest_nightly"]
    assert nightly.schedule == "0 2 * * *"  # 02:00 UTC, Airflow's default timezone
    assert nightly.params["batch_size"] == 200
    backfill = dagbag.dags["imr_backfill"]
    assert backfill.schedule is None  # triggered by hand
    assert {"prefix", "modified_since", "modified_until", "batch_size", "reparse"} <= set(backfill.params)
    assert {"error_codes", "keys"} <= set(dagbag.dags["imr_reprocess_failures"].params)


@pytest.mark.parametrize("dag_id", sorted(INGEST_DAG_IDS))
def test_parse_work_is_mapped_over_lanes_in_the_writer_pool(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    lane = dag.get_task("process_lane")
    assert lane.pool == "imr_warehouse"
    assert lane.map_index_template == "{{ lane_label }}"
    assert lane.retries >= 1 and lane.retry_exponential_backoff
    gates = [t for t in dag.tasks if t.task_id.startswith("gate_")]
    # The gates read what record_quality recorded: the checks run once per run.
    assert {type(g).__name__ for g in gates} == {"SQLCheckOperator"}
    assert all("imr.dq_results" in g.sql and "{{ run_id" in g.sql for g in gates)
    assert all("record_quality" in g.upstream_task_ids for g in gates)
    publish = dag.get_task("publish")
    assert {g.task_id for g in gates} <= publish.upstream_task_ids
    assert [a.name for a in publish.outlets] == ["imr_letters"]
    release = dag.get_task("release_claims")
    assert release.is_teardown
    # Released as soon as the lanes end, beside the gates, not one more step after publish.
    assert "process_lane" in release.upstream_task_ids and "publish" not in release.upstream_task_ids


@pytest.mark.parametrize("dag_id", sorted(INGEST_DAG_IDS))
def test_one_task_before_the_plan(dagbag, dag_id: str) -> None:
    """Issue 18: every task before the lanes costs the run a task start and a scheduling step, so the
    schema check runs inside the first task (imr_airflow.tasks.require_schema), not as a task."""
    dag = dagbag.dags[dag_id]
    first = "requeue" if dag_id == "imr_reprocess_failures" else "discover"
    assert dag.get_task("plan").upstream_task_ids == {first}
    assert dag.get_task(first).upstream_task_ids == set()
    assert "check_schema" not in dag.task_ids


def test_dag_files_stay_thin() -> None:
    """Business logic lives in include/imr; DAG files only import wiring."""
    for path in (REPO / "dags").glob("*.py"):
        text = path.read_text()
        assert "psycopg2" not in text and "boto3" not in text and "pdfminer" not in text, path
        assert len(text.splitlines()) < 60, path


def test_quality_sweep_runs_weekly_and_after_a_reparse(dagbag) -> None:
    sweep = dagbag.dags["imr_quality_sweep"]
    assert sweep.timetable.timetable.expression == "0 4 * * 0"  # Sundays 04:00 UTC
    assert sweep.timetable.asset_condition.name == "imr_letters_reparsed"
    assert sweep.max_active_runs == 1 and sweep.owner == "imr" and sweep.doc_md
    record = sweep.get_task("record_sweep")
    gates = [t for t in sweep.tasks if t.task_id.startswith("gate_")]
    assert gates and all(g.upstream_task_ids == {"record_sweep"} for g in gates)
    # The reconciliation listing first (docs/discovery.md), so the checks judge what it registered too.
    assert record.upstream_task_ids == {"reconcile_listing"}
    assert sweep.get_task("reconcile_listing").upstream_task_ids == {"check_schema"}
    backfill = dagbag.dags["imr_backfill"]
    announce = backfill.get_task("announce_reparse")
    assert [a.name for a in announce.outlets] == ["imr_letters_reparsed"]
    # After the gates passed, beside publish: no extra step at the run's end.
    assert announce.upstream_task_ids == backfill.get_task("publish").upstream_task_ids
    assert announce.upstream_task_ids == {t.task_id for t in backfill.tasks if t.task_id.startswith("gate_")}


def test_every_dag_alerts_on_failure_and_the_scheduled_ones_have_deadlines(dagbag) -> None:
    from airflow.sdk.definitions.deadline import AverageRuntimeDeadline, DagRunLogicalDateDeadline

    from imr_airflow.alerting import RunFailureNotifier

    for dag in dagbag.dags.values():
        assert isinstance(dag.on_failure_callback, RunFailureNotifier), dag.dag_id
    (nightly,) = dagbag.dags["imr_ingest_nightly"].deadline
    assert isinstance(nightly.reference, DagRunLogicalDateDeadline)
    assert nightly.interval.total_seconds() == 240 * 60
    assert nightly.callback.path == "imr_airflow.alerting.deadline_missed"
    (backfill,) = dagbag.dags["imr_backfill"].deadline
    assert isinstance(backfill.reference, AverageRuntimeDeadline) and backfill.reference.min_runs == 3
    assert not dagbag.dags["imr_reprocess_failures"].deadline


@pytest.mark.parametrize("dag_id", sorted(INGEST_DAG_IDS))
def test_a_trigger_past_the_params_maxima_is_refused(dagbag, dag_id: str) -> None:
    """Finding 5 of issue 15: Airflow validates a trigger's conf against the params' JSON schema when
    it creates the run (SerializedDAG.create_dagrun: params.deep_merge(conf).validate(), what the REST
    API and the UI's trigger call); a timeout_s, batch_size or lease_s past its maximum is refused."""
    from airflow.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    from imr_airflow.params import MAX_BATCH_SIZE, MAX_LEASE_S, MAX_TIMEOUT_S

    dag = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id]))
    dag.params.deep_merge({"timeout_s": MAX_TIMEOUT_S, "batch_size": MAX_BATCH_SIZE}).validate()
    for name, value in {
        "timeout_s": MAX_TIMEOUT_S + 1,
        "batch_size": MAX_BATCH_SIZE + 1,
        "lease_s": MAX_LEASE_S + 1,
    }.items():
        with pytest.raises(ParamValidationError, match=name):
            dag.params.deep_merge({name: value}).validate()
    with pytest.raises(ParamValidationError, match="timeout_s"):
        dag.params.deep_merge({"timeout_s": 10**9}).validate()


def test_the_sweeps_param_is_bounded(dagbag) -> None:
    from airflow.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    assert set(dagbag.dags["imr_quality_sweep"].params) == {"settle_hours", "reconcile_listing"}
    sweep = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags["imr_quality_sweep"]))
    with pytest.raises(ParamValidationError, match="settle_hours"):
        sweep.params.deep_merge({"settle_hours": -1}).validate()


def test_the_nightly_discovery_mode_is_one_of_three(dagbag) -> None:
    from airflow.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    nightly = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags["imr_ingest_nightly"]))
    assert nightly.params["discovery"] == "auto"  # events only where the queue Variable is set
    for mode in ("auto", "events", "listing"):
        nightly.params.deep_merge({"discovery": mode}).validate()
    with pytest.raises(ParamValidationError, match="discovery"):
        nightly.params.deep_merge({"discovery": "inventory"}).validate()
    with pytest.raises(ParamValidationError, match="events_max_messages"):
        nightly.params.deep_merge({"events_max_messages": 0}).validate()
    assert "discovery" not in dagbag.dags["imr_backfill"].params  # the backfill always lists
