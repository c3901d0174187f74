"""bench/discovery_bench.py at toy sizes: its S3 endpoint lists every seeded key exactly once across
page boundaries (the indexed pages stand in for moto's own scan), and the counts it checks hold."""

from __future__ import annotations

import pytest

from discovery_bench import _expected_batches, run_discovery_bench

pytestmark = pytest.mark.integration


def test_discovery_bench_counts_every_key_once(services) -> None:
    res = run_discovery_bench((300, 2500))
    assert res["counts_ok"], res
    assert res["list_only"]["keys"] == 2500
    assert res["discover"]["2500"]["pending"] == res["discover"]["2500"]["manifest_rows"] == 2500
    assert res["rediscover"]["pending"] == 0
    # with 4 lanes: 1,700 keys in 9 batches of up to 200, the last 800 in 32 of 25 (the taper)
    assert res["plan"]["batches"] == _expected_batches(2500) > 2500 // 200
    assert res["rss_flat"]
