"""Discovery without relisting the archive: S3 ObjectCreated notifications, delivered to an SQS queue,
drained in bounded batches and registered into the manifest; and the periodic full listing that
reconciles whatever the notifications missed (docs/discovery.md). No Airflow: boto3 clients and a
psycopg2 connection in.

The events are hints, never the record: the manifest (imr.s3_objects) stays the one record of what
was seen. A message is deleted only after the manifest transaction that registered its objects has
committed, so a crash in between redelivers it, and registering it again changes nothing (the
upsert is idempotent on (bucket, key, ETag)). A notification S3 never sent, or one lost after it,
is found by reconcile(), which lists the prefix and registers what the manifest does not hold.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from imr import warehouse
from imr.s3_io import iter_pages

log = logging.getLogger(__name__)

# ReceiveMessage's own ceiling per call.
MAX_PER_RECEIVE = 10
# Long poll per call: the queue is drained while messages come back; one short wait on an empty
# answer tells a drained queue from SQS's sampling of its servers (a short poll may answer empty
# while messages exist).
WAIT_S = 1
# Messages a nightly run drains at most (the `events_max_messages` param): a flood (a bulk copy into
# the prefix) is left to the next runs, or to a backfill, rather than making one run unbounded.
DEFAULT_MAX_MESSAGES = 50_000
# The data-quality result the reconciliation records (imr.dq_results): objects found in the bucket
# that the manifest did not hold (missed hints). Recorded, never a gate: the listing has registered them.
UNSEEN_CHECK = "discovery_unseen_objects"


@dataclass
class DrainReport:
    """What drain_events did: messages received and deleted, S3 records used and skipped, objects
    that became pending, and SQS calls made (receive + delete) for the run's log and the bench."""

    messages: int = 0
    deleted: int = 0
    records: int = 0
    skipped: int = 0
    unreadable: int = 0
    pending: int = 0
    receive_calls: int = 0
    delete_calls: int = 0
    keys: set[str] = field(default_factory=set)

    def line(self) -> str:
        """One log line: counts only."""
        return (
            f"{self.messages} message(s) ({self.receive_calls} receive, {self.delete_calls} delete call(s)),"
            f" {self.records} object record(s), {len(self.keys)} distinct key(s), {self.pending} became"
            f" pending, {self.skipped} record(s) skipped, {self.unreadable} unreadable message(s)"
        )


def _event_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _s3_records(body: str) -> list[dict] | None:
    """The `Records` of an S3 notification message body (also wrapped in an SNS notification, for
    a bucket that publishes to a topic the queue subscribes to); [] for s3:TestEvent; None when
    the body is not an S3 notification."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return None
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return _s3_records(doc["Message"])
    if not isinstance(doc, dict):
        return None
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = doc.get("Records")
    return records if isinstance(records, list) else None


def parse_message(body: str, bucket: str, prefix: str = "") -> tuple[list[dict], int] | None:
    """The objects an S3 notification message announces, as the manifest registers them.

    Only ObjectCreated records of `bucket` whose key (URL-decoded: S3 sends keys form-encoded, a
    space as "+") ends in .pdf and starts with `prefix` count; the others are skipped.

    :param body: the SQS message body.
    :param bucket: the bucket whose objects are registered.
    :param prefix: the key prefix registered.
    :return: ({key, etag, size, last_modified} dicts, records skipped), or None when the body is not
        an S3 notification at all.
    """
    records = _s3_records(body)
    if records is None:
        return None
    objects, skipped = [], 0
    for rec in records:
        s3 = rec.get("s3") if isinstance(rec, dict) else None
        obj = (s3 or {}).get("object") or {}
        key = unquote_plus(obj.get("key") or "")
        if (
            not str(rec.get("eventName", "")).startswith("ObjectCreated:")
            or (s3.get("bucket") or {}).get("name") != bucket
            or not key.lower().endswith(".pdf")
            or not key.startswith(prefix)
            or not obj.get("eTag")
        ):
            skipped += 1
            continue
        objects.append(
            {
                "key": key,
                "etag": str(obj["eTag"]).strip('"'),
                "size": obj.get("size"),
                "last_modified": _event_time(rec.get("eventTime")),
            }
        )
    return objects, skipped


def _newest_per_key(objects: list[dict]) -> list[dict]:
    """One object per key, the latest event's (two uploads of a key in one batch)."""
    newest: dict[str, dict] = {}
    for o in objects:
        seen = newest.get(o["key"])
        if seen is None or (o["last_modified"] or datetime.min.replace(tzinfo=UTC)) >= (
            seen["last_modified"] or datetime.min.replace(tzinfo=UTC)
        ):
            newest[o["key"]] = o
    return list(newest.values())


def _receive(sqs, queue_url: str, limit: int, visibility_s: int | None) -> list[dict]:
    kwargs: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": max(1, min(MAX_PER_RECEIVE, limit)),
        "WaitTimeSeconds": WAIT_S,
    }
    if visibility_s is not None:
        kwargs["VisibilityTimeout"] = visibility_s
    return sqs.receive_message(**kwargs).get("Messages", [])


def _delete(sqs, queue_url: str, messages: list[dict]) -> int:
    """DeleteMessageBatch; a message whose delete failed is only redelivered later (harmless)."""
    resp = sqs.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
    )
    failed = resp.get("Failed", [])
    if failed:
        log.warning("%d message delete(s) failed; they will be redelivered: %s", len(failed), failed[:3])
    return len(resp.get("Successful", []))


def drain_events(
    sqs,
    queue_url: str,
    conn,
    bucket: str,
    prefix: str,
    run_id: str,
    *,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    visibility_s: int | None = None,
) -> DrainReport:
    """Receive the queue's S3 notifications in batches of up to 10 until it answers empty or
    `max_messages` were received; register each batch's objects in one manifest transaction, then
    delete that batch's messages.

    :param sqs: a boto3 SQS client.
    :param queue_url: the queue the bucket notifies.
    :param conn: a warehouse connection.
    :param bucket: the bucket registered (records of other buckets are skipped, their messages
        deleted: the reconciliation listing is what answers for any bucket).
    :param prefix: the key prefix registered.
    :param run_id: the run registering the objects.
    :param max_messages: stop after receiving this many messages (the rest wait for the next run).
    :param visibility_s: the messages' visibility timeout (seconds); None: the queue's own. It must
        outlast one batch's registration, or a message could be received twice in one drain (harmless).
    :return: the counts.
    """
    report = DrainReport()
    while report.messages < max_messages:
        messages = _receive(sqs, queue_url, max_messages - report.messages, visibility_s)
        report.receive_calls += 1
        if not messages:
            break
        report.messages += len(messages)
        objects: list[dict] = []
        for m in messages:
            parsed = parse_message(m.get("Body", ""), bucket, prefix)
            if parsed is None:
                # Not an S3 notification: nothing to register, and redelivering it would only make it
                # come back every night (a redrive policy's dead-letter queue would keep it instead).
                report.unreadable += 1
                continue
            objects += parsed[0]
            report.skipped += parsed[1]
        report.records += len(objects)
        report.keys.update(o["key"] for o in objects)
        if objects:
            # Committed before any delete below: a crash between the two redelivers the batch.
            got = warehouse.register_events(conn, bucket, _newest_per_key(objects), run_id)
            report.pending += got.new + got.changed
        report.deleted += _delete(sqs, queue_url, messages)
        report.delete_calls += 1
    return report


@dataclass
class Reconciliation:
    """What a reconciliation listing found: objects listed, those the manifest did not hold
    (`unseen`: the hints missed them) and those whose ETag had changed unnoticed."""

    listed: int = 0
    unseen: int = 0
    changed: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """One log line: counts only."""
        return (
            f"reconciliation listed {self.listed} object(s) in {self.seconds:.1f} s: {self.unseen} not in"
            f" the manifest, {self.changed} changed unnoticed (both now pending)"
        )


def reconcile(
    s3_client, conn, bucket: str, prefix: str, run_id: str, page_size: int = 1000
) -> Reconciliation:
    """List the whole prefix and register every object the manifest lacks or holds with another ETag
    (pending, for the next run to load): after it, every object of the prefix is in the manifest,
    whatever notifications were lost.

    :param s3_client: a boto3 S3 client.
    :param conn: a warehouse connection.
    :param bucket: the bucket listed.
    :param prefix: the key prefix listed.
    :param run_id: the run registering what was missing.
    :param page_size: keys per ListObjectsV2 page (and per manifest transaction).
    :return: the counts.
    """
    started = time.perf_counter()
    out = Reconciliation()
    for page in iter_pages(s3_client, bucket, prefix, page_size=page_size):
        out.listed += len(page)
        got = warehouse.register_counted(conn, bucket, page, run_id, page_size=page_size)
        out.unseen += got.new
        out.changed += got.changed
    out.seconds = time.perf_counter() - started
    return out
