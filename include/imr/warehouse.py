"""The PostgreSQL warehouse: migrations, the S3 manifest, claiming work and loading parsed letters.

Every function takes an open psycopg2 connection (no Airflow here) and runs its own transaction(s):
uncommitted work the caller has on the connection is committed with it.

The manifest `imr.s3_objects` drives everything. A key moves
    pending --claim_batches--> processing --load_batch--> loaded | quarantined | duplicate
and register_objects puts it back to pending when its ETag changes (load_batch does too when the
listed version was replaced before its download, leaving the new version to the next discovery).
Claimed keys are stored as rows of `imr.batches`, so an orchestrator passes batch ids around, never
key lists or letters.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from importlib import resources
from itertools import islice
from typing import Any, NamedTuple

from imr import PARSER_VERSION
from imr.errors import LetterError
from imr.records import DATE_FIELDS, DECISIONS, ITEM_FIELDS, LETTER_FIELDS, Letter

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_xact_lock key: only one session migrates a database at a time.
MIGRATION_LOCK = 0x494D52_0001
CASE_NUMBER = re.compile(r"^CM\d{2}-\d{7}$")
STATUSES = ("pending", "processing", "loaded", "quarantined", "duplicate")

# Column order of the staging tables (and of the rows built for them).
LETTER_COLUMNS = ("key", *LETTER_FIELDS, "clinical_case_summary", "warnings")
ITEM_COLUMNS = ("key", "case_number", *ITEM_FIELDS)


class ObjectRef(NamedTuple):
    key: str
    etag: str
    size: int | None


class Batch(NamedTuple):
    batch_id: int
    run_id: str
    bucket: str
    objects: list[ObjectRef]


class Outcome(NamedTuple):
    """What a worker reports for one object. `result` is a Letter (or its to_dict() form) on success,
    or (error_code, message) / a LetterError on failure. A plain 4-tuple works as well. sha256 (hex
    digest of the object's bytes) is required for a letter; a failure may have none ("" or None)."""

    key: str
    etag: str
    sha256: str | None
    result: Any


class _Row(NamedTuple):
    """An Outcome after normalization and validation."""

    ord: int
    key: str
    etag: str
    sha256: str
    letter: Letter | None
    error_code: str | None
    message: str | None


# --------------------------------------------------------------------------- plumbing


@contextmanager
def _transaction(conn) -> Iterator[Any]:
    """One transaction on `conn`, whatever its autocommit setting: commit on success, else roll back."""
    autocommit = conn.autocommit
    if autocommit:
        conn.autocommit = False
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        if autocommit:
            conn.autocommit = True


def connect(dsn: str | None = None):
    """A connection to the warehouse; the DSN defaults to $IMR_WAREHOUSE_DSN (see devservices env)."""
    import psycopg2

    return psycopg2.connect(dsn if dsn is not None else os.environ["IMR_WAREHOUSE_DSN"])


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _etag(etag: str | None) -> str | None:
    """S3 returns ETags in double quotes (ListObjectsV2 and GetObject alike); store them bare so a
    quoted and an unquoted spelling of the same ETag compare equal."""
    return etag.strip('"') if etag is not None else None


def _clean(s: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; PDF text extraction occasionally yields one.
    return s.replace("\x00", "") if isinstance(s, str) else s


def _copy_text(value: Any) -> str:
    """One value in COPY text format (NULL is \\N; backslash, tab, newline and CR escaped)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        s = "t" if value else "f"
    elif isinstance(value, (list, tuple)):
        s = _array_literal(value)
    elif isinstance(value, (date, datetime)):
        s = value.isoformat()
    else:
        s = str(value)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _array_literal(values: Sequence) -> str:
    """A text[] literal: every element double-quoted so commas, braces and spaces survive."""
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
        else:
            parts.append('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def copy_rows(cur, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Bulk-write rows with COPY FROM STDIN: one round trip instead of one per row."""
    buf = io.BytesIO()
    for row in rows:
        line = "\t".join(_copy_text(v) for v in row) + "\n"
        buf.write(line.encode("utf-8", "replace"))  # "replace": lone surrogates cannot be encoded
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def insert_rows(cur, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """The row-at-a-time baseline (cursor.executemany), kept only for the COPY benchmark."""
    placeholders = ", ".join(["%s"] * len(columns))
    cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", list(rows))


Writer = Callable[[Any, str, Sequence[str], Iterable[Sequence]], None]


# --------------------------------------------------------------------------- migrations


def migrations() -> list[tuple[str, str]]:
    """(version, sql) for every include/imr/migrations/NNNN_name.sql, in order."""
    folder = resources.files("imr") / "migrations"
    files = sorted(f.name for f in folder.iterdir() if MIGRATION_NAME.match(f.name))
    return [(name.removesuffix(".sql"), (folder / name).read_text(encoding="utf-8")) for name in files]


def upgrade(conn) -> list[str]:
    """Apply pending migrations in one transaction; return the versions applied (empty if none).

    The advisory lock makes concurrent callers (two DAG runs starting together) queue up: the second
    one then sees the first one's versions in imr.schema_migrations and applies nothing."""
    applied: list[str] = []
    with _transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        cur.execute("CREATE SCHEMA IF NOT EXISTS imr")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS imr.schema_migrations"
            " (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT version FROM imr.schema_migrations")
        done = {r[0] for r in cur.fetchall()}
        for version, sql in migrations():
            if version not in done:
                cur.execute(sql)  # no parameters: psycopg2 leaves % in the SQL alone
                cur.execute("INSERT INTO imr.schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
    return applied


class SchemaOutOfDate(RuntimeError):
    """The warehouse's applied migrations differ from this package's: DAG runs never change the
    schema (their login has no DDL rights), so the owner must run `imr db upgrade` first."""


def applied_migrations(conn) -> list[str]:
    """Versions recorded in imr.schema_migrations, read-only (empty when the schema is missing)."""
    with _transaction(conn) as cur:
        cur.execute("SELECT to_regclass('imr.schema_migrations') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute("SELECT version FROM imr.schema_migrations ORDER BY version")
        return [r[0] for r in cur.fetchall()]


def check_schema(conn) -> list[str]:
    """Raise SchemaOutOfDate unless the applied migrations are exactly this package's; needs only
    SELECT, so a loader login can run it. Returns the versions."""
    applied, expected = applied_migrations(conn), [v for v, _ in migrations()]
    if applied == expected:
        return applied
    missing = [v for v in expected if v not in applied]
    unknown = [v for v in applied if v not in expected]
    detail = []
    if missing:
        detail.append(f"not applied: {', '.join(missing)}")
    if unknown:
        detail.append(f"applied but unknown to this package (a newer deployment?): {', '.join(unknown)}")
    raise SchemaOutOfDate(
        f"warehouse schema is not at this package's version ({'; '.join(detail)}). DAG runs do not "
        "migrate: run `imr db upgrade` as the warehouse owner (compose: airflow-init; native stack: "
        "make stack-start), then re-run."
    )


# --------------------------------------------------------------------------- manifest


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
    newly_pending = 0
    for page in _chunks(objects, page_size):
        rows = [(o["key"], _etag(o["etag"]), o.get("size"), o.get("last_modified")) for o in page]
        with _transaction(conn) as cur:
            cur.execute(
                "CREATE TEMP TABLE _register (key TEXT, etag TEXT, size BIGINT, last_modified TIMESTAMPTZ)"
                " ON COMMIT DROP"
            )
            copy_rows(cur, "_register", ("key", "etag", "size", "last_modified"), rows)
            cur.execute(_REGISTER_SQL, {"bucket": bucket, "run_id": run_id})
            newly_pending += cur.rowcount
    return newly_pending


_CLAIM_SQL = """
WITH picked AS (
    SELECT key FROM imr.s3_objects
    WHERE bucket = %(bucket)s
      AND (%(prefix)s::text IS NULL OR starts_with(key, %(prefix)s::text))
      AND ((status = ANY(%(statuses)s::text[]) AND claimed_by IS NULL)
           OR (status = 'processing' AND claimed_at < now() - %(stale_after)s::interval))
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
), numbered AS (
    SELECT key, (row_number() OVER (ORDER BY key) - 1) / %(batch_size)s AS n FROM claimed
)
INSERT INTO imr.batches (run_id, bucket, keys)
SELECT %(run_id)s, %(bucket)s, array_agg(key ORDER BY key) FROM numbered GROUP BY n ORDER BY n
RETURNING batch_id
"""


def claim_batches(
    conn,
    bucket: str,
    run_id: str,
    batch_size: int,
    prefix: str | None = None,
    statuses: Sequence[str] = ("pending",),
    max_batches: int | None = None,
    stale_after: timedelta = timedelta(hours=6),
) -> list[int]:
    """Claim up to max_batches * batch_size keys for `run_id` and return the new batch ids.

    Rows are picked FOR UPDATE SKIP LOCKED and stamped claimed_by = run_id in one statement, so two
    runs claiming at the same moment get disjoint keys, and a key another run holds is not claimable
    until it is loaded or released. A claim older than `stale_after` (a run that died) is taken over.
    The key lists stay in imr.batches: the caller hands the (small) list of ids to its workers, each
    of which reads its keys with get_batch(). `max_batches` bounds one run's fan-out (Airflow maps at
    most core.max_map_length tasks); what is left stays pending for the next run."""
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
    }
    with _transaction(conn) as cur:
        cur.execute(_CLAIM_SQL, params)
        return sorted(r[0] for r in cur.fetchall())


def get_batch(conn, batch_id: int) -> Batch:
    """A batch's keys in order, with the ETag and size the manifest has for each."""
    with _transaction(conn) as cur:
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
    with _transaction(conn) as cur:
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
    with _transaction(conn) as cur:
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
    with _transaction(conn) as cur:
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


# --------------------------------------------------------------------------- loading


def validation_error(letter: Letter) -> tuple[str, str] | None:
    """Why the warehouse cannot take this letter, or None.

    Checked before the batch transaction so that one malformed record is quarantined on its own
    instead of aborting (and, on every retry, re-aborting) the batch it is in."""
    if not isinstance(letter.case_number, str) or not CASE_NUMBER.match(letter.case_number):
        return "header_missing_field", f"case_number {letter.case_number!r} does not match CMyy-nnnnnnn"
    age = letter.patient_age
    if age is not None and (not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= 130):
        return "header_missing_field", f"patient_age {age!r} is not an age"
    for name in DATE_FIELDS:
        value = getattr(letter, name)
        if value is not None and not isinstance(value, date):
            return "header_missing_field", f"{name} {value!r} is not a date"
    states = letter.reviewer_licensure_states
    if states is not None and not all(isinstance(s, str) for s in states):
        return "header_missing_field", "reviewer_licensure_states must be strings"
    seqs = [i.seq for i in letter.items]
    if any(not isinstance(s, int) or s < 1 for s in seqs) or len(set(seqs)) != len(seqs):
        return "item_structure", f"item seq values {seqs} are not distinct positive integers"
    for item in letter.items:
        if item.decision not in DECISIONS:
            return "item_structure", f"item {item.seq} decision {item.decision!r} is not Upheld/Overturned"
        if not isinstance(item.request, str) or not item.request.strip():
            return "item_structure", f"item {item.seq} has no request"
    return None


def _normalize(ord_: int, outcome: Sequence) -> _Row:
    key, etag, sha256, result = outcome
    sha256 = sha256 or None  # a failure before download (no bytes) has no digest
    if isinstance(result, dict):
        result = Letter.from_dict(result)
    if isinstance(result, Letter):
        if not isinstance(key, str) or not isinstance(sha256, str):
            raise ValueError(f"outcome for {key!r}: a loaded letter needs its object's key and sha256")
        problem = validation_error(result)
        if problem is None:
            return _Row(ord_, key, _etag(etag), sha256, result, None, None)
        return _Row(ord_, key, _etag(etag), sha256, None, *problem)
    if isinstance(result, LetterError):
        return _Row(ord_, key, _etag(etag), sha256, None, result.code, _clean(result.message))
    code, message = result
    return _Row(ord_, key, _etag(etag), sha256, None, code, _clean(message))


def letter_row(key: str, letter: Letter) -> tuple:
    """The staging row for a letter, in LETTER_COLUMNS order."""
    d = {f: getattr(letter, f) for f in LETTER_FIELDS}  # includes the derived outcome
    d = {k: _clean(v) for k, v in d.items()}
    if d["reviewer_licensure_states"] is not None:
        d["reviewer_licensure_states"] = [_clean(s) for s in d["reviewer_licensure_states"]]
    warnings = [{"code": _clean(w.code), "message": _clean(w.message)} for w in letter.warnings]
    return (
        key,
        *(d[f] for f in LETTER_FIELDS),
        _clean(letter.clinical_case_summary),
        json.dumps(warnings, ensure_ascii=False),
    )


def item_rows(key: str, letter: Letter) -> list[tuple]:
    """Staging rows for a letter's items, in ITEM_COLUMNS order."""
    return [(key, letter.case_number, *(_clean(getattr(i, f)) for f in ITEM_FIELDS)) for i in letter.items]


def _case(row: _Row) -> str | None:
    return row.letter.case_number if row.letter else None


def _stage(cur, rows: list[_Row], write: Writer) -> None:
    """Temp tables for this transaction, typed after the real ones, filled by `write`."""
    letter_cols = ", ".join(LETTER_COLUMNS[1:])
    item_cols = ", ".join(ITEM_COLUMNS[1:])
    cur.execute(
        f"""
        CREATE TEMP TABLE _result (ord INT, key TEXT, etag TEXT, sha256 TEXT, case_number TEXT,
                                   error_code TEXT, message TEXT) ON COMMIT DROP;
        CREATE TEMP TABLE _letter ON COMMIT DROP AS
            SELECT NULL::text AS key, {letter_cols} FROM imr.letters WITH NO DATA;
        CREATE TEMP TABLE _item ON COMMIT DROP AS
            SELECT NULL::text AS key, {item_cols} FROM imr.items WITH NO DATA;
        """
    )
    write(
        cur,
        "_result",
        ("ord", "key", "etag", "sha256", "case_number", "error_code", "message"),
        [(r.ord, r.key, r.etag, r.sha256, _case(r), r.error_code, r.message) for r in rows],
    )
    ok = [r for r in rows if r.letter is not None]
    write(cur, "_letter", LETTER_COLUMNS, [letter_row(r.key, r.letter) for r in ok])
    write(cur, "_item", ITEM_COLUMNS, [row for r in ok for row in item_rows(r.key, r.letter)])


def _match_manifest(cur, bucket: str, run_id: str, changed: Sequence[str]) -> int:
    """Keep (in _current) only results for the object version the manifest knows, locking those rows.

    A result whose ETag no longer matches was parsed from bytes that have since been replaced;
    register_objects already made the key pending again, so the result is dropped and the claim released.
    `changed` keys had no result: their listed version was gone at download (412 on If-Match). They
    go back to pending with the listed ETag kept, so the next discovery, which lists a different
    ETag, re-registers them as the new version. Returns how many of those this run released."""
    cur.execute(
        """
        SELECT 1 FROM imr.s3_objects
        WHERE bucket = %(bucket)s AND (key IN (SELECT key FROM _result) OR key = ANY(%(changed)s::text[]))
        ORDER BY key FOR UPDATE;
        CREATE TEMP TABLE _current ON COMMIT DROP AS
            SELECT r.*, o.last_modified FROM _result r
            JOIN imr.s3_objects o ON o.bucket = %(bucket)s AND o.key = r.key AND o.etag = r.etag;
        UPDATE imr.s3_objects o
        SET claimed_by = NULL, claimed_at = NULL, updated_at = now(),
            status = CASE WHEN o.status = 'processing' THEN 'pending' ELSE o.status END
        FROM _result r
        WHERE o.bucket = %(bucket)s AND o.key = r.key AND o.etag IS DISTINCT FROM r.etag
          AND o.claimed_by = %(run_id)s;
        """,
        {"bucket": bucket, "run_id": run_id, "changed": list(changed)},
    )
    if not changed:
        return 0
    cur.execute(
        """
        UPDATE imr.s3_objects
        SET claimed_by = NULL, claimed_at = NULL, updated_at = now(),
            status = CASE WHEN status = 'processing' THEN 'pending' ELSE status END
        WHERE bucket = %(bucket)s AND key = ANY(%(changed)s::text[]) AND claimed_by = %(run_id)s
        """,
        {"bucket": bucket, "run_id": run_id, "changed": list(changed)},
    )
    return cur.rowcount


def _decide_fates(cur, bucket: str) -> None:
    """_fate: each result's new status, and which object is the one to write for its case.

    A success byte-identical to the object that supplied its case's current version (other key) is a
    duplicate. Among the batch's other successes for one case the newest object wins (S3 LastModified,
    then batch order); a loser identical to the winner is a duplicate, a different one stays 'loaded'
    (processed, superseded)."""
    cur.execute(
        """
        CREATE TEMP TABLE _fate ON COMMIT DROP AS
        WITH ok AS (
            SELECT * FROM _current WHERE error_code IS NULL
        ), copies AS (
            SELECT ok.key FROM ok JOIN imr.letters l USING (case_number)
            WHERE l.source_sha256 = ok.sha256 AND (l.source_bucket, l.source_key) <> (%(bucket)s, ok.key)
        ), winners AS (
            SELECT DISTINCT ON (case_number) * FROM ok
            WHERE key NOT IN (SELECT key FROM copies)
            ORDER BY case_number, last_modified DESC NULLS LAST, ord DESC
        )
        SELECT c.key,
               CASE WHEN c.error_code IS NOT NULL THEN 'quarantined'
                    WHEN c.key IN (SELECT key FROM copies) THEN 'duplicate'
                    WHEN w.key = c.key THEN 'loaded'
                    WHEN w.sha256 = c.sha256 THEN 'duplicate'
                    ELSE 'loaded' END AS status,
               coalesce(w.key = c.key, false) AS is_winner
        FROM _current c LEFT JOIN winners w ON w.case_number = c.case_number
        """,
        {"bucket": bucket},
    )


def _upsert_letters(cur, bucket: str, parser_version: str) -> None:
    """Write the winning letters into imr.letters; _applied lists the cases actually (re)written.

    An existing case is replaced unless it came from a newer object than this one, so the final
    version does not depend on which run or batch happened to process which object first."""
    cols = LETTER_COLUMNS[1:]
    source = ("source_bucket", "source_key", "source_etag", "source_sha256", "source_last_modified")
    # cols[0] is case_number, the conflict target.
    updates = ",\n            ".join(f"{c} = excluded.{c}" for c in (*cols[1:], *source))
    cur.execute(
        f"""
        CREATE TEMP TABLE _applied (case_number TEXT, key TEXT) ON COMMIT DROP;
        WITH up AS (
            INSERT INTO imr.letters AS tgt ({", ".join(cols)}, source_bucket, source_key, source_etag,
                                     source_sha256, source_last_modified, parser_version, loaded_at)
            SELECT {", ".join("l." + c for c in cols)}, %(bucket)s, c.key, c.etag, c.sha256, c.last_modified,
                   %(pv)s, now()
            FROM _letter l
            JOIN _fate f ON f.key = l.key AND f.is_winner
            JOIN _current c ON c.key = l.key
            ORDER BY l.case_number  -- a fixed lock order: concurrent batches cannot deadlock on letters
            ON CONFLICT (case_number) DO UPDATE SET
            {updates},
            parser_version = excluded.parser_version, loaded_at = excluded.loaded_at
            WHERE (tgt.source_bucket = excluded.source_bucket AND tgt.source_key = excluded.source_key)
               OR (excluded.source_last_modified < tgt.source_last_modified) IS NOT TRUE
            RETURNING tgt.case_number, tgt.source_key
        )
        INSERT INTO _applied SELECT * FROM up
        """,
        {"bucket": bucket, "pv": parser_version},
    )


def _replace_items(cur) -> int:
    """The items of every (re)written case are replaced wholesale: a corrected letter may have more,
    fewer or renumbered items."""
    cols = ", ".join(ITEM_COLUMNS[1:])
    cur.execute(
        f"""
        DELETE FROM imr.items WHERE case_number IN (SELECT case_number FROM _applied);
        INSERT INTO imr.items ({cols})
        SELECT {", ".join("i." + c for c in ITEM_COLUMNS[1:])}
        FROM _item i JOIN _applied a ON a.key = i.key AND a.case_number = i.case_number;
        """
    )
    return cur.rowcount


def _update_manifest(cur, bucket: str, run_id: str, parser_version: str) -> Counter:
    cur.execute(
        """
        UPDATE imr.s3_objects o
        SET status = f.status, case_number = c.case_number, sha256 = c.sha256, parser_version = %(pv)s,
            error_code = c.error_code, error_message = c.message, claimed_by = NULL, claimed_at = NULL,
            last_run_id = %(run_id)s, first_run_id = coalesce(o.first_run_id, %(run_id)s), updated_at = now()
        FROM _current c JOIN _fate f USING (key)
        WHERE o.bucket = %(bucket)s AND o.key = c.key
        RETURNING f.status
        """,
        {"bucket": bucket, "run_id": run_id, "pv": parser_version},
    )
    return Counter(r[0] for r in cur.fetchall())


def _log_failures(cur, bucket: str, run_id: str, task_id: str | None, map_index: int | None) -> None:
    """Open a parse_failures row per failure (once per run, even if the task is retried) and resolve
    the open ones of keys that now loaded."""
    cur.execute(
        """
        INSERT INTO imr.parse_failures
            (bucket, key, etag, dag_run_id, task_id, map_index, error_code, message)
        SELECT %(bucket)s, key, etag, %(run_id)s, %(task_id)s, %(map_index)s, error_code, message
        FROM _current WHERE error_code IS NOT NULL
        ON CONFLICT (bucket, key, etag, dag_run_id, error_code) WHERE resolved_at IS NULL DO NOTHING;
        UPDATE imr.parse_failures p SET resolved_at = now()
        FROM _fate f
        WHERE p.bucket = %(bucket)s AND p.key = f.key AND p.resolved_at IS NULL
          AND f.status IN ('loaded', 'duplicate');
        """,
        {"bucket": bucket, "run_id": run_id, "task_id": task_id, "map_index": map_index},
    )


def _load(
    conn,
    bucket: str,
    results: Iterable[Sequence],
    run_id: str,
    task_id: str | None,
    map_index: int | None,
    parser_version: str,
    batch_id: int | None,
    write: Writer,
    changed: Sequence[str] = (),
) -> dict[str, int]:
    # One outcome per key (the last one reported): the set-wise merge needs unique keys.
    by_key = {r.key: r for r in (_normalize(i, r) for i, r in enumerate(results))}
    rows = sorted(by_key.values(), key=lambda r: r.ord)
    with _transaction(conn) as cur:
        _stage(cur, rows, write)
        released = _match_manifest(cur, bucket, run_id, changed)
        _decide_fates(cur, bucket)
        _upsert_letters(cur, bucket, parser_version)
        cur.execute("SELECT count(*) FROM _applied")
        letters_written = cur.fetchone()[0]
        items_written = _replace_items(cur)
        statuses = _update_manifest(cur, bucket, run_id, parser_version)
        _log_failures(cur, bucket, run_id, task_id, map_index)
        if batch_id is not None:
            cur.execute("UPDATE imr.batches SET finished_at = now() WHERE batch_id = %s", (batch_id,))
    processed = sum(statuses.values())
    return {
        "loaded": statuses["loaded"],
        "duplicate": statuses["duplicate"],
        "quarantined": statuses["quarantined"],
        "stale": len(rows) - processed,
        "changed": released,
        "letters_written": letters_written,
        "items_written": items_written,
    }


def load_batch(
    conn,
    bucket: str,
    results: Iterable[Sequence],
    run_id: str,
    task_id: str | None = None,
    map_index: int | None = None,
    parser_version: str = PARSER_VERSION,
    batch_id: int | None = None,
    changed: Sequence[str] = (),
) -> dict[str, int]:
    """Load one batch of worker outcomes (see Outcome) in ONE transaction; return counts.

    Letters and items are COPYed into temp staging tables, then merged set-wise: a case's letter and
    items are replaced together or not at all, and any error rolls the whole batch back (manifest
    included), so a retry starts from a clean state. Loading the same outcomes twice changes nothing.
    Returns {loaded, duplicate, quarantined, stale, changed, letters_written, items_written}; `stale`
    counts outcomes whose ETag the manifest no longer has (the object changed meanwhile: it is pending
    again). `changed` are keys of the batch with no outcome because their listed version was gone at
    download (S3 answered 412 to If-Match): released to pending in the same transaction (see
    _match_manifest); the count says how many."""
    return _load(
        conn, bucket, results, run_id, task_id, map_index, parser_version, batch_id, copy_rows, changed
    )


def load_rows_executemany(
    conn,
    bucket: str,
    results: Iterable[Sequence],
    run_id: str,
    task_id: str | None = None,
    map_index: int | None = None,
    parser_version: str = PARSER_VERSION,
    batch_id: int | None = None,
) -> dict[str, int]:
    """load_batch with the staging rows sent by cursor.executemany instead of COPY: the benchmark's
    baseline. Same data, same merge; only the client-to-server transfer differs."""
    return _load(conn, bucket, results, run_id, task_id, map_index, parser_version, batch_id, insert_rows)


# --------------------------------------------------------------------------- reporting


def summary(conn) -> dict:
    """Counts for the demo printout: objects by status, open quarantine by error code, rows per table
    and the latest result of each data-quality check."""
    out: dict[str, Any] = {}
    with _transaction(conn) as cur:
        cur.execute("SELECT status, count(*) FROM imr.s3_objects GROUP BY status ORDER BY status")
        out["objects_by_status"] = {s: 0 for s in STATUSES} | dict(cur.fetchall())
        cur.execute(
            "SELECT error_code, count(*) FROM imr.s3_objects WHERE status = 'quarantined'"
            " GROUP BY error_code ORDER BY count(*) DESC, error_code"
        )
        out["quarantined_by_error_code"] = dict(cur.fetchall())
        rows = {}
        for table in ("letters", "items", "s3_objects", "batches", "parse_failures", "dq_results"):
            cur.execute(f"SELECT count(*) FROM imr.{table}")
            rows[table] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM imr.parse_failures WHERE resolved_at IS NULL")
        rows["parse_failures_open"] = cur.fetchone()[0]
        out["rows"] = rows
        cur.execute(
            """
            SELECT DISTINCT ON (check_name) check_name, run_id, passed, observed, checked_at
            FROM imr.dq_results ORDER BY check_name, checked_at DESC, id DESC
            """
        )
        out["latest_dq"] = [
            {"check": r[0], "run_id": r[1], "passed": r[2], "observed": r[3], "checked_at": r[4].isoformat()}
            for r in cur.fetchall()
        ]
    return out
