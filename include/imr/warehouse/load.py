"""Loading parsed letters: what the loader takes (`ObjectResult`, whose `result` is `Parsed` or
`Failed`), the checks a letter must pass to be loadable (`validation_error`), and `load_batch`, which
COPYs one batch into staging tables and merges it into imr.letters, imr.items, the manifest and
imr.parse_failures in ONE transaction."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from imr import PARSER_VERSION
from imr.errors import LetterError
from imr.records import DATE_FIELDS, DECISIONS, ITEM_FIELDS, LETTER_FIELDS, LETTER_FORMATS, Letter

from .db import Writer, bare_etag, clean_text, copy_rows, transaction
from .manifest import lock_leased_batch

CASE_NUMBER = re.compile(r"^CM\d{2}-\d{7}$")

# Column order of the staging tables (and of the rows built for them); LETTER_FIELDS includes the
# v3 `letter_format` (migration 0011).
LETTER_COLUMNS = ("key", *LETTER_FIELDS, "clinical_case_summary", "warnings")
# The enriched fields (contract v2) as imr.items stores them (migration 0004): NULL for an item
# whose `citations` is None (a record from a parser older than the enrichment).
ENRICHED_ITEM_COLUMNS = (
    "category",
    "subcategory",
    "claims_administrator_evidence",
    "expert_reviewer_evidence",
)
ITEM_COLUMNS = ("key", "case_number", *ITEM_FIELDS, *ENRICHED_ITEM_COLUMNS)
CITATION_SOURCES = ("claims_administrator", "expert_reviewer")
CITATION_COLUMNS = (
    "key",
    "case_number",
    "seq",
    "source",
    "ordinal",
    "family",
    "title",
    "year",
    "sections",
    "text",
)


@dataclass(frozen=True)
class Parsed:
    """The parser read a letter from the object."""

    letter: Letter


@dataclass(frozen=True)
class Failed:
    """The object cannot be loaded: a rejection code (errors.REJECTION_CODES) and a message for logs."""

    code: str
    message: str

    @classmethod
    def from_error(cls, exc: LetterError) -> Failed:
        return cls(exc.code, exc.message)


class ObjectResult(NamedTuple):
    """What parsing one S3 object produced, as the loader takes it: the key and ETag the manifest
    listed, sha256 (hex digest of the object's bytes: required with Parsed; None for a failure
    before download) and the result, Parsed or Failed. The pipeline builds these where the worker
    results arrive (imr.pipeline)."""

    key: str
    etag: str
    sha256: str | None
    result: Parsed | Failed


class _Row(NamedTuple):
    """An ObjectResult after validation: a loadable letter, or an error code and message."""

    ord: int
    key: str
    etag: str
    sha256: str | None
    letter: Letter | None
    error_code: str | None
    message: str | None


def validation_error(letter: Letter) -> tuple[str, str] | None:
    """Why the warehouse cannot take this letter, or None.

    Checked before the batch transaction so that one malformed record is quarantined on its own
    instead of aborting (and, on every retry, re-aborting) the batch it is in."""
    return (
        _header_error(letter)
        or next(filter(None, map(_item_error, letter.items)), None)
        or _seq_error(letter)
    )


def _header_error(letter: Letter) -> tuple[str, str] | None:
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
    # imr.letters checks the value too, but a CHECK failure would abort the whole batch.
    if letter.letter_format is not None and letter.letter_format not in LETTER_FORMATS:
        return (
            "header_missing_field",
            f"letter_format {letter.letter_format!r} is not one of {LETTER_FORMATS}",
        )
    return None


def _seq_error(letter: Letter) -> tuple[str, str] | None:
    seqs = [i.seq for i in letter.items]
    if any(not isinstance(s, int) or s < 1 for s in seqs) or len(set(seqs)) != len(seqs):
        return "item_structure", f"item seq values {seqs} are not distinct positive integers"
    return None


def _item_error(item) -> tuple[str, str] | None:
    if item.decision not in DECISIONS:
        return "item_structure", f"item {item.seq} decision {item.decision!r} is not Upheld/Overturned"
    if not isinstance(item.request, str) or not item.request.strip():
        return "item_structure", f"item {item.seq} has no request"
    problem = _enrichment_error(item)
    if problem:
        return "item_structure", f"item {item.seq} {problem}"
    return None


CITATION_FAMILIES = ("MTUS", "ODG", "ACOEM", "other")


def _enrichment_error(item) -> str | None:
    """What in an item's enriched fields imr.items / imr.item_citations would refuse, or None (the
    fields may all be None: a record from a parser older than the enrichment)."""
    for name in ("category", "subcategory"):
        if getattr(item, name) is not None and not isinstance(getattr(item, name), str):
            return f"{name} {getattr(item, name)!r} is not text"
    if item.citations is None:
        return None
    if not isinstance(item.citations, dict):
        return "citations is not an object"
    for source in CITATION_SOURCES:
        part = item.citations.get(source)
        if not isinstance(part, dict) or part.get("evidence") not in ("cited", "none"):
            return f"citations.{source}.evidence is not cited/none"
        for c in part.get("citations") or []:
            if not isinstance(c, dict) or c.get("family") not in CITATION_FAMILIES:
                return f"citations.{source} has a citation without a known family"
    return None


def _row(ord_: int, r: ObjectResult) -> _Row:
    """The staging row for one result: a Parsed letter that fails validation_error becomes a failure
    with that code, so it is quarantined on its own and counted under its code."""
    etag, sha256 = bare_etag(r.etag), r.sha256 or None  # a failure before download has no digest
    match r.result:
        case Parsed(letter):
            if not isinstance(r.key, str) or not isinstance(sha256, str):
                raise ValueError(f"result for {r.key!r}: a loaded letter needs its object's key and sha256")
            problem = validation_error(letter)
            if problem is None:
                return _Row(ord_, r.key, etag, sha256, letter, None, None)
            return _Row(ord_, r.key, etag, sha256, None, *problem)
        case Failed(code, message):
            return _Row(ord_, r.key, etag, sha256, None, code, clean_text(message))
    raise TypeError(f"result for {r.key!r} must be Parsed or Failed, not {type(r.result).__name__}")


def letter_row(key: str, letter: Letter) -> tuple:
    """The staging row for a letter, in LETTER_COLUMNS order."""
    d = {f: getattr(letter, f) for f in LETTER_FIELDS}  # includes the derived outcome
    d = {k: clean_text(v) for k, v in d.items()}
    if d["reviewer_licensure_states"] is not None:
        d["reviewer_licensure_states"] = [clean_text(s) for s in d["reviewer_licensure_states"]]
    warnings = [{"code": clean_text(w.code), "message": clean_text(w.message)} for w in letter.warnings]
    return (
        key,
        *(d[f] for f in LETTER_FIELDS),
        clean_text(letter.clinical_case_summary),
        json.dumps(warnings, ensure_ascii=False),
    )


def _evidence(item, source: str) -> str | None:
    part = (item.citations or {}).get(source)
    return part.get("evidence") if isinstance(part, dict) else None


def item_rows(key: str, letter: Letter) -> list[tuple]:
    """Staging rows for a letter's items, in ITEM_COLUMNS order."""
    return [
        (
            key,
            letter.case_number,
            *(clean_text(getattr(i, f)) for f in ITEM_FIELDS),
            clean_text(i.category),
            clean_text(i.subcategory),
            *(_evidence(i, s) for s in CITATION_SOURCES),
        )
        for i in letter.items
    ]


def citation_rows(key: str, letter: Letter) -> list[tuple]:
    """Staging rows for a letter's parsed citations, in CITATION_COLUMNS order: per item and source,
    ordinal 1, 2, ... in text order."""
    rows = []
    for i in letter.items:
        for source in CITATION_SOURCES:
            part = (i.citations or {}).get(source) or {}
            for n, c in enumerate(part.get("citations") or [], 1):
                year = c.get("year")
                rows.append(
                    (
                        key,
                        letter.case_number,
                        i.seq,
                        source,
                        n,
                        c.get("family"),
                        clean_text(c.get("title")),
                        year if isinstance(year, int) and not isinstance(year, bool) else None,
                        clean_text(c.get("sections")),
                        clean_text(c.get("text")),
                    )
                )
    return rows


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
        CREATE TEMP TABLE _citation ON COMMIT DROP AS
            SELECT NULL::text AS key, {", ".join(CITATION_COLUMNS[1:])} FROM imr.item_citations WITH NO DATA;
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
    write(cur, "_citation", CITATION_COLUMNS, [row for r in ok for row in citation_rows(r.key, r.letter)])


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
    fewer or renumbered items. Their citations go with them (ON DELETE CASCADE) and are re-inserted
    from the staged ones. Returns the number of items written."""
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


def _update_manifest(cur, bucket: str, run_id: str, parser_version: str) -> tuple[Counter, Counter]:
    """Each result's object gets its new status; returns (objects per status, quarantined objects
    per error code)."""
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
) -> dict:
    """Load one batch of results (see ObjectResult) in ONE transaction; return counts.

    Letters and items are COPYed into temp staging tables, then merged set-wise: a case's letter and
    items are replaced together or not at all, and any error rolls the whole batch back (manifest
    included), so a retry starts from a clean state. Loading the same results twice changes nothing.
    Returns {loaded, duplicate, quarantined, stale, changed, letters_written, items_written} and
    `quarantined_by_code` ({error_code: n}, summing to `quarantined`, letters that failed
    validation_error included). `stale` counts results whose ETag the manifest no longer has (the
    object changed meanwhile: it is pending again). `changed` are keys of the batch with no result
    because their listed version was gone at download (S3 answered 412 to If-Match): released to
    pending in the same transaction (see _match_manifest); the count says how many. `write` fills the
    staging tables (COPY; the benchmark passes its executemany baseline). With `lease_owner` (a lane
    of imr.pipeline.run_lane), the batch row is locked first and LeaseLost raised, nothing written,
    unless that lane still holds the batch unfinished: a batch is loaded once even when its lease
    expired under a slow lane and another lane took it over."""
    # One result per key (the last one reported): the set-wise merge needs unique keys.
    by_key = {r.key: r for r in (_row(i, r) for i, r in enumerate(results))}
    rows = sorted(by_key.values(), key=lambda r: r.ord)
    with transaction(conn) as cur:
        if lease_owner is not None and batch_id is not None:
            lock_leased_batch(cur, batch_id, lease_owner)
        _stage(cur, rows, write)
        released = _match_manifest(cur, bucket, run_id, changed)
        _decide_fates(cur, bucket)
        _upsert_letters(cur, bucket, parser_version)
        cur.execute("SELECT count(*) FROM _applied")
        letters_written = cur.fetchone()[0]
        items_written = _replace_items(cur)
        statuses, codes = _update_manifest(cur, bucket, run_id, parser_version)
        _log_failures(cur, bucket, run_id, task_id, map_index)
        if batch_id is not None:
            # Per-batch outcome for imr.progress: a run's batches are cheap to sum, its manifest rows not.
            cur.execute(
                "UPDATE imr.batches SET finished_at = now(), loaded = %s, quarantined = %s, duplicate = %s"
                " WHERE batch_id = %s",
                (statuses["loaded"], statuses["quarantined"], statuses["duplicate"], batch_id),
            )
    processed = sum(statuses.values())
    return {
        "loaded": statuses["loaded"],
        "duplicate": statuses["duplicate"],
        "quarantined": statuses["quarantined"],
        "stale": len(rows) - processed,
        "changed": released,
        "letters_written": letters_written,
        "items_written": items_written,
        "quarantined_by_code": dict(codes),
    }
