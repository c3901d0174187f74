"""The production topology, executed: imr_ingest_nightly triggered over the REST API on the native
stack (CeleryExecutor, two workers in their own process groups, the warehouse as imr_app)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from stackcheck import assert_exact, make_sample, upload


def worker_of_lanes(stack: dict[str, str], run_id: str) -> dict[str, set[int]]:
    """Which worker ran which lane, from the workers' own logs (both share this machine's hostname)."""
    logs = Path(stack["IMR_STACK_DIR"]) / "logs"
    out: dict[str, set[int]] = {}
    for worker in ("worker-1", "worker-2"):
        text = (logs / f"{worker}.log").read_text(errors="replace")
        found = re.findall(
            rf"task_id='process_lane'[^\n]*?run_id='{re.escape(run_id)}'[^\n]*?map_index=(\d+)", text
        )
        out[worker] = {int(i) for i in found}
    return out


def test_nightly_over_rest_on_two_workers(stack, api, s3, owner, prefix, tmp_path) -> None:
    sample = make_sample(tmp_path, prefix, count=110, seed=random.randrange(10**9))
    upload(s3, stack["IMR_BUCKET"], sample)
    conf = {"prefix": prefix, "batch_size": 20, "timeout_s": 5, "max_lanes": 6}
    run_id = api.trigger("imr_ingest_nightly", conf)
    assert api.wait("imr_ingest_nightly", run_id) == "success"

    tis = api.task_instances("imr_ingest_nightly", run_id)
    lanes = [t for t in tis if t["task_id"] == "process_lane"]
    assert len(lanes) == 6 and all(t["state"] == "success" for t in lanes)
    by_worker = worker_of_lanes(stack, run_id)
    assert by_worker["worker-1"] and by_worker["worker-2"], by_worker
    assert by_worker["worker-1"] | by_worker["worker-2"] == {t["map_index"] for t in lanes}
    assert_exact(owner, sample, [run_id])
