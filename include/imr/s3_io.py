"""Streaming S3 listings and bounded downloads (a boto3 S3 client in; no Airflow)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import islice

from imr.errors import LetterError


def in_window(last_modified: datetime, since: datetime | None, until: datetime | None) -> bool:
    """[since, until): a nightly run over its data interval sees each upload exactly once."""
    return (since is None or last_modified >= since) and (until is None or last_modified < until)


def iter_objects(
    s3_client,
    bucket: str,
    prefix: str = "",
    modified_since: datetime | None = None,
    modified_until: datetime | None = None,
    page_size: int = 1000,
) -> Iterator[dict]:
    """Yield {key, etag, size, last_modified} for the .pdf objects under `prefix`, one ListObjectsV2
    page at a time (at most `page_size` keys in memory, whatever the bucket holds).

    S3 cannot filter by LastModified server-side, so the window is applied as pages stream by.
    Datetimes must be timezone-aware (boto3's LastModified is)."""
    paginator = s3_client.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
    for page in pages:
        for obj in page.get("Contents", ()):
            if not obj["Key"].lower().endswith(".pdf"):
                continue
            if not in_window(obj["LastModified"], modified_since, modified_until):
                continue
            yield {
                "key": obj["Key"],
                "etag": obj["ETag"].strip('"'),
                "size": obj["Size"],
                "last_modified": obj["LastModified"],
            }


def iter_pages(
    s3_client,
    bucket: str,
    prefix: str = "",
    modified_since: datetime | None = None,
    modified_until: datetime | None = None,
    page_size: int = 1000,
) -> Iterator[list[dict]]:
    """iter_objects grouped into lists of at most `page_size`, the unit imr.warehouse.register_objects
    takes."""
    it = iter_objects(s3_client, bucket, prefix, modified_since, modified_until, page_size)
    while page := list(islice(it, page_size)):
        yield page


def get_object_bytes(s3_client, bucket: str, key: str, max_bytes: int, etag: str | None = None) -> bytes:
    """The object's bytes, refusing anything over max_bytes (LetterError 'too_large') before reading it.

    With `etag`, the GET is conditional (IfMatch): bytes of a different version than the manifest
    row describes raise botocore's ClientError (412 PreconditionFailed) instead of loading silently."""
    kwargs = {"Bucket": bucket, "Key": key}
    if etag is not None:
        kwargs["IfMatch"] = etag if etag.startswith('"') else f'"{etag}"'
    resp = s3_client.get_object(**kwargs)
    body = resp["Body"]
    try:
        if resp["ContentLength"] > max_bytes:
            raise LetterError(
                "too_large", f"{resp['ContentLength']} bytes exceeds the {max_bytes}-byte limit"
            )
        data = body.read(max_bytes + 1)  # don't trust ContentLength alone
        if len(data) > max_bytes:
            raise LetterError("too_large", f"more than {max_bytes} bytes")
        return data
    finally:
        body.close()
