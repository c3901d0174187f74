"""A run in progress, built through the real warehouse functions (register, claim, lease, load), for
the progress tests (tests/test_progress.py, tests/test_monitor_api.py). Only the timestamps are set
by hand, relative to a reference time T, so that counts, rate and ETA are known exactly.

Ten keys under backfill/ in batches of two, claimed by `run_id` at T - 600 s:

| batch | keys   | what happened                                        | finished  |
| ----- | ------ | ---------------------------------------------------- | --------- |
| 1     | 00, 01 | both loaded                                           | T - 400 s |
| 2     | 02, 03 | 02 loaded, 03 quarantined (no_text_layer)             | T - 200 s |
| 3     | 04, 05 | 04 a byte copy of 00 (duplicate), 05 changed in S3    | T - 100 s |
|       |        | before its download (back to pending)                 |           |
| 4     | 06, 07 | leased to a lane until T + 60 s                       | no        |
| 5     | 08, 09 | waiting for a lane                                    | no        |
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from imr import warehouse
from imr.enrich import enrich_letter
from imr.records import Item, Letter
from imr.warehouse import Failed, ObjectResult, Parsed

PREFIX = "backfill/"
KEYS = [f"{PREFIX}{n:02d}.pdf" for n in range(10)]
STARTED_S_AGO = 600
FINISHED_S_AGO = (400, 200, 100)
# What active_runs_progress must report at T.
EXPECTED_COUNTS = {"pending": 1, "processing": 4, "loaded": 3, "quarantined": 1, "duplicate": 1}
EXPECTED_BATCHES = {"total": 5, "finished": 3, "in_lanes": 1, "waiting": 1}


def letter(case: str) -> Letter:
    item = Item(seq=1, request=f"request for {case}", decision="Upheld", decision_rationale="rationale")
    let = Letter(
        case_number=case,
        date_assigned=date(2017, 1, 5),
        decision_date=date(2017, 2, 1),
        priority="Standard",
        items=[item],
        clinical_case_summary="The patient is a 54 year old female.",
    )
    return enrich_letter(let)


def _ok(key: str, case: str, sha: str | None = None) -> ObjectResult:
    return ObjectResult(key, f"{key}-etag", sha or f"sha-{key}", Parsed(letter(case)))


def _set(conn, sql: str, *args) -> None:
    with conn, conn.cursor() as cur:
        cur.execute(sql, args)


def seed_active_run(conn, bucket: str, run_id: str, t: datetime) -> list[int]:
    """The run of the table above on an upgraded warehouse; returns its batch ids."""
    objects = [{"key": k, "etag": f'"{k}-etag"', "size": 1000, "last_modified": None} for k in KEYS]
    warehouse.register_objects(conn, bucket, objects, run_id)
    b1, b2, b3, b4, _b5 = batches = warehouse.claim_batches(conn, bucket, run_id, batch_size=2, prefix=PREFIX)
    loads = {
        b1: ([_ok(KEYS[0], "CM16-0000100", sha="sha-same"), _ok(KEYS[1], "CM16-0000101")], ()),
        b2: (
            [
                _ok(KEYS[2], "CM16-0000102"),
                ObjectResult(KEYS[3], f"{KEYS[3]}-etag", "sha-3", Failed("no_text_layer", "scanned")),
            ],
            (),
        ),
        b3: ([_ok(KEYS[4], "CM16-0000100", sha="sha-same")], (KEYS[5],)),
    }
    for batch_id, (results, changed) in loads.items():
        warehouse.load_batch(
            conn, bucket, results, run_id, "process_lane", 0, batch_id=batch_id, changed=changed
        )
    assert warehouse.claim_next_batch(conn, run_id, f"{run_id}|0|1") == b4
    _set(
        conn,
        "UPDATE imr.batches SET created_at = %s WHERE run_id = %s",
        t - timedelta(seconds=STARTED_S_AGO),
        run_id,
    )
    for batch_id, ago in zip((b1, b2, b3), FINISHED_S_AGO, strict=True):
        _set(
            conn,
            "UPDATE imr.batches SET finished_at = %s WHERE batch_id = %s",
            t - timedelta(seconds=ago),
            batch_id,
        )
    _set(
        conn,
        "UPDATE imr.batches SET lease_expires_at = %s WHERE batch_id = %s",
        t + timedelta(seconds=60),
        b4,
    )
    return batches


def db_now(conn) -> datetime:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT now()")
        return cur.fetchone()[0]
