"""The merge of one staged batch into the warehouse, as the steps `load_batch` runs in order in
ONE transaction. Each step reads and writes named tables; the temp ones (ON COMMIT DROP) carry the
batch from step to step:

1. `stage`: rows -> `_result` (every result), `_letter`, `_item`, `_citation` (the loadable ones)
2. `match_manifest`: `_result` + imr.s3_objects -> `_current` (results for the version the
   manifest knows, with its LastModified); stale and changed keys released
3. `decide_fates`: `_current` + imr.letters -> `_fate` (key, new status, is_winner)
4. `upsert_letters`: `_letter` + `_fate` + `_current` -> imr.letters, `_applied` (cases rewritten)
5. `replace_items`: `_item` + `_citation` + `_applied` -> imr.items, imr.item_citations
6. `update_manifest`: `_current` + `_fate` -> imr.s3_objects (status per object)
7. `log_failures`: `_current` + `_fate` -> imr.parse_failures (opened, resolved)

and `finish_batch` records the outcome on imr.batches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .db import Writer
from .rows import (
    CITATION_COLUMNS,
    ITEM_COLUMNS,
    LETTER_COLUMNS,
    StagedRow,
    case_of,
    citation_rows,
    item_rows,
    letter_row,
)


def stage(cur, rows: list[StagedRow], write: Writer) -> None:
    """Step 1. Temp tables for this transaction, typed after the real ones, filled by `write`.

    Writes `_result` (ord, key, etag, sha256, case_number, error_code, message: every row),
    `_letter`, `_item` and `_citation` (the loadable rows' staging rows).

    :param cur: the batch transaction's cursor.
    :param rows: the batch's checked rows (`rows.staged_rows`).
    :param write: the writer that fills a table (COPY by default).
    """
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
        CREATE TEMP TABLE _citation ON COMMIT DROP AS
            SELECT NULL::text AS key, {", ".join(CITATION_COLUMNS[1:])} FROM imr.item_citations WITH NO DATA;
        """
    )
    write(
        cur,
        "_result",
        ("ord", "key", "etag", "sha256", "case_number", "error_code", "message"),
        [(r.ord, r.key, r.etag, r.sha256, case_of(r), r.error_code, r.message) for r in rows],
    )
    ok = [r for r in rows if r.letter is not None]
    write(cur, "_letter", LETTER_COLUMNS, [letter_row(r.key, r.letter) for r in ok])
    write(cur, "_item", ITEM_COLUMNS, [row for r in ok for row in item_rows(r.key, r.letter)])
    write(cur, "_citation", CITATION_COLUMNS, [row for r in ok for row in citation_rows(r.key, r.letter)])
    # Row counts for the planner: unanalysed, a temp table is guessed at ~1,000 rows, and against a
    # manifest or items table not yet much bigger than that the joins below became sequential scans.
    cur.execute("ANALYZE _result, _letter, _item, _citation")


def match_manifest(cur, bucket: str, run_id: str, changed: Sequence[str]) -> int:
    """Step 2. Reads `_result`; writes `_current` (`_result`'s columns plus the object's
    last_modified): only results for the object version the manifest knows, their rows locked.

    A result whose ETag no longer matches was parsed from bytes that have since been replaced;
    register_objects already made the key pending again, so the result is dropped and the claim released.
    `changed` keys had no result: their listed version was gone at download (412 on If-Match). They
    go back to pending with the listed ETag kept, so the next discovery, which lists a different
    ETag, re-registers them as the new version.

    :param cur: the batch transaction's cursor.
    :param bucket: the bucket.
    :param run_id: the run whose claims are released.
    :param changed: keys with no result (their listed version was gone at download).
    :return: how many of the `changed` keys this run released.
    """
    cur.execute(
        """
        -- One array of keys, not `key IN (subquery) OR key = ANY(...)`: the OR made the planner
        -- scan the whole manifest (254 ms a batch at 1.7 M objects, against 0.04 ms by the key).
        SELECT 1 FROM imr.s3_objects
        WHERE bucket = %(bucket)s AND key = ANY(ARRAY(SELECT key FROM _result) || %(changed)s::text[])
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


def decide_fates(cur, bucket: str) -> None:
    """Step 3. Reads `_current` and imr.letters; writes `_fate` (key, status, is_winner): each
    result's new status, and which object is the one to write for its case.

    A success byte-identical to the object that supplied its case's current version (other key) is a
    duplicate. Among the batch's other successes for one case the newest object wins (S3 LastModified,
    then batch order); a loser identical to the winner is a duplicate, a different one stays 'loaded'
    (processed, superseded).

    :param cur: the batch transaction's cursor.
    :param bucket: the bucket (a copy under another key of the same bucket is a duplicate).
    """
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
        FROM _current c LEFT JOIN winners w ON w.case_number = c.case_number;
        ANALYZE _current, _fate  -- (see stage)
        """,
        {"bucket": bucket},
    )


def upsert_letters(cur, bucket: str, parser_version: str) -> int:
    """Step 4. Reads `_letter`, `_fate` (winners) and `_current`; writes imr.letters and `_applied`
    (case_number, key): the cases actually (re)written.

    An existing case is replaced unless it came from a newer object than this one, so the final
    version does not depend on which run or batch happened to process which object first.

    :param cur: the batch transaction's cursor.
    :param bucket: stored as each letter's source_bucket.
    :param parser_version: stored with each letter.
    :return: how many letters were (re)written.
    """
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
        INSERT INTO _applied SELECT * FROM up;
        ANALYZE _applied  -- (see stage)
        """,
        {"bucket": bucket, "pv": parser_version},
    )
    cur.execute("SELECT count(*) FROM _applied")
    return cur.fetchone()[0]


def replace_items(cur) -> int:
    """Step 5. Reads `_item`, `_citation` and `_applied`; writes imr.items and imr.item_citations.

    The items of every (re)written case are replaced wholesale: a corrected letter may have more,
    fewer or renumbered items. Their citations go with them (ON DELETE CASCADE) and are re-inserted
    from the staged ones.

    :param cur: the batch transaction's cursor.
    :return: the number of items written.
    """
    cols = ", ".join(ITEM_COLUMNS[1:])
    cur.execute(
        f"""
        DELETE FROM imr.items WHERE case_number IN (SELECT case_number FROM _applied);
        INSERT INTO imr.items ({cols})
        SELECT {", ".join("i." + c for c in ITEM_COLUMNS[1:])}
        FROM _item i JOIN _applied a ON a.key = i.key AND a.case_number = i.case_number;
        """
    )
    items_written = cur.rowcount
    cite_cols = CITATION_COLUMNS[1:]
    cur.execute(
        f"""
        INSERT INTO imr.item_citations ({", ".join(cite_cols)})
        SELECT {", ".join("c." + col for col in cite_cols)}
        FROM _citation c JOIN _applied a ON a.key = c.key AND a.case_number = c.case_number
        """
    )
    return items_written


def update_manifest(cur, bucket: str, run_id: str, parser_version: str) -> tuple[Counter, Counter]:
    """Step 6. Reads `_current` and `_fate`; writes imr.s3_objects: each result's object gets its
    new status, digest, case and error, and its claim is released.

    :param cur: the batch transaction's cursor.
    :param bucket: the bucket.
    :param run_id: stored as the objects' last_run_id (and first_run_id when unset).
    :param parser_version: stored with each object.
    :return: (objects per new status, quarantined objects per error code).
    """
    cur.execute(
        """
        UPDATE imr.s3_objects o
        SET status = f.status, case_number = c.case_number, sha256 = c.sha256, parser_version = %(pv)s,
            error_code = c.error_code, error_message = c.message, claimed_by = NULL, claimed_at = NULL,
            last_run_id = %(run_id)s, first_run_id = coalesce(o.first_run_id, %(run_id)s), updated_at = now()
        FROM _current c JOIN _fate f USING (key)
        WHERE o.bucket = %(bucket)s AND o.key = c.key
        RETURNING f.status, c.error_code
        """,
        {"bucket": bucket, "run_id": run_id, "pv": parser_version},
    )
    rows = cur.fetchall()
    return Counter(r[0] for r in rows), Counter(r[1] for r in rows if r[0] == "quarantined")


def log_failures(cur, bucket: str, run_id: str, task_id: str | None, map_index: int | None) -> None:
    """Step 7. Reads `_current` and `_fate`; writes imr.parse_failures: opens a row per failure
    (once per run, even if the task is retried) and resolves the open ones of keys that now loaded.

    :param cur: the batch transaction's cursor.
    :param bucket: the bucket.
    :param run_id: the failure's dag_run_id.
    :param task_id: the failure's task_id.
    :param map_index: the failure's map_index.
    """
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


def finish_batch(cur, batch_id: int, statuses: Counter) -> None:
    """Per-batch outcome for imr.read.progress (a run's batches are cheap to sum, its manifest rows
    not): marks the batch finished with its counts.

    :param cur: the batch transaction's cursor.
    :param batch_id: the imr.batches row.
    :param statuses: objects per new status (`update_manifest`'s first result).
    """
    cur.execute(
        "UPDATE imr.batches SET finished_at = now(), loaded = %s, quarantined = %s, duplicate = %s"
        " WHERE batch_id = %s",
        (statuses["loaded"], statuses["quarantined"], statuses["duplicate"], batch_id),
    )
