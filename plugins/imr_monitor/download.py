"""The download of a letter's PDF: only objects the manifest (imr.s3_objects) knows, streamed from S3
as an attachment that the browser neither sniffs nor renders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from imr.read import monitor

CHUNK_BYTES = 64 * 1024
# S3 error codes that mean the object (or its bucket) is gone.
_MISSING = ("NoSuchKey", "404", "NoSuchBucket")


def _get_object(s3, bucket: str, key: str) -> dict[str, Any]:
    """S3's GetObject answer; 404 when the object is gone, 502 for any other S3 failure."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        if code in _MISSING:
            raise HTTPException(404, "the object is no longer in S3") from err
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


def download_response(conn, s3, bucket: str | None, key: str) -> StreamingResponse:
    """The object's bytes, typed as a PDF whatever they are; 404 unless the manifest has the key
    (in `bucket`, or in exactly one bucket when none is given)."""
    obj = monitor.manifest_object(conn, bucket, key)
    if obj is None:
        raise HTTPException(404, "no such object in the manifest")
    got = _get_object(s3, obj["bucket"], obj["key"])
    headers = attachment_headers(obj["key"], got.get("ContentLength"))
    return StreamingResponse(_chunks(got["Body"]), media_type="application/pdf", headers=headers)
