"""Ingesting claimed batches of S3 objects: download each object, parse it in a killable worker,
load the batch in one transaction (`ingest_batch`; `ingest_batches` runs a lane's batches on one
parser pool). Worker results become the loader's tagged `ObjectResult`s here.

Orchestrator-neutral: the Airflow tasks (include/imr_airflow) and the tests call these with a boto3
client and a psycopg2 connection. Letter content lives only inside this function's process.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

from botocore.exceptions import ClientError

from . import PARSER_VERSION, warehouse
from .errors import LetterError
from .limits import DEFAULT_LIMITS, Limits
from .s3_io import get_object_bytes
from .warehouse import Failed, ObjectRef, ObjectResult, Parsed
from .workers import ParseResult, ParserPool

log = logging.getLogger(__name__)

# S3 answers that mean "this object is gone", not "try again later".
_GONE = {"NoSuchKey", "404", "NotFound"}
# The GET is conditional on the manifest's ETag: this answer means the object was replaced after it
# was listed. Not a letter error: the object gets no result and its key is left to the next discovery.
_PRECONDITION = {"PreconditionFailed", "412"}
DOWNLOAD_THREADS = 4


@dataclass
class BatchReport:
    """One batch's counts; `errors` is the quarantined objects per error code (sums to `quarantined`)."""

    batch_id: int
    objects: int
    loaded: int
    duplicate: int
    quarantined: int
    stale: int
    errors: dict[str, int]
    changed: int = 0

    def line(self) -> str:
        """The one-line batch summary for task logs: counts and codes only, never letter text."""
        errs = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"batch {self.batch_id}: {self.objects} objects, {self.loaded} loaded, "
            f"{self.duplicate} duplicate, {self.quarantined} quarantined ({errs}), {self.stale} stale, "
            f"{self.changed} changed since listing"
        )


class _Changed(NamedTuple):
    """_download's answer for an object replaced since listing (not a LetterError: no rejection)."""

    message: str = "the object was replaced after it was listed"


def _download(s3, bucket: str, obj: ObjectRef, max_bytes: int) -> bytes | LetterError | _Changed:
    """The bytes of the version the manifest lists (If-Match its ETag), never those of a newer one:
    a letter is loaded under the ETag it was listed with, so it must be that ETag's content."""
    try:
        return get_object_bytes(s3, bucket, obj.key, max_bytes, etag=obj.etag)
    except LetterError as exc:
        return exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in _GONE:
            return LetterError("object_missing", "the object was deleted after it was listed")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error.get("Code") in _PRECONDITION or status == 412:
            return _Changed()
        raise  # throttling, 5xx, credentials: the task retries with backoff


def fetch(
    s3, bucket: str, objects: list[ObjectRef], max_bytes: int
) -> Iterator[tuple[ObjectRef, bytes | LetterError | _Changed]]:
    """Objects' bytes in order; a few downloads run ahead so parsing rarely waits on S3."""
    with ThreadPoolExecutor(DOWNLOAD_THREADS) as ex:
        yield from zip(objects, ex.map(lambda o: _download(s3, bucket, o, max_bytes), objects), strict=True)


def _result(obj: ObjectRef, r: ParseResult) -> ObjectResult:
    """A worker's answer as the loader takes it: the one place worker results are converted."""
    result = Parsed(r.letter) if r.ok else Failed(r.error_code, r.message)
    return ObjectResult(obj.key, obj.etag, r.sha256, result)


def parse_objects(
    s3, bucket: str, objects: list[ObjectRef], pool: ParserPool
) -> tuple[list[ObjectResult], list[str]]:
    """(one ObjectResult per object, in order; the keys of objects replaced since listing, which get
    no result because nothing was parsed). Downloads stream into the parser pool as they arrive, so
    S3 latency overlaps parsing; bytes are dropped as soon as a worker has them."""
    failed: dict[str, LetterError | _Changed] = {}

    def documents() -> Iterator[tuple[str, bytes]]:
        for obj, data in fetch(s3, bucket, objects, pool.limits.max_bytes):
            if isinstance(data, bytes):
                yield obj.key, data
            else:
                failed[obj.key] = data

    parsed = {r.source: r for r in pool.imap(documents())}
    results: list[ObjectResult] = []
    changed: list[str] = []
    for obj in objects:
        err = failed.get(obj.key)
        if isinstance(err, _Changed):
            changed.append(obj.key)
        elif err is not None:
            results.append(ObjectResult(obj.key, obj.etag, None, Failed.from_error(err)))
        else:
            results.append(_result(obj, parsed[obj.key]))
    return results, changed


def ingest_batch(
    s3,
    conn,
    batch_id: int,
    pool: ParserPool,
    *,
    task_id: str | None = None,
    map_index: int | None = None,
    parser_version: str = PARSER_VERSION,
) -> BatchReport:
    """Downloads, parses and loads one claimed batch (one transaction); logs and returns its counts."""
    batch = warehouse.get_batch(conn, batch_id)
    results, changed = parse_objects(s3, batch.bucket, batch.objects, pool)
    counts = warehouse.load_batch(
        conn,
        batch.bucket,
        results,
        batch.run_id,
        task_id=task_id,
        map_index=map_index,
        parser_version=parser_version,
        batch_id=batch_id,
        changed=changed,
    )
    report = BatchReport(
        batch_id,
        len(batch.objects),
        counts["loaded"],
        counts["duplicate"],
        counts["quarantined"],
        counts["stale"],
        counts["quarantined_by_code"],
        counts["changed"],
    )
    log.info("%s", report.line())
    return report


def ingest_batches(
    s3,
    conn,
    batch_ids: list[int],
    *,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int = 1,
    task_id: str | None = None,
    map_index: int | None = None,
) -> dict[str, int]:
    """Ingests batches one after another on one parser pool (a lane: imr_airflow's process_lane task);
    returns totals (small, for XCom)."""
    totals: Counter = Counter()
    with ParserPool(jobs, limits) as pool:
        for batch_id in batch_ids:
            r = ingest_batch(s3, conn, batch_id, pool, task_id=task_id, map_index=map_index)
            totals.update(
                batches=1,
                objects=r.objects,
                loaded=r.loaded,
                duplicate=r.duplicate,
                quarantined=r.quarantined,
                stale=r.stale,
                changed=r.changed,
            )
    return dict(totals)
