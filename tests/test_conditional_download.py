"""An object replaced between listing and download (issue 8, fault 6), on the embedded PostgreSQL and
the S3 endpoint: the download is conditional on the manifest's ETag, so the new bytes are never
loaded under the listed ETag, and the key waits, pending, for the discovery that lists its new ETag."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

import imr_synth as synth
from imr import pipeline, warehouse
from imr.parse.workers import ParserPool
from imr.s3_io import get_object_bytes, iter_pages

pytestmark = pytest.mark.integration


def _discover(conn, s3, bucket: str, run_id: str) -> int:
    return sum(warehouse.register_objects(conn, bucket, page, run_id) for page in iter_pages(s3, bucket))


def _rows(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_the_endpoint_honours_if_match(s3_client, bucket) -> None:
    """The guarantee rests on S3 (here moto) refusing a GET whose If-Match names another version."""
    put = s3_client.put_object(Bucket=bucket, Key="letters/a.pdf", Body=b"%PDF-1 first")
    assert get_object_bytes(s3_client, bucket, "letters/a.pdf", 100, etag=put["ETag"].strip('"'))
    s3_client.put_object(Bucket=bucket, Key="letters/a.pdf", Body=b"%PDF-1 second")
    with pytest.raises(ClientError) as err:
        get_object_bytes(s3_client, bucket, "letters/a.pdf", 100, etag=put["ETag"])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"


def test_object_replaced_after_listing_is_left_to_the_next_discovery(wh_conn, s3_client, bucket) -> None:
    rng = random.Random("if-match")
    letters = {f"letters/{c}.pdf": (t, pdf) for c, (t, pdf) in ((i, synth.random_letter(rng)) for i in "abc")}
    for key, (_, pdf) in letters.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=pdf)
    assert _discover(wh_conn, s3_client, bucket, "run1") == 3
    (batch_id,) = warehouse.claim_batches(wh_conn, bucket, "run1", batch_size=10)
    listed_etag = dict(_rows(wh_conn, "SELECT key, etag FROM imr.s3_objects"))["letters/b.pdf"]

    # Replaced after run1 listed and claimed it: a different letter (another case) under the same key.
    new_truth, new_pdf = synth.random_letter(rng)
    new_etag = s3_client.put_object(Bucket=bucket, Key="letters/b.pdf", Body=new_pdf)["ETag"].strip('"')
    assert new_etag != listed_etag

    with ParserPool(1) as pool:
        report = pipeline.ingest_batch(s3_client, wh_conn, batch_id, pool)
    assert (
        report.objects,
        report.load.loaded,
        report.load.quarantined,
        report.load.stale,
        report.load.changed,
    ) == (
        3,
        2,
        0,
        0,
        1,
    )
    assert "1 changed since listing" in report.line()
    cases = {r[0] for r in _rows(wh_conn, "SELECT case_number FROM imr.letters")}
    assert cases == {letters["letters/a.pdf"][0].case_number, letters["letters/c.pdf"][0].case_number}
    assert _rows(wh_conn, "SELECT count(*) FROM imr.letters WHERE source_key = 'letters/b.pdf'") == [(0,)]
    # Pending, unclaimed, still described by the listed ETag, and no failure recorded: nothing lost.
    assert _rows(
        wh_conn,
        "SELECT status, claimed_by, etag, error_code FROM imr.s3_objects WHERE key = 'letters/b.pdf'",
    ) == [("pending", None, listed_etag, None)]
    assert _rows(wh_conn, "SELECT count(*) FROM imr.parse_failures") == [(0,)]
    assert _rows(wh_conn, "SELECT finished_at IS NOT NULL FROM imr.batches") == [(True,)]

    # The next discovery sees the new ETag and re-registers the key; its run loads the new version.
    assert _discover(wh_conn, s3_client, bucket, "run2") == 1
    (batch2,) = warehouse.claim_batches(wh_conn, bucket, "run2", batch_size=10)
    assert warehouse.get_batch(wh_conn, batch2).objects == [
        warehouse.ObjectRef("letters/b.pdf", new_etag, len(new_pdf))
    ]
    with ParserPool(1) as pool:
        report2 = pipeline.ingest_batch(s3_client, wh_conn, batch2, pool)
    assert (report2.load.loaded, report2.load.changed) == (1, 0)
    assert _rows(
        wh_conn,
        "SELECT case_number, source_etag FROM imr.letters WHERE source_key = 'letters/b.pdf'",
    ) == [(new_truth.case_number, new_etag)]
    items = _rows(wh_conn, "SELECT count(*) FROM imr.items WHERE case_number = %s", (new_truth.case_number,))
    assert items == [(len(new_truth.items),)]
    assert _rows(wh_conn, "SELECT status, count(*) FROM imr.s3_objects GROUP BY status") == [("loaded", 3)]
