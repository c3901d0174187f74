"""The S3 manifest `imr.s3_objects` and the batches claimed from it: which object versions exist
and where each stands. A key moves
    pending --claim_batches--> processing --load_batch--> loaded | quarantined | duplicate
and register_objects puts it back to pending when its ETag changes (load_batch does too when the
listed version was replaced before its download, leaving the new version to the next discovery).
Claimed keys are stored as rows of `imr.batches`, so an orchestrator passes batch ids around, never
key lists or letters. Every function takes an open psycopg2 connection and runs its own
transaction(s) (imr.warehouse.db.transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import NamedTuple

from .db import bare_etag, chunks, copy_rows, transaction

STATUSES = ("pending", "processing", "loaded", "quarantined", "duplicate")


class ObjectRef(NamedTuple):
    """An object of a claimed batch: key, ETag and size as the manifest lists them."""

    key: str
    etag: str
    size: int | None


class Batch(NamedTuple):
    """A claimed batch: its id, run, bucket and objects."""

    batch_id: int
    run_id: str
    bucket: str
    objects: list[ObjectRef]


_REGISTER_SQL = """
INSERT INTO imr.s3_objects AS o (bucket, key, etag, size, last_modified, status, first_run_id, last_run_id)
SELECT DISTINCT ON (key) %(bucket)s, key, etag, size, last_modified, 'pending', %(run_id)s, %(run_id)s
FROM _register ORDER BY key
ON CONFLICT (bucket, key) DO UPDATE SET
    etag = excluded.etag, size = excluded.size, last_modified = excluded.last_modified,
    status = 'pending', sha256 = NULL, error_code = NULL, error_message = NULL, attempts = 0,
    last_run_id = excluded.last_run_id, updated_at = now()
WHERE o.etag IS DISTINCT FROM excluded.etag
"""


def register_objects(conn, bucket: str, objects: Iterable[dict], run_id: str, page_size: int = 1000) -> int:
    """Record listed S3 objects in the manifest; return how many became pending.

    New keys and keys whose ETag changed become pending; keys seen before with the same ETag are left
    alone whatever their status, so re-listing a bucket is cheap and loads nothing twice. Each page is
    COPYed into a temp table and merged with one INSERT ... ON CONFLICT, and committed on its own, so
    registering a million keys neither holds one huge transaction nor the whole listing in memory."""
    registered = _register(conn, bucket, objects, run_id, page_size, _REGISTER_SQL)
    return registered.new + registered.changed


class Registered(NamedTuple):
    """What register_counted did: keys the manifest did not hold (`new`) and keys whose ETag changed
    (`changed`); both became pending."""

    new: int
    changed: int


def _register(
    conn, bucket: str, objects: Iterable[dict], run_id: str, page_size: int, sql: str
) -> Registered:
    new = changed = 0
    for page in chunks(objects, page_size):
        rows = [(o["key"], bare_etag(o["etag"]), o.get("size"), o.get("last_modified")) for o in page]
        with transaction(conn) as cur:
            cur.execute(
                "CREATE TEMP TABLE _register (key TEXT, etag TEXT, size BIGINT, last_modified TIMESTAMPTZ)"
                " ON COMMIT DROP"
            )
            copy_rows(cur, "_register", ("key", "etag", "size", "last_modified"), rows)
            # xmax is 0 on a row version this statement inserted, the updating transaction's id otherwise.
            cur.execute(sql + " RETURNING (o.xmax = 0)", {"bucket": bucket, "run_id": run_id})
            inserted = [r[0] for r in cur.fetchall()]
        new += sum(inserted)
        changed += len(inserted) - sum(inserted)
    return Registered(new, changed)


def register_counted(
    conn, bucket: str, objects: Iterable[dict], run_id: str, page_size: int = 1000
) -> Registered:
    """register_objects (the same upsert, page by page), telling new keys from changed ones: the
    reconciliation listing reports how many objects the event hints missed.

    :param conn: a warehouse connection.
    :param bucket: the objects' bucket.
    :param objects: {key, etag, size, last_modified} dicts.
    :param run_id: the run registering them.
    :param page_size: keys per transaction.
    :return: the new and changed counts.
    """
    return _register(conn, bucket, objects, run_id, page_size, _REGISTER_SQL)


# An S3 notification may arrive after a newer version of its key was registered (SQS does not keep
# order; a listing may have run between): its older ETag must not replace the newer one, or the lane's
# conditional GET would find the object changed and leave it pending until the next listing.
_REGISTER_NOT_OLDER_SQL = (
    _REGISTER_SQL.rstrip()
    + "\n  AND (o.last_modified IS NULL OR excluded.last_modified IS NULL"
    + " OR excluded.last_modified >= o.last_modified)"
)


def register_events(
    conn, bucket: str, objects: Iterable[dict], run_id: str, page_size: int = 1000
) -> Registered:
    """register_counted for objects announced by S3 notifications (`last_modified` = the event's
    time): a key whose manifest row is newer than the event keeps its row. Give each key once (the
    newest event): the upsert takes one row per key.

    :param conn: a warehouse connection.
    :param bucket: the objects' bucket.
    :param objects: {key, etag, size, last_modified} dicts, one per key.
    :param run_id: the run registering them.
    :param page_size: keys per transaction.
    :return: the new and changed counts (both became pending).
    """
    return _register(conn, bucket, objects, run_id, page_size, _REGISTER_NOT_OLDER_SQL)


_CLAIM_SQL = """
WITH picked AS (
    SELECT key FROM imr.s3_objects o
    WHERE bucket = %(bucket)s
      AND (%(prefix)s::text IS NULL OR starts_with(key, %(prefix)s::text))
      AND ((status = ANY(%(statuses)s::text[]) AND claimed_by IS NULL)
           -- A stale claim: old, and its run shows no lane alive. A backfill of the archive runs
           -- for hours; its waiting batches' keys are old claims, but its lanes renew leases.
           OR (status = 'processing' AND claimed_at < now() - %(stale_after)s::interval
               AND NOT EXISTS (
                   SELECT 1 FROM imr.batches b
                   WHERE b.run_id = o.claimed_by AND b.finished_at IS NULL
                     AND b.lease_expires_at > now() - %(stale_after)s::interval)))
    ORDER BY key
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE imr.s3_objects o
    SET status = 'processing', claimed_by = %(run_id)s, claimed_at = now(), attempts = o.attempts + 1,
        first_run_id = coalesce(o.first_run_id, %(run_id)s), last_run_id = %(run_id)s, updated_at = now()
    FROM picked
    WHERE o.bucket = %(bucket)s AND o.key = picked.key
    RETURNING o.key
), ordered AS (
    SELECT key, row_number() OVER (ORDER BY key) - 1 AS i,
           greatest(count(*) OVER () - %(tail)s, 0) AS head
    FROM claimed
), numbered AS (
    SELECT key,
           CASE WHEN i < head THEN i / %(batch_size)s
                ELSE (head + %(batch_size)s - 1) / %(batch_size)s + (i - head) / %(tail_size)s END AS n
    FROM ordered
)
INSERT INTO imr.batches (run_id, bucket, keys)
SELECT %(run_id)s, %(bucket)s, array_agg(key ORDER BY key) FROM numbered GROUP BY n ORDER BY n
RETURNING batch_id
"""


# How much smaller the tail batches are than the run's batch size (claim_batches's taper_lanes).
TAPER = 8


def claim_batches(  # noqa: PLR0913 (keyword-only options, each with a default)
    conn,
    bucket: str,
    run_id: str,
    batch_size: int,
    *,
    prefix: str | None = None,
    statuses: Sequence[str] = ("pending",),
    max_batches: int | None = None,
    stale_after: timedelta = timedelta(hours=6),
    taper_lanes: int = 0,
) -> list[int]:
    """Claim up to max_batches * batch_size keys for `run_id` and return the new batch ids.

    Rows are picked FOR UPDATE SKIP LOCKED and stamped claimed_by = run_id in one statement, so two
    runs claiming at the same moment get disjoint keys, and a key another run holds is not claimable
    until it is loaded or released. A claim older than `stale_after` is taken over if its run shows
    no live lane (none of its batches leased within `stale_after`): the run died.
    The key lists stay in imr.batches: the caller hands the (small) list of ids to its workers, each
    of which reads its keys with get_batch(). `max_batches` bounds one run's fan-out (Airflow maps at
    most core.max_map_length tasks); what is left stays pending for the next run.

    `taper_lanes`: the lanes that will pull these batches. The run's last taper_lanes * batch_size keys
    then go into batches an eighth of the size, claimed last, so the lanes run out of work within a
    small batch of each other instead of one lane finishing a whole batch while the others idle."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    params = {
        "bucket": bucket,
        "run_id": run_id,
        "prefix": prefix,
        "statuses": list(statuses),
        "stale_after": stale_after,
        "limit": batch_size * max_batches if max_batches else None,
        "batch_size": batch_size,
        "tail": max(0, taper_lanes) * batch_size,
        "tail_size": max(1, -(-batch_size // TAPER)),
    }
    with transaction(conn) as cur:
        cur.execute(_CLAIM_SQL, params)
        return sorted(r[0] for r in cur.fetchall())


def get_batch(conn, batch_id: int) -> Batch:
    """A batch's keys in order, with the ETag and size the manifest has for each."""
    with transaction(conn) as cur:
        cur.execute(
            """
            SELECT b.run_id, b.bucket, k.key, o.etag, o.size
            FROM imr.batches b
            CROSS JOIN unnest(b.keys) WITH ORDINALITY AS k(key, ord)
            JOIN imr.s3_objects o ON o.bucket = b.bucket AND o.key = k.key
            WHERE b.batch_id = %s ORDER BY k.ord
            """,
            (batch_id,),
        )
        rows = cur.fetchall()
        if not rows:
            cur.execute("SELECT run_id, bucket FROM imr.batches WHERE batch_id = %s", (batch_id,))
            head = cur.fetchone()
            if head is None:
                raise KeyError(f"no batch {batch_id}")
            return Batch(batch_id, head[0], head[1], [])
    return Batch(batch_id, rows[0][0], rows[0][1], [ObjectRef(r[2], r[3], r[4]) for r in rows])


def release_claims(conn, run_id: str) -> int:
    """Hand back what a run claimed but did not finish (a failed or cancelled run): processing -> pending."""
    with transaction(conn) as cur:
        cur.execute(
            "UPDATE imr.s3_objects SET status = 'pending', claimed_by = NULL, claimed_at = NULL,"
            " updated_at = now() WHERE claimed_by = %s AND status = 'processing'",
            (run_id,),
        )
        return cur.rowcount


def requeue_failures(
    conn, bucket: str, error_codes: Sequence[str] | None = None, keys: Sequence[str] | None = None
) -> int:
    """Quarantined -> pending (optionally only some error codes / keys), e.g. after a parser fix.
    The last error stays on the row until the next attempt overwrites it."""
    with transaction(conn) as cur:
        cur.execute(
            """
            UPDATE imr.s3_objects
            SET status = 'pending', claimed_by = NULL, claimed_at = NULL, updated_at = now()
            WHERE bucket = %(bucket)s AND status = 'quarantined'
              AND (%(codes)s::text[] IS NULL OR error_code = ANY(%(codes)s::text[]))
              AND (%(keys)s::text[] IS NULL OR key = ANY(%(keys)s::text[]))
            """,
            {
                "bucket": bucket,
                "codes": list(error_codes) if error_codes is not None else None,
                "keys": list(keys) if keys is not None else None,
            },
        )
        return cur.rowcount


def mark_for_reparse(
    conn,
    bucket: str,
    parser_version: str,
    prefix: str | None = None,
    statuses: Sequence[str] = ("loaded", "duplicate"),
) -> int:
    """Send objects last processed by a parser other than `parser_version` back to pending
    (a backfill with reparse). Objects a run currently holds are left to that run."""
    with transaction(conn) as cur:
        cur.execute(
            """
            UPDATE imr.s3_objects SET status = 'pending', updated_at = now()
            WHERE bucket = %(bucket)s AND status = ANY(%(statuses)s::text[]) AND claimed_by IS NULL
              AND parser_version IS DISTINCT FROM %(pv)s
              AND (%(prefix)s::text IS NULL OR starts_with(key, %(prefix)s::text))
            """,
            {"bucket": bucket, "statuses": list(statuses), "pv": parser_version, "prefix": prefix},
        )
        return cur.rowcount


# How long a lane's claim on a batch lasts without renewal. The lane renews it as letters finish, so it
# only has to outlast the slowest single letter (Limits.timeout_s) plus a download; a lane that dies
# hands its batch to the other lanes (or the run's retry) this long after its last renewal.
DEFAULT_LEASE = timedelta(seconds=120)


class LeaseLost(RuntimeError):
    """The batch a lane worked on was taken over (its lease expired) or finished by another lane:
    the load is rolled back and the lane moves on, so no batch is loaded twice."""


_CLAIM_NEXT_SQL = """
WITH next AS (
    SELECT batch_id FROM imr.batches
    WHERE run_id = %(run_id)s AND finished_at IS NULL
      AND (lease_owner IS NULL OR lease_expires_at < now()
           OR (%(inherit)s::text IS NOT NULL AND starts_with(lease_owner, %(inherit)s::text)
               AND lease_owner <> %(owner)s))
    ORDER BY batch_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE imr.batches b SET lease_owner = %(owner)s, lease_expires_at = now() + %(lease)s::interval
FROM next WHERE b.batch_id = next.batch_id
RETURNING b.batch_id
"""


def claim_next_batch(
    conn, run_id: str, owner: str, lease: timedelta = DEFAULT_LEASE, inherit: str | None = None
) -> int | None:
    """Lease the next unfinished batch of `run_id` to `owner` (a lane attempt); None when no batch is
    free. Free means never leased, lease expired (its lane died), or held by an earlier attempt of the
    same lane (`inherit`: an owner prefix; Airflow only retries a task whose previous try ended, so
    the retry resumes at once instead of waiting out the lease). One statement, FOR UPDATE SKIP
    LOCKED: lanes claiming at the same moment get different batches, and a batch whose load
    transaction is running (it holds the row lock) is never handed out."""
    with transaction(conn) as cur:
        cur.execute(_CLAIM_NEXT_SQL, {"run_id": run_id, "owner": owner, "lease": lease, "inherit": inherit})
        row = cur.fetchone()
    return row[0] if row else None


def renew_lease(conn, batch_id: int, owner: str, lease: timedelta = DEFAULT_LEASE) -> bool:
    """Extend `owner`'s lease on an unfinished batch; False when the lease was lost meanwhile."""
    with transaction(conn) as cur:
        cur.execute(
            "UPDATE imr.batches SET lease_expires_at = now() + %s::interval"
            " WHERE batch_id = %s AND lease_owner = %s AND finished_at IS NULL",
            (lease, batch_id, owner),
        )
        return cur.rowcount == 1


def lock_leased_batch(cur, batch_id: int, owner: str) -> None:
    """Inside a load transaction: lock the batch row and raise LeaseLost unless `owner` still holds it
    unfinished. An expired lease nobody took over still counts as held; while this lock is held no
    other lane can claim the batch, so exactly one load commits it."""
    cur.execute(
        "SELECT lease_owner, finished_at FROM imr.batches WHERE batch_id = %s FOR UPDATE", (batch_id,)
    )
    row = cur.fetchone()
    if row is None or row[0] != owner or row[1] is not None:
        raise LeaseLost(f"batch {batch_id} is no longer leased to this lane")


def release_leases(conn, run_id: str) -> int:
    """Hand back the leases a run's lanes still hold (the run ended): its unfinished batches are
    claimable at once, e.g. by a cleared lane of the same run."""
    with transaction(conn) as cur:
        cur.execute(
            "UPDATE imr.batches SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE run_id = %s AND finished_at IS NULL AND lease_owner IS NOT NULL",
            (run_id,),
        )
        return cur.rowcount
