"""Ingesting claimed batches of S3 objects: download each object, parse it in a killable worker,
load the batch in one transaction (`ingest_batch`; `run_lane`: a lane that pulls its run's batches
one at a time on one parser pool until none is left). Worker results become the loader's tagged
`ObjectResult`s here.

Orchestrator-neutral: the Airflow tasks (include/imr_airflow) and the tests call these with a boto3
client and a psycopg2 connection. Letter content lives only inside this function's process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from botocore.exceptions import ClientError

from . import PARSER_VERSION, warehouse
from .errors import LetterError
from .parse.limits import DEFAULT_LIMITS, Limits
from .parse.workers import ParseResult, ParserPool
from .s3_io import get_object_bytes, iter_pages
from .warehouse import Batch, BatchLoad, Failed, ObjectRef, ObjectResult, Parsed

log = logging.getLogger(__name__)

# S3 answers that mean "this object is gone", not "try again later".
_GONE = {"NoSuchKey", "404", "NotFound"}
# The GET is conditional on the manifest's ETag: this answer means the object was replaced after it
# was listed. Not a letter error: the object gets no result and its key is left to the next discovery.
_PRECONDITION = {"PreconditionFailed", "412"}
DOWNLOAD_THREADS = 4


def discover(  # noqa: PLR0913 (the listing's window and options, each with a default)
    s3_client,
    conn,
    bucket: str,
    prefix: str,
    run_id: str,
    *,
    modified_since: datetime | None = None,
    modified_until: datetime | None = None,
    reparse: bool = False,
    page_size: int = 1000,
) -> int:
    """List `prefix` and register new or changed objects as pending; return how many became pending.

    Each ListObjectsV2 page is committed to the manifest before the next one is requested, so memory
    stays at one page whatever the archive holds (1.7 M keys at full scale) and a discovery that dies
    midway keeps what it registered. With `reparse`, objects last processed by another parser
    version go back to pending too.

    :param s3_client: a boto3 S3 client.
    :param conn: a psycopg2 connection to the warehouse.
    :param bucket: the bucket listed.
    :param prefix: the key prefix listed.
    :param run_id: the run registering the objects.
    :param modified_since: only objects last modified at or after this.
    :param modified_until: only objects last modified before this.
    :param reparse: also re-queue objects loaded by another parser version.
    :param page_size: keys per ListObjectsV2 page.
    :return: how many objects became pending.
    """
    pending = 0
    for page in iter_pages(s3_client, bucket, prefix, modified_since, modified_until, page_size):
        pending += warehouse.register_objects(conn, bucket, page, run_id, page_size=page_size)
    if reparse:
        pending += warehouse.mark_for_reparse(conn, bucket, PARSER_VERSION, prefix=prefix or None)
    return pending


@dataclass
class BatchReport:
    """One batch's outcome: its id, how many objects it had, what the loader did (`load`) and how
    long it took."""

    batch_id: int
    objects: int
    load: BatchLoad
    seconds: float = 0.0

    def line(self) -> str:
        """The one-line batch summary for task logs: counts and codes only, never letter text."""
        n = self.load
        errs = ", ".join(f"{k}={v}" for k, v in sorted(n.quarantined_by_code.items())) or "none"
        return (
            f"batch {self.batch_id}: {self.objects} objects, {n.loaded} loaded, "
            f"{n.duplicate} duplicate, {n.quarantined} quarantined ({errs}), {n.stale} stale, "
            f"{n.changed} changed since listing"
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
    s3, bucket: str, objects: list[ObjectRef], pool: ParserPool, on_letter: Callable[[], None] | None = None
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

    parsed: dict[str, ParseResult] = {}
    for r in pool.imap(documents()):
        parsed[r.source] = r
        if on_letter is not None:
            on_letter()  # e.g. the lane renewing its lease (this thread owns the connection)
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


def ingest_batch(  # noqa: PLR0913 (keyword-only options, each with a default)
    s3,
    conn,
    batch_id: int,
    pool: ParserPool,
    *,
    task_id: str | None = None,
    map_index: int | None = None,
    parser_version: str = PARSER_VERSION,
    lease_owner: str | None = None,
    on_letter: Callable[[], None] | None = None,
) -> BatchReport:
    """Downloads, parses and loads one claimed batch (one transaction); logs and returns its counts.
    With `lease_owner` the load commits only if that lane still holds the batch (else LeaseLost).

    :param s3: a boto3 S3 client.
    :param conn: a psycopg2 connection to the warehouse.
    :param batch_id: the claimed batch.
    :param pool: the parser worker pool.
    :param task_id: the task, for imr.parse_failures.
    :param map_index: the mapped task's index, for imr.parse_failures.
    :param parser_version: stored with each letter and object.
    :param lease_owner: the lane that must still hold the batch's lease.
    :param on_letter: called after each parsed letter (the lane renews its lease).
    :return: the batch's report.
    """
    started = time.monotonic()
    batch = warehouse.get_batch(conn, batch_id)
    results, changed = parse_objects(s3, batch.bucket, batch.objects, pool, on_letter)
    return _load(
        conn,
        batch,
        results,
        started,
        task_id=task_id,
        map_index=map_index,
        parser_version=parser_version,
        changed=changed,
        lease_owner=lease_owner,
    )


def _load(conn, batch: Batch, results: list[ObjectResult], started: float, **options) -> BatchReport:
    """Loads one claimed batch's results (`warehouse.load_batch` with `options`); logs and returns
    its report. The one place worker results become a load, for S3 objects and local files alike."""
    counts = warehouse.load_batch(
        conn, batch.bucket, results, batch.run_id, batch_id=batch.batch_id, **options
    )
    report = BatchReport(batch.batch_id, len(batch.objects), counts, time.monotonic() - started)
    log.info("%s", report.line())
    return report


def ingest_files(
    conn,
    bucket: str,
    files: list[Path],
    run_id: str,
    *,
    jobs: int = 1,
    limits: Limits = DEFAULT_LIMITS,
    batch_size: int = 500,
) -> list[BatchReport]:
    """Local files through the path S3 objects take: parsed in worker processes, registered in
    the manifest under `bucket` (key: the path; ETag: the content's sha256, so unchanged files
    register nothing new), claimed in batches and loaded (`imr insights`).

    :param conn: a psycopg2 connection to a migrated warehouse.
    :param bucket: the manifest's name for where the files come from.
    :param files: the PDFs.
    :param run_id: the run that claims and loads them.
    :param jobs: parser worker processes.
    :param limits: the per-letter bounds.
    :param batch_size: files per claimed batch.
    :return: one report per batch loaded.
    """
    with ParserPool(jobs, limits) as pool:
        parsed = {r.source: r for r in pool.imap((str(f), f) for f in files)}
    objects = [
        {"key": k, "etag": r.sha256 or "unread", "size": None, "last_modified": None}
        for k, r in parsed.items()
    ]
    warehouse.register_objects(conn, bucket, objects, run_id)
    reports = []
    for batch_id in warehouse.claim_batches(conn, bucket, run_id, batch_size=batch_size):
        started = time.monotonic()
        batch = warehouse.get_batch(conn, batch_id)
        results = [_result(o, parsed[o.key]) for o in batch.objects if o.key in parsed]
        reports.append(_load(conn, batch, results, started))
    return reports


def lane_owner(run_id: str, map_index: int, try_number: int) -> tuple[str, str]:
    """(owner, inherit) of a lane attempt for run_lane: the owner names this attempt; `inherit` is the
    prefix its earlier attempts' owners share, whose leases this attempt may take over at once."""
    inherit = f"{run_id}|{map_index}|"
    return f"{inherit}{try_number}", inherit


@dataclass
class LaneReport:
    """What one lane did: the batches it loaded (in order) and those it lost to another lane."""

    batches: list[BatchReport] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Counts only (small, for XCom)."""
        totals: Counter = Counter(batches=0, objects=0, lost=len(self.lost))
        for r in self.batches:
            totals.update(
                batches=1,
                objects=r.objects,
                loaded=r.load.loaded,
                duplicate=r.load.duplicate,
                quarantined=r.load.quarantined,
                stale=r.load.stale,
                changed=r.load.changed,
            )
        return dict(totals)


def run_lane(  # noqa: PLR0913 (keyword-only options, each with a default)
    s3,
    conn,
    run_id: str,
    owner: str,
    *,
    inherit: str | None = None,
    lease: timedelta = warehouse.DEFAULT_LEASE,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int = 1,
    task_id: str | None = None,
    map_index: int | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    parser_pool: ParserPool | None = None,
) -> LaneReport:
    """A lane: lease the run's next free batch, ingest it (the load commits the letters and marks the
    batch finished in one transaction), and again, until no batch is free. Fast lanes thus take
    more batches than slow ones and a dead lane's batch goes to whoever claims after its lease
    expired. The lease is renewed as letters finish, at most every quarter lease, on this lane's own
    connection. The parser workers start once per lane, not per batch (`parser_pool`: a started pool to use
    instead of starting one; the caller closes it)."""
    if parser_pool is None:
        with ParserPool(jobs, limits) as own:
            return run_lane(
                s3,
                conn,
                run_id,
                owner,
                inherit=inherit,
                lease=lease,
                task_id=task_id,
                map_index=map_index,
                on_batch=on_batch,
                parser_pool=own,
            )
    report = LaneReport()
    renew_every = lease.total_seconds() / 4
    while (batch_id := warehouse.claim_next_batch(conn, run_id, owner, lease, inherit)) is not None:
        renewed = time.monotonic()

        def renew(batch_id: int = batch_id) -> None:
            nonlocal renewed
            if time.monotonic() - renewed >= renew_every:
                renewed = time.monotonic()
                # A lost lease is not an error here: the guarded load finds out and rolls back.
                warehouse.renew_lease(conn, batch_id, owner, lease)

        try:
            r = ingest_batch(
                s3,
                conn,
                batch_id,
                parser_pool,
                task_id=task_id,
                map_index=map_index,
                lease_owner=owner,
                on_letter=renew,
            )
        except warehouse.LeaseLost:
            log.warning("batch %d: lease lost to another lane; its load was rolled back", batch_id)
            report.lost.append(batch_id)
            continue
        report.batches.append(r)
        if on_batch is not None:
            on_batch(r)
    return report
