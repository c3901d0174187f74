"""imr.s3_io against the moto S3 server over HTTP (a fresh bucket per test)."""

from __future__ import annotations

import time
from datetime import timedelta

import botocore.exceptions
import pytest

from imr import s3_io, warehouse
from imr.errors import LetterError

pytestmark = pytest.mark.integration


def put(s3, bucket: str, key: str, body: bytes = b"%PDF-1.4 tiny") -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
def list_calls(s3_client) -> list[int]:
    """Records each ListObjectsV2 request the (session-wide) client makes during the test."""
    calls: list[int] = []

    def on_call(**_kw):
        calls.append(1)

    s3_client.meta.events.register("before-call.s3.ListObjectsV2", on_call)
    yield calls
    s3_client.meta.events.unregister("before-call.s3.ListObjectsV2", on_call)


def test_listing_streams_page_by_page(s3_client, bucket, list_calls):
    keys = [f"letters/CM16-{n:07d}.pdf" for n in range(7)]
    for k in keys:
        put(s3_client, bucket, k)
    it = s3_io.iter_objects(s3_client, bucket, "letters/", page_size=2)
    first = next(it)
    assert len(list_calls) == 1  # lazy: one page fetched for the first object
    rest = list(it)
    assert len(list_calls) == 4  # 7 keys at 2 per page
    listed = [first, *rest]
    assert [o["key"] for o in listed] == keys
    assert set(listed[0]) == {"key", "etag", "size", "last_modified"}
    assert not listed[0]["etag"].startswith('"') and listed[0]["size"] == len(b"%PDF-1.4 tiny")

    pages = list(s3_io.iter_pages(s3_client, bucket, "letters/", page_size=3))
    assert [len(p) for p in pages] == [3, 3, 1]


def test_only_pdfs_under_the_prefix(s3_client, bucket):
    for k in ("letters/a.pdf", "letters/B.PDF", "letters/notes.txt", "letters/pdf", "other/c.pdf"):
        put(s3_client, bucket, k)
    assert [o["key"] for o in s3_io.iter_objects(s3_client, bucket, "letters/")] == [
        "letters/B.PDF",
        "letters/a.pdf",
    ]
    assert len(list(s3_io.iter_objects(s3_client, bucket))) == 3  # no prefix: whole bucket


def test_last_modified_window(s3_client, bucket):
    put(s3_client, bucket, "letters/old.pdf")
    time.sleep(1.1)  # S3 LastModified has one-second resolution
    put(s3_client, bucket, "letters/new.pdf")
    stamps = {o["key"]: o["last_modified"] for o in s3_io.iter_objects(s3_client, bucket)}
    old, new = stamps["letters/old.pdf"], stamps["letters/new.pdf"]
    assert old < new

    def keys(**window):
        return [o["key"] for o in s3_io.iter_objects(s3_client, bucket, "letters/", **window)]

    assert keys(modified_since=new) == ["letters/new.pdf"]  # since is inclusive
    assert keys(modified_until=new) == ["letters/old.pdf"]  # until is exclusive
    assert keys(modified_since=old, modified_until=new + timedelta(seconds=1)) == [
        "letters/new.pdf",
        "letters/old.pdf",
    ]
    assert keys(modified_since=new + timedelta(seconds=1)) == []


def test_get_object_bytes_limits_size(s3_client, bucket):
    put(s3_client, bucket, "letters/small.pdf", b"x" * 100)
    assert s3_io.get_object_bytes(s3_client, bucket, "letters/small.pdf", max_bytes=100) == b"x" * 100
    with pytest.raises(LetterError) as err:
        s3_io.get_object_bytes(s3_client, bucket, "letters/small.pdf", max_bytes=99)
    assert err.value.code == "too_large"


def test_get_object_bytes_if_match(s3_client, bucket):
    put(s3_client, bucket, "letters/a.pdf", b"version 1")
    (listed,) = s3_io.iter_objects(s3_client, bucket)
    assert (
        s3_io.get_object_bytes(s3_client, bucket, "letters/a.pdf", 1000, etag=listed["etag"]) == b"version 1"
    )
    put(s3_client, bucket, "letters/a.pdf", b"version 2")
    with pytest.raises(botocore.exceptions.ClientError):
        s3_io.get_object_bytes(s3_client, bucket, "letters/a.pdf", 1000, etag=listed["etag"])


def test_listing_feeds_the_manifest(s3_client, bucket, wh_conn):
    for n in range(5):
        put(s3_client, bucket, f"letters/CM16-{n:07d}.pdf", f"letter {n}".encode())
    pages = s3_io.iter_pages(s3_client, bucket, "letters/", page_size=2)
    assert sum(warehouse.register_objects(wh_conn, bucket, page, "run1") for page in pages) == 5
    put(s3_client, bucket, "letters/CM16-0000001.pdf", b"overwritten")  # new ETag
    pages = s3_io.iter_pages(s3_client, bucket, "letters/")
    assert sum(warehouse.register_objects(wh_conn, bucket, page, "run2") for page in pages) == 1
