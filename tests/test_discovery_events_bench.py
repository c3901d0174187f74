"""bench/discovery_events_bench.py at a toy size: its endpoint lists the keys PUT after seeding (the
index follows them), its SQS delivers every notification, and the counts it checks hold."""

from __future__ import annotations

import pytest

from discovery_events_bench import run_events_bench

pytestmark = pytest.mark.integration


def test_events_bench_counts_hold_at_a_toy_size(services) -> None:
    res = run_events_bench(size=1500, new=23, lost=4)
    assert res["counts_ok"], res
    assert res["events"]["lists"] == 0 and res["events"]["pending"] == 23
    # 24 messages (with s3:TestEvent): 3 receives that got some, 1 empty; 3 delete batches
    assert res["events"]["ops"] == {"sqs:ReceiveMessage": 4, "sqs:DeleteMessageBatch": 3}
    assert res["listing"]["lists"] == 2 and res["listing"]["pending"] == 23
    assert (res["reconcile"]["listed"], res["reconcile"]["unseen"]) == (1527, 4)
