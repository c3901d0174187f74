"""Discovery from S3 notifications (imr.discovery, docs/discovery.md) on the real local engines: moto's
server delivers the bucket's ObjectCreated events to its SQS queue, the drain registers them in the
embedded PostgreSQL's manifest, and the reconciliation listing finds what no event announced."""

from __future__ import annotations

import json
import os
import random
import time
import uuid

import pytest

import imr_synth
from imr import discovery, warehouse
from imr_devtools import events
from imr_devtools.faultproxy import FaultProxy
from support.airflow_run import run_dag, task_states
from support.e2e import count, dq_results, query, upload

pytestmark = [pytest.mark.integration]

PREFIX = "letters/"


@pytest.fixture(scope="module")
def sqs_client(services):
    return events.sqs_client(services)


@pytest.fixture
def queue(sqs_client, s3_client, bucket):
    """A queue of the test's own that the test bucket's ObjectCreated events under letters/ go to:
    (url, arn)."""
    url, arn = events.create_queue(sqs_client, f"imr-events-{uuid.uuid4().hex[:12]}")
    events.notify(s3_client, bucket, arn, PREFIX)
    yield url, arn
    sqs_client.delete_queue(QueueUrl=url)


def _letters(n: int, seed: str) -> dict[str, bytes]:
    rng = random.Random(seed)
    out = {}
    for _ in range(n):
        truth, pdf = imr_synth.random_letter(rng)
        out[f"{PREFIX}{truth.case_number}.pdf"] = pdf
    return out


def _tiny(n: int, tag: str) -> dict[str, bytes]:
    """Objects whose bytes differ (so do their ETags); the drain never reads them."""
    return {f"{PREFIX}{tag}/{i:04d}.pdf": f"%PDF-1.4 {tag} {i}".encode() for i in range(n)}


def _manifest(conn) -> dict[str, tuple[str, str]]:
    return {k: (e, r) for k, e, r in query(conn, "SELECT key, etag, first_run_id FROM imr.s3_objects")}


# --------------------------------------------------------------------------- parsing


def _event(key: str, name: str = "ObjectCreated:Put", bucket: str = "b", etag: str = "abc") -> dict:
    return {
        "eventName": name,
        "eventTime": "2026-12-03T02:00:01.250Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 7, "eTag": etag}},
    }


def test_parse_message_decodes_keys_and_skips_what_is_not_a_new_letter() -> None:
    body = json.dumps(
        {
            "Records": [
                _event("letters/a+b%2Bc.pdf"),  # S3's form encoding: space as +, + as %2B
                _event("letters%2FCM16%20x.PDF"),
                _event("letters/notes.txt"),
                _event("other/x.pdf"),
                _event("letters/gone.pdf", name="ObjectRemoved:Delete"),
                _event("letters/elsewhere.pdf", bucket="another"),
            ]
        }
    )
    objects, skipped = discovery.parse_message(body, "b", PREFIX)
    assert [o["key"] for o in objects] == ["letters/a b+c.pdf", "letters/CM16 x.PDF"]
    assert objects[0]["etag"] == "abc" and objects[0]["size"] == 7
    assert objects[0]["last_modified"].isoformat() == "2026-12-03T02:00:01.250000+00:00"
    assert skipped == 4
    assert discovery.parse_message(json.dumps({"Event": "s3:TestEvent", "Bucket": "b"}), "b") == ([], 0)
    sns = json.dumps({"Type": "Notification", "Message": json.dumps({"Records": [_event("letters/s.pdf")]})})
    assert [o["key"] for o in discovery.parse_message(sns, "b", PREFIX)[0]] == ["letters/s.pdf"]
    assert discovery.parse_message("not json", "b") is None
    assert discovery.parse_message(json.dumps({"hello": 1}), "b") is None


# --------------------------------------------------------------------------- the drain


def test_drain_registers_each_notified_letter_once_and_empties_the_queue(
    wh_conn, s3_client, sqs_client, bucket, queue
) -> None:
    url, _ = queue
    files = _tiny(23, "new")
    upload(s3_client, bucket, files)
    upload(s3_client, bucket, {f"{PREFIX}readme.txt": b"x", "elsewhere/x.pdf": b"y"})  # filtered out by S3
    # moto sends s3:TestEvent when the configuration is set, then one message per matching upload.
    assert events.queue_depth(sqs_client, url) == 1 + len(files)

    report = discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "run-1")
    assert (report.messages, report.deleted, report.records, report.pending) == (24, 24, 23, 23)
    assert report.keys == set(files)
    # ceil(24 / 10) receives with messages, one that answers empty; a delete per non-empty receive.
    assert (report.receive_calls, report.delete_calls) == (4, 3)
    assert events.queue_depth(sqs_client, url) == 0
    listed = {o["Key"]: o["ETag"].strip('"') for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {k: e for k, (e, _) in _manifest(wh_conn).items()} == {k: listed[k] for k in files}

    # The same object uploaded again with the same bytes: one message, nothing newly pending.
    key = next(iter(files))
    s3_client.put_object(Bucket=bucket, Key=key, Body=files[key])
    again = discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "run-2")
    assert (again.messages, again.records, again.pending) == (1, 1, 0)
    assert count(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE last_run_id = 'run-2'") == 0


def test_drain_stops_at_its_cap_and_leaves_the_rest_queued(
    wh_conn, s3_client, sqs_client, bucket, queue
) -> None:
    url, _ = queue
    upload(s3_client, bucket, _tiny(30, "cap"))
    first = discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "run-1", max_messages=15)
    assert first.messages == 15 and first.receive_calls == 2
    assert events.queue_depth(sqs_client, url) == 31 - 15
    rest = discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "run-2")
    assert first.pending + rest.pending == 30
    assert count(wh_conn, "SELECT count(*) FROM imr.s3_objects") == 30


def test_crash_between_registration_and_delete_redelivers_and_registers_nothing_twice(
    wh_conn, s3_client, sqs_client, bucket, queue
) -> None:
    url, _ = queue
    files = _tiny(25, "crash")
    upload(s3_client, bucket, files)

    def die(**_):
        raise SystemExit("worker killed after the manifest commit, before the delete")

    # The crash is the one fault injected: the real client, the real queue and the real manifest.
    sqs_client.meta.events.register("before-call.sqs.DeleteMessageBatch", die, unique_id="crash")
    try:
        with pytest.raises(SystemExit):
            discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "run-crashed", visibility_s=1)
    finally:
        sqs_client.meta.events.unregister("before-call.sqs.DeleteMessageBatch", unique_id="crash")
    committed = _manifest(wh_conn)
    assert 0 < len(committed) <= 10  # the first batch's registration committed
    assert events.queue_depth(sqs_client, url) == 26  # nothing was deleted

    time.sleep(1.5)  # the crashed receive's visibility timeout ends: its messages come back
    rerun = discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "run-rerun")
    assert rerun.messages == 26 and rerun.records == 25
    assert rerun.pending == 25 - len(committed)  # the redelivered ones changed nothing
    after = _manifest(wh_conn)
    assert set(after) == set(files)
    assert {k: after[k] for k in committed} == committed  # still first registered by the crashed run
    assert events.queue_depth(sqs_client, url) == 0


def test_a_late_event_for_an_older_version_does_not_replace_the_newer_one(
    wh_conn, s3_client, sqs_client, bucket, queue
) -> None:
    url, _ = queue
    key = f"{PREFIX}replaced.pdf"
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"%PDF-1.4 v1")
    time.sleep(1.1)  # LastModified has whole seconds on some endpoints
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"%PDF-1.4 v2")
    v2 = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    # A listing registered v2 before the drain saw either event (the queue holds v1's and v2's).
    discovery.reconcile(s3_client, wh_conn, bucket, PREFIX, "listing")
    drained = discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "nightly")
    assert drained.records == 2 and drained.pending == 0
    assert _manifest(wh_conn) == {key: (v2, "listing")}


def test_reconciliation_finds_the_objects_no_event_announced(
    wh_conn, s3_client, sqs_client, bucket, queue
) -> None:
    url, _ = queue
    notified = _tiny(12, "seen")
    upload(s3_client, bucket, notified)
    events.notify(s3_client, bucket, None)  # notifications off: the next uploads' events are lost
    lost = _tiny(7, "lost")
    upload(s3_client, bucket, lost)
    replaced = next(iter(notified))
    s3_client.put_object(Bucket=bucket, Key=replaced, Body=b"%PDF-1.4 replaced")

    drained = discovery.drain_events(sqs_client, url, wh_conn, bucket, PREFIX, "nightly")
    assert drained.pending == 12
    assert set(_manifest(wh_conn)) == set(notified)

    found = discovery.reconcile(s3_client, wh_conn, bucket, PREFIX, "sweep", page_size=5)
    assert (found.listed, found.unseen, found.changed) == (19, 7, 1)
    assert set(_manifest(wh_conn)) == set(notified) | set(lost)
    pending_by_sweep = query(
        wh_conn, "SELECT key FROM imr.s3_objects WHERE last_run_id = 'sweep' AND status = 'pending'"
    )
    assert {k for (k,) in pending_by_sweep} == set(lost) | {replaced}

    again = discovery.reconcile(s3_client, wh_conn, bucket, PREFIX, "sweep-2")
    assert (again.listed, again.unseen, again.changed) == (19, 0, 0)


def test_register_counted_tells_new_keys_from_changed_ones(wh_conn) -> None:
    objs = [{"key": f"k{i}.pdf", "etag": f"e{i}", "size": 1, "last_modified": None} for i in range(5)]
    assert warehouse.register_counted(wh_conn, "b", objs, "r1", page_size=2) == (5, 0)
    objs[0]["etag"] = "changed"
    assert warehouse.register_counted(wh_conn, "b", [*objs, {"key": "k9.pdf", "etag": "x"}], "r2") == (1, 1)
    assert warehouse.register_counted(wh_conn, "b", objs, "r3") == (0, 0)


# --------------------------------------------------------------------------- the DAGs


@pytest.mark.e2e
def test_nightly_in_events_mode_lists_nothing_and_the_sweep_reconciles_a_lost_event(
    pg_dsn, wh_conn, services, s3_client, sqs_client, bucket, queue
) -> None:
    url, _ = queue
    letters = _letters(8, "events-e2e")
    upload(s3_client, bucket, letters)
    aws = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    with FaultProxy(services["IMR_S3_ENDPOINT_URL"], fault_rate=0.0) as proxy:
        aws["extra"]["endpoint_url"] = proxy.url  # every S3 and SQS call of the run is counted
        env = {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws), "AIRFLOW_VAR_IMR_EVENTS_QUEUE_URL": url}
        nightly = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, extra_env=env)
        ops = proxy.operations()
    assert nightly.state == "success", nightly.log[-3000:]
    assert "discovery from events: 9 message(s)" in nightly.log
    # 9 messages (the test event and 8 letters): receives of 9 then of none; one delete batch.
    assert ops.get("sqs:ReceiveMessage") == 2 and ops.get("sqs:DeleteMessageBatch") == 1, ops
    assert ops.get("s3:ListObjectsV2", 0) + ops.get("s3:ListObjects", 0) == 0, ops
    assert ops.get("s3:GET") == len(letters), ops  # the lanes' downloads, one per letter
    assert events.queue_depth(sqs_client, url) == 0
    assert count(wh_conn, "SELECT count(*) FROM imr.letters") == len(letters)
    assert dict(query(wh_conn, "SELECT status, count(*) FROM imr.s3_objects GROUP BY status")) == {
        "loaded": len(letters)
    }

    events.notify(s3_client, bucket, None)
    lost = _letters(3, "lost-e2e")
    upload(s3_client, bucket, lost)
    sweep = run_dag("imr_quality_sweep", warehouse_dsn=pg_dsn, bucket=bucket, migrate=False)
    assert sweep.state == "success", sweep.log[-3000:]
    assert task_states(sweep)[("reconcile_listing", -1)][0] == "success"
    assert "reconciliation listed 11 object(s)" in sweep.log and "3 not in the manifest" in sweep.log
    assert dq_results(wh_conn, sweep.run_id)["discovery_unseen_objects"] is False
    observed = query(
        wh_conn,
        "SELECT observed_numeric FROM imr.dq_results"
        " WHERE run_id = %s AND check_name = 'discovery_unseen_objects'",
        (sweep.run_id,),
    )
    assert observed == [(3,)]
    pending = query(wh_conn, "SELECT key FROM imr.s3_objects WHERE status = 'pending'")
    assert {k for (k,) in pending} == set(lost)
