"""A night's writes on a warehouse of archive shape read the big tables by their keys only
(issue 18): one lane's path, from discovery's registration through the lease, the load and the
Insights refresh, adds no sequential scan of the manifest, letters, items or citations. A scan
there costs the whole archive on every batch (the manifest lock of `merge.match_manifest` read
all 1.7 M manifest rows per batch: 254 ms a batch, 5.2 s of a night's 20 batches). On a small
warehouse a scan is also what the planner picks when it guesses a staging table's size, so the
loader analyses its staging tables; this test, on 20,000 letters, fails without that too."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

import quality_scope  # bench/ is on pytest's pythonpath (pyproject.toml)
from imr import warehouse
from support.builders import BUCKET, CPMT, ODG, item, make, obj, ok

pytestmark = pytest.mark.integration

BIG_TABLES = quality_scope.BIG_TABLES


def seq_scans(conn) -> dict[str, int]:
    """Sequential scans so far of each big table, this backend's own included."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, at commit
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT relname, seq_scan FROM pg_stat_user_tables"
            " WHERE schemaname = 'imr' AND relname = ANY(%s)",
            (list(BIG_TABLES),),
        )
        return dict(cur.fetchall())


def test_a_night_reads_the_archive_by_its_keys(wh_conn):
    conn = wh_conn
    quality_scope.generate(conn, 20_000, 0)  # ANALYZEd, as autovacuum keeps a warehouse
    warehouse.rebuild_insights(conn)
    night = [
        make(
            f"CM26-{n:07d}",
            date(2020, 11, 1) + timedelta(days=n % 5),
            date(2020, 10, 1),
            None,
            "Standard",
            "Pain Management",
            [
                item(1, "Pharmaceuticals", "Opioids", "Upheld", [CPMT]),
                item(2, "Surgery", "Spine", "Overturned", [ODG]),
            ],
        )
        for n in range(50)
    ]
    keys = [f"night/{let.case_number}.pdf" for let in night]
    before = seq_scans(conn)

    warehouse.register_objects(conn, BUCKET, [obj(k) for k in keys], "night")
    warehouse.claim_batches(conn, BUCKET, "night", batch_size=25)
    loaded = 0
    while (
        batch_id := warehouse.claim_next_batch(conn, "night", "night|0|1", warehouse.DEFAULT_LEASE)
    ) is not None:
        batch = warehouse.get_batch(conn, batch_id)
        outcomes = [ok(o.key, night[keys.index(o.key)], etag=o.etag) for o in batch.objects]
        load = warehouse.load_batch(
            conn, BUCKET, outcomes, "night", "load", 0, batch_id=batch_id, lease_owner="night|0|1"
        )
        loaded += load.loaded
    refreshed = warehouse.refresh_insights(conn)

    assert loaded == 50 and refreshed.letters_added == 50
    after = seq_scans(conn)
    assert {t: after[t] - before[t] for t in BIG_TABLES} == dict.fromkeys(BIG_TABLES, 0)
