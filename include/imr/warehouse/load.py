"""Loading one batch of parse results: `load_batch` checks and stages the rows (`rows`), merges
them into imr.letters, imr.items, imr.item_citations, the manifest and imr.parse_failures in ONE
transaction (`merge`, step by step) and returns a `BatchLoad`. The input and output types are in
`results`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from imr import PARSER_VERSION

from . import merge
from .db import Writer, copy_rows, transaction
from .manifest import lock_leased_batch
from .results import BatchLoad, Failed, ObjectResult, Parsed
from .rows import staged_rows

__all__ = ["BatchLoad", "Failed", "ObjectResult", "Parsed", "load_batch"]


def load_batch(  # noqa: PLR0913 (a batch's provenance travels with it into the manifest and the log)
    conn,
    bucket: str,
    results: Iterable[ObjectResult],
    run_id: str,
    task_id: str | None = None,
    map_index: int | None = None,
    *,
    parser_version: str = PARSER_VERSION,
    batch_id: int | None = None,
    changed: Sequence[str] = (),
    write: Writer = copy_rows,
    lease_owner: str | None = None,
) -> BatchLoad:
    """Load one batch of results in ONE transaction.

    Letters and items are COPYed into temp staging tables, then merged set-wise: a case's letter and
    items are replaced together or not at all, and any error rolls the whole batch back (manifest
    included), so a retry starts from a clean state. Loading the same results twice changes nothing.

    :param conn: a psycopg2 connection to the warehouse.
    :param bucket: the S3 bucket the results' keys are in.
    :param results: one `ObjectResult` per object (the last one per key counts).
    :param run_id: the DAG run (or CLI run) that processed them.
    :param task_id: the task, for imr.parse_failures.
    :param map_index: the mapped task's index, for imr.parse_failures.
    :param parser_version: stored with each letter and object.
    :param batch_id: the imr.batches row this is, marked finished in the same transaction.
    :param changed: keys of the batch with no result because their listed version was gone at
        download (S3 answered 412 to If-Match): released to pending (see `merge.match_manifest`).
    :param write: fills the staging tables (COPY; the benchmark passes its executemany baseline).
    :param lease_owner: a lane of `imr.pipeline.run_lane`: the batch row is locked first and
        `LeaseLost` raised, nothing written, unless that lane still holds the batch unfinished, so
        a batch is loaded once even when its lease expired under a slow lane and another took it.
    :return: the counts (`BatchLoad`).
    """
    rows = staged_rows(results)
    with transaction(conn) as cur:
        if lease_owner is not None and batch_id is not None:
            lock_leased_batch(cur, batch_id, lease_owner)
        merge.stage(cur, rows, write)
        released = merge.match_manifest(cur, bucket, run_id, changed)
        merge.decide_fates(cur, bucket)
        letters_written = merge.upsert_letters(cur, bucket, parser_version)
        items_written = merge.replace_items(cur)
        statuses, codes = merge.update_manifest(cur, bucket, run_id, parser_version)
        merge.log_failures(cur, bucket, run_id, task_id, map_index)
        if batch_id is not None:
            merge.finish_batch(cur, batch_id, statuses)
    return BatchLoad(
        loaded=statuses["loaded"],
        duplicate=statuses["duplicate"],
        quarantined=statuses["quarantined"],
        stale=len(rows) - sum(statuses.values()),
        changed=released,
        letters_written=letters_written,
        items_written=items_written,
        quarantined_by_code=dict(codes),
    )
