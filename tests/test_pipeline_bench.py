"""bench/pipeline_bench.py's breakdown of a run's fixed part (issue 18), on a run as the metadata DB
records it: task instances with scheduled, start and end times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imr_devtools.airflow_runner import DagRun, TaskInstance

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _ti(task_id: str, start: float, end: float, map_index: int = -1, scheduled: float | None = None):
    sched = _at(start - 0.1 if scheduled is None else scheduled)
    return TaskInstance(task_id, map_index, "success", 1, _at(start), _at(end), sched)


def test_fixed_part_splits_into_tasks_and_gaps() -> None:
    from pipeline_bench import phase_breakdown  # bench/ (pytest's pythonpath, pyproject.toml)

    tis = [
        _ti("discover", 1.0, 3.0, scheduled=0.0),  # the run begins when its first task is scheduled
        _ti("plan", 3.5, 4.0),
        _ti("process_lane", 5.0, 20.0, 0),
        _ti("process_lane", 5.5, 21.0, 1),
        _ti("record_quality", 22.0, 23.0),
        _ti("release_claims", 22.0, 22.5),  # overlaps record_quality: counted once
        _ti("gate_table_letters", 23.5, 24.0),
        _ti("publish", 24.5, 25.0),
    ]
    run = DagRun("imr_backfill", "r", "success", _at(-30), _at(25.2), tis)
    b = phase_breakdown(run)
    assert b["before_first_lane_s"] == pytest.approx(5.0)
    assert b["before_tasks_s"] == pytest.approx(2.5)  # discover 2.0 + plan 0.5
    assert b["before_gaps_s"] == pytest.approx(2.5)
    assert b["lanes_s"] == pytest.approx(16.0)
    assert b["lane_start_spread_s"] == pytest.approx(0.5)
    assert b["lane_end_spread_s"] == pytest.approx(1.0)
    assert b["after_last_lane_s"] == pytest.approx(4.2)
    assert b["after_tasks_s"] == pytest.approx(2.0)  # record 1.0, gate 0.5, publish 0.5
    assert b["after_gaps_s"] == pytest.approx(2.2)
