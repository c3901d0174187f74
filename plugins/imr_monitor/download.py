"""The download of a letter's PDF: only objects the manifest (imr.s3_objects) knows and that are or
were quarantined (imr.monitor.is_failed_letter), unless the caller holds the separate permission
(security.may_download_any); fetched from S3 conditionally on the manifest's ETag, so what is served
is the version that failed; streamed as an attachment that the browser neither sniffs nor renders;
every answer written to the audit log (AUDIT_LOGGER, INFO for a download served)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from imr import monitor

CHUNK_BYTES = 64 * 1024
# S3 error codes that mean the object (or its bucket) is gone.
_MISSING = ("NoSuchKey", "404", "NoSuchBucket")
# S3's answer to a GET whose If-Match names another version of the object.
_CHANGED = ("PreconditionFailed", "412")
# One line per download request: who, which object, which version, when, and what was answered.
AUDIT_LOGGER = "imr_monitor.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)


def _audit(level: int, outcome: str, user: str, bucket: str | None, key: str, etag: str | None) -> None:
    # The key is repr()'d: an S3 key may hold newlines or control characters, which must not forge
    # audit lines. No letter text is logged, only names.
    audit_log.log(
        level,
        "download %s user=%r bucket=%r key=%r etag=%r at=%s",
        outcome,
        user,
        bucket,
        key,
        etag,
        datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _get_object(s3, bucket: str, key: str, etag: str) -> dict[str, Any]:
    """S3's GetObject answer for the manifest's version of the object: 409 when S3 holds another
    version, 410 when the object is gone, 502 for any other S3 failure."""
    try:
        return s3.get_object(Bucket=bucket, Key=key, IfMatch=etag if etag.startswith('"') else f'"{etag}"')
    except Exception as err:
        code = str(getattr(err, "response", {}).get("Error", {}).get("Code"))
        if code in _CHANGED:
            raise HTTPException(
                409, "the object changed in S3 since the manifest recorded it; not served"
            ) from err
        if code in _MISSING:
            raise HTTPException(410, "the object is no longer in S3") from err
        raise HTTPException(502, "could not read the object from S3") from err


def attachment_headers(key: str, content_length: int | None) -> dict[str, str]:
    """An attachment named after the key's last segment (ASCII fallback plus the UTF-8 name), with a
    sandbox CSP (the app's middleware leaves a route's own CSP in place)."""
    name = key.rsplit("/", 1)[-1] or "letter.pdf"
    ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:150] or "letter.pdf"
    utf8_name = quote(name, safe="")
    headers = {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if content_length is not None:
        headers["Content-Length"] = str(content_length)
    return headers


def _chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size=CHUNK_BYTES)
    finally:
        body.close()


def _allowed_object(conn, bucket: str | None, key: str, may_download_any: bool) -> dict[str, Any] | None:
    """The manifest row to serve, or None. An object the caller may not download answers like an
    unknown one, so the route tells nobody which letters exist."""
    obj = monitor.manifest_object(conn, bucket, key)
    if obj is None or not (may_download_any or monitor.is_failed_letter(obj)):
        return None
    return obj


def download_response(
    conn, s3, bucket: str | None, key: str, *, user: str, may_download_any: bool
) -> StreamingResponse:
    """The object's bytes, typed as a PDF whatever they are; 404 unless the manifest has the key
    (in `bucket`, or in exactly one bucket when none is given) and the caller may have it.

    :param conn: the warehouse connection
    :param s3: a boto3 S3 client
    :param bucket: the bucket, or None for the one bucket the manifest has the key in
    :param key: the object's key
    :param user: the caller's name, for the audit log
    :param may_download_any: whether the caller may download objects that never failed
    :return: the streamed attachment
    """
    obj = _allowed_object(conn, bucket, key, may_download_any)
    if obj is None:
        _audit(logging.WARNING, "refused", user, bucket, key, None)
        raise HTTPException(404, "no such quarantined object in the manifest")
    try:
        got = _get_object(s3, obj["bucket"], obj["key"], obj["etag"])
    except HTTPException as err:
        _audit(logging.WARNING, f"failed ({err.status_code})", user, obj["bucket"], obj["key"], obj["etag"])
        raise
    _audit(logging.INFO, "served", user, obj["bucket"], obj["key"], obj["etag"])
    headers = attachment_headers(obj["key"], got.get("ContentLength"))
    headers["ETag"] = '"' + obj["etag"].strip('"') + '"'
    return StreamingResponse(_chunks(got["Body"]), media_type="application/pdf", headers=headers)
