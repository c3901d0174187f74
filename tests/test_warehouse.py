"""imr.warehouse and imr.quality against a real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import date, timedelta

import psycopg2
import pytest

from imr import PARSER_VERSION, quality, warehouse
from imr.enrich import enrich_letter
from imr.errors import LetterError
from imr.read import report
from imr.records import Item, Letter, ParseWarning
from imr.warehouse import Failed, ObjectResult, Parsed
from imr.warehouse import merge as warehouse_merge
from imr.warehouse import rows as warehouse_rows
from loader_baseline import load_rows_executemany
from support.builders import BUCKET, claim_all, ingest, obj, ok, one, q

pytestmark = pytest.mark.integration


def letter(case: str, decisions: tuple[str, ...] = ("Upheld",), **kw) -> Letter:
    items = [
        Item(
            seq=n,
            request=f"request {n} for {case}",
            decision=d,
            claims_administrator_guideline="MTUS",
            maximus_guideline="ODG",
            decision_rationale=f"rationale {n}",
        )
        for n, d in enumerate(decisions, 1)
    ]
    fields = {
        "date_assigned": date(2017, 1, 5),
        "date_of_injury": date(2016, 11, 10),
        "decision_date": date(2017, 2, 1),
        "ur_denial_date": date(2016, 12, 8),
        "application_received": date(2016, 12, 30),
        "priority": "Standard",
        "reviewer_specialty": "Family Practice",
        "reviewer_licensure_states": ["Ohio", "California"],
        "patient_age": 54,
        "patient_sex": "female",
        "clinical_case_summary": "The patient is a 54 year old female.",
    }
    fields.update(kw)
    return enrich_letter(Letter(case_number=case, items=items, **fields))


def fail(key: str, code: str = "no_text_layer", message: str = "scanned") -> ObjectResult:
    return ObjectResult(key, f"{key}-etag", f"sha-{key}", Failed(code, message))


def snapshot(conn) -> dict:
    """Everything a load can change, for before/after comparisons."""
    return {
        "letters": q(
            conn, "SELECT case_number, source_key, source_sha256, outcome FROM imr.letters ORDER BY 1"
        ),
        "items": q(conn, "SELECT case_number, seq, request, decision FROM imr.items ORDER BY 1, 2"),
        "objects": q(
            conn,
            "SELECT key, etag, status, case_number, error_code, claimed_by, attempts"
            " FROM imr.s3_objects ORDER BY 1",
        ),
        "failures": q(
            conn, "SELECT key, error_code, resolved_at IS NULL FROM imr.parse_failures ORDER BY 1, 2"
        ),
    }


# --------------------------------------------------------------------------- migrations


def test_migrations_apply_once_and_are_idempotent(pg_conn):
    first = warehouse.upgrade(pg_conn)
    assert first == [v for v, _ in warehouse.migrations()] and first[0] == "0001_schema"
    before = q(pg_conn, "SELECT version, applied_at FROM imr.schema_migrations ORDER BY 1")
    assert warehouse.upgrade(pg_conn) == []
    assert q(pg_conn, "SELECT version, applied_at FROM imr.schema_migrations ORDER BY 1") == before
    tables = {r[0] for r in q(pg_conn, "SELECT tablename FROM pg_tables WHERE schemaname = 'imr'")}
    assert {"letters", "items", "s3_objects", "batches", "parse_failures", "dq_results"} <= tables


def test_concurrent_upgrades_serialize(pg_dsn):
    conns = [psycopg2.connect(pg_dsn) for _ in range(3)]
    results, errors = [], []
    barrier = threading.Barrier(len(conns))

    def run(c):
        barrier.wait()
        try:
            results.append(warehouse.upgrade(c))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    assert sorted(map(len, results)) == [0, 0, len(warehouse.migrations())]
    assert one(conns[0], "SELECT count(*) FROM imr.schema_migrations") == len(warehouse.migrations())
    [c.close() for c in conns]


# --------------------------------------------------------------------------- manifest


def test_register_is_incremental(wh_conn):
    objs = [obj(f"letters/CM16-000000{i}.pdf") for i in range(5)]
    assert warehouse.register_objects(wh_conn, BUCKET, objs, "run1", page_size=2) == 5
    assert warehouse.register_objects(wh_conn, BUCKET, objs, "run2") == 0  # nothing new
    objs[0] = obj(objs[0]["key"], etag='"changed"')
    assert warehouse.register_objects(wh_conn, BUCKET, objs, "run3") == 1
    rows = q(wh_conn, "SELECT key, etag, status, first_run_id, last_run_id FROM imr.s3_objects ORDER BY key")
    assert rows[0] == (objs[0]["key"], "changed", "pending", "run1", "run3")  # quotes stripped
    assert {r[4] for r in rows[1:]} == {"run1"}


def test_round_trip_register_claim_load(wh_conn):
    objs = [obj(f"letters/CM16-00000{i:02d}.pdf", minutes=i) for i in range(7)]
    warehouse.register_objects(wh_conn, BUCKET, objs, "run1")
    batch_ids = warehouse.claim_batches(wh_conn, BUCKET, "run1", batch_size=3)
    assert len(batch_ids) == 3  # 3 + 3 + 1
    assert one(wh_conn, "SELECT count(*) FROM imr.s3_objects WHERE status = 'processing'") == 7
    assert warehouse.claim_batches(wh_conn, BUCKET, "run2", batch_size=3) == []  # all held by run1

    totals = {"loaded": 0, "quarantined": 0}
    tricky = 'tab\there, newline\nthere, back\\slash, "quotes", NUL\x00, {braces}, é'
    for map_index, batch_id in enumerate(batch_ids):
        batch = warehouse.get_batch(wh_conn, batch_id)
        assert batch.run_id == "run1" and batch.bucket == BUCKET
        outcomes = []
        for o in batch.objects:
            case = o.key.removeprefix("letters/").removesuffix(".pdf")
            if case.endswith("3"):
                outcomes.append(
                    ObjectResult(o.key, o.etag, f"sha-{case}", Failed.from_error(LetterError("encrypted")))
                )
            else:
                let = letter(case, ("Upheld", "Overturned"), reviewer_specialty=tricky)
                let.reviewer_licensure_states = ["West Virginia", 'New "York", {x}']
                let.warnings = [ParseWarning("odd", tricky)]
                # A letter that went through the contract's dict form loads the same.
                result = Letter.from_dict(let.to_dict()) if case.endswith("5") else let
                outcomes.append(ObjectResult(o.key, o.etag, f"sha-{case}", Parsed(result)))
        counts = warehouse.load_batch(wh_conn, BUCKET, outcomes, "run1", "load", map_index, batch_id=batch_id)
        totals["loaded"] += counts.loaded
        totals["quarantined"] += counts.quarantined

    assert totals == {"loaded": 6, "quarantined": 1}
    assert one(wh_conn, "SELECT count(*) FROM imr.letters") == 6
    assert one(wh_conn, "SELECT count(*) FROM imr.items") == 12
    row = q(
        wh_conn,
        "SELECT reviewer_specialty, reviewer_licensure_states, warnings, outcome, decision_date, patient_age,"
        " source_key, source_etag, parser_version FROM imr.letters WHERE case_number = 'CM16-0000001'",
    )[0]
    assert row[0] == tricky.replace("\x00", "")
    assert row[1] == ["West Virginia", 'New "York", {x}']
    assert row[2] == [{"code": "odd", "message": tricky.replace("\x00", "")}]
    assert row[3:6] == ("Partially Overturn", date(2017, 2, 1), 54)
    assert row[6:] == ("letters/CM16-0000001.pdf", "letters/CM16-0000001.pdf-etag", PARSER_VERSION)
    assert q(
        wh_conn, "SELECT status, case_number, claimed_by FROM imr.s3_objects WHERE key LIKE '%01.pdf'"
    ) == [("loaded", "CM16-0000001", None)]
    assert q(wh_conn, "SELECT status, error_code FROM imr.s3_objects WHERE key LIKE '%03.pdf'") == [
        ("quarantined", "encrypted")
    ]
    assert one(wh_conn, "SELECT count(*) FROM imr.batches WHERE finished_at IS NOT NULL") == 3
    assert quality.run_checks(wh_conn, "run1")[-1] == ("run_reconciliation", True, 0)


def test_corrected_letter_replaces_case_atomically(wh_conn):
    ingest(
        wh_conn,
        "run1",
        [obj("a/CM16-0000001.pdf")],
        [ok("a/CM16-0000001.pdf", letter("CM16-0000001", ("Upheld",) * 3))],
    )
    assert one(wh_conn, "SELECT count(*) FROM imr.items") == 3

    # The corrected letter arrives later under another key, with two items and another outcome.
    corrected = letter("CM16-0000001", ("Overturned", "Overturned"))
    counts = ingest(
        wh_conn,
        "run2",
        [obj("b/CM16-0000001-rev.pdf", minutes=60)],
        [ok("b/CM16-0000001-rev.pdf", corrected)],
    )
    assert counts.loaded == 1 and counts.letters_written == 1
    assert q(wh_conn, "SELECT source_key, outcome FROM imr.letters") == [
        ("b/CM16-0000001-rev.pdf", "Overturn")
    ]
    assert q(wh_conn, "SELECT seq, decision FROM imr.items ORDER BY seq") == [
        (1, "Overturned"),
        (2, "Overturned"),
    ]

    # The original re-processed later (say a reparse) must not win back: the newer object wins.
    warehouse.mark_for_reparse(wh_conn, BUCKET, "2.0.0", prefix="a/")
    counts = ingest(wh_conn, "run3", [], [ok("a/CM16-0000001.pdf", letter("CM16-0000001", ("Upheld",) * 3))])
    assert counts.loaded == 1 and counts.letters_written == 0
    assert q(wh_conn, "SELECT source_key FROM imr.letters") == [("b/CM16-0000001-rev.pdf",)]
    assert one(wh_conn, "SELECT count(*) FROM imr.items") == 2


def test_newest_object_wins_within_one_batch(wh_conn):
    objs = [obj("x/new.pdf", minutes=10), obj("x/old.pdf", minutes=0)]
    outcomes = [
        ok("x/new.pdf", letter("CM16-0000002", ("Overturned",))),
        ok("x/old.pdf", letter("CM16-0000002")),
    ]
    counts = ingest(wh_conn, "run1", objs, outcomes)
    assert counts.loaded == 2 and counts.letters_written == 1
    assert q(wh_conn, "SELECT source_key, outcome FROM imr.letters") == [("x/new.pdf", "Overturn")]


def test_duplicate_detection(wh_conn):
    ingest(wh_conn, "run1", [obj("a/one.pdf")], [ok("a/one.pdf", letter("CM16-0000003"), sha="same-bytes")])
    before = snapshot(wh_conn)["letters"]
    # A byte-identical copy under another key, and two identical copies of a new letter in one batch.
    # (Within a batch the newest object supplies the case; the other identical one is the duplicate.)
    objs = [obj("b/one-copy.pdf", minutes=5), obj("b/two.pdf", minutes=6), obj("b/two-copy.pdf", minutes=5)]
    outcomes = [
        ok("b/one-copy.pdf", letter("CM16-0000003"), sha="same-bytes"),
        ok("b/two.pdf", letter("CM16-0000004"), sha="two-bytes"),
        ok("b/two-copy.pdf", letter("CM16-0000004"), sha="two-bytes"),
    ]
    counts = ingest(wh_conn, "run2", objs, outcomes)
    assert (counts.loaded, counts.duplicate) == (1, 2)
    after = snapshot(wh_conn)["letters"]
    assert after[0] == before[0]  # the copy did not take over the case
    assert q(
        wh_conn, "SELECT key, status, case_number FROM imr.s3_objects WHERE key LIKE 'b/%' ORDER BY key"
    ) == [
        ("b/one-copy.pdf", "duplicate", "CM16-0000003"),
        ("b/two-copy.pdf", "duplicate", "CM16-0000004"),
        ("b/two.pdf", "loaded", "CM16-0000004"),
    ]


def test_quarantine_requeue_and_resolve(wh_conn):
    key = "q/CM16-0000005.pdf"
    ingest(wh_conn, "run1", [obj(key)], [fail(key, "no_text_layer", "no text")])
    assert q(wh_conn, "SELECT status, error_code, error_message FROM imr.s3_objects") == [
        ("quarantined", "no_text_layer", "no text")
    ]
    assert q(
        wh_conn, "SELECT key, etag, dag_run_id, task_id, map_index, error_code FROM imr.parse_failures"
    ) == [(key, f"{key}-etag", "run1", "load", 0, "no_text_layer")]
    # A task retry reporting the same failure logs it once.
    warehouse.load_batch(wh_conn, BUCKET, [fail(key, "no_text_layer", "no text")], "run1", "load", 0)
    assert one(wh_conn, "SELECT count(*) FROM imr.parse_failures") == 1

    assert warehouse.requeue_failures(wh_conn, BUCKET, error_codes=["encrypted"]) == 0
    assert warehouse.requeue_failures(wh_conn, BUCKET, error_codes=["no_text_layer"], keys=[key]) == 1
    assert one(wh_conn, "SELECT status FROM imr.s3_objects") == "pending"
    assert claim_all(wh_conn, "run2") == [key]
    warehouse.load_batch(wh_conn, BUCKET, [ok(key, letter("CM16-0000005"))], "run2")
    assert q(wh_conn, "SELECT status, error_code, attempts FROM imr.s3_objects") == [("loaded", None, 2)]
    assert one(wh_conn, "SELECT resolved_at IS NOT NULL FROM imr.parse_failures") is True
    assert report.summary(wh_conn)["rows"]["parse_failures_open"] == 0


def test_invalid_letter_is_quarantined_alone(wh_conn):
    bad = letter("CM16-0000006")
    bad.items[0].decision = "Maybe"
    objs = [obj("v/bad.pdf"), obj("v/good.pdf"), obj("v/nocase.pdf")]
    outcomes = [
        ok("v/bad.pdf", bad),
        ok("v/good.pdf", letter("CM16-0000007")),
        ok("v/nocase.pdf", letter(None)),
    ]
    counts = ingest(wh_conn, "run1", objs, outcomes)
    assert (counts.loaded, counts.quarantined) == (1, 2)
    assert q(
        wh_conn, "SELECT key, error_code FROM imr.s3_objects WHERE status = 'quarantined' ORDER BY key"
    ) == [
        ("v/bad.pdf", "item_structure"),
        ("v/nocase.pdf", "header_missing_field"),
    ]


def test_loading_the_same_batch_twice_changes_nothing(wh_conn):
    objs = [obj(f"i/{n}.pdf") for n in range(4)]
    outcomes = [ok(f"i/{n}.pdf", letter(f"CM16-000001{n}", ("Upheld", "Overturned"))) for n in range(3)]
    outcomes.append(fail("i/3.pdf"))
    ingest(wh_conn, "run1", objs, outcomes)
    before = snapshot(wh_conn)
    counts = warehouse.load_batch(wh_conn, BUCKET, outcomes, "run1", "load", 0)  # e.g. a task retry
    assert (counts.loaded, counts.quarantined) == (3, 1)
    assert snapshot(wh_conn) == before


def test_fault_mid_batch_leaves_nothing_partial(wh_conn, monkeypatch):
    # An existing version of one case, then a batch that replaces it and adds another.
    ingest(wh_conn, "run1", [obj("f/old.pdf")], [ok("f/old.pdf", letter("CM16-0000020", ("Upheld",) * 3))])
    objs = [obj("f/new.pdf", minutes=5), obj("f/other.pdf", minutes=5)]
    warehouse.register_objects(wh_conn, BUCKET, objs, "run2")
    claim_all(wh_conn, "run2")
    before = snapshot(wh_conn)
    outcomes = [
        ok("f/new.pdf", letter("CM16-0000020", ("Overturned",))),
        ok("f/other.pdf", letter("CM16-0000021")),
    ]

    # 1. Fail after the letters were upserted and the old items deleted, before new items go in.
    def boom(cur):
        cur.execute("DELETE FROM imr.items WHERE case_number IN (SELECT case_number FROM _applied)")
        raise RuntimeError("injected fault")

    with monkeypatch.context() as m:
        m.setattr(warehouse_merge, "replace_items", boom)
        with pytest.raises(RuntimeError, match="injected fault"):
            warehouse.load_batch(wh_conn, BUCKET, outcomes, "run2")
    assert snapshot(wh_conn) == before  # old letter + its 3 items intact; manifest still processing

    # 2. A value PostgreSQL itself rejects (validation bypassed): integer out of range.
    broken = letter("CM16-0000021", patient_age=10**12)
    with monkeypatch.context() as m:
        m.setattr(warehouse_rows, "record_rejection", lambda _letter: None)
        with pytest.raises(psycopg2.DataError):
            warehouse.load_batch(wh_conn, BUCKET, [outcomes[0], ok("f/other.pdf", broken)], "run2")
    assert snapshot(wh_conn) == before

    # The retry after the fault goes through.
    warehouse.load_batch(wh_conn, BUCKET, outcomes, "run2")
    assert q(wh_conn, "SELECT case_number, source_key FROM imr.letters ORDER BY 1") == [
        ("CM16-0000020", "f/new.pdf"),
        ("CM16-0000021", "f/other.pdf"),
    ]


def test_stale_result_is_dropped(wh_conn):
    warehouse.register_objects(wh_conn, BUCKET, [obj("s/a.pdf")], "run1")
    claim_all(wh_conn, "run1")
    # The object is overwritten in S3 while run1 parses the old bytes.
    warehouse.register_objects(wh_conn, BUCKET, [obj("s/a.pdf", etag='"v2"')], "run2")
    counts = warehouse.load_batch(wh_conn, BUCKET, [ok("s/a.pdf", letter("CM16-0000030"))], "run1")
    assert counts.stale == 1 and counts.loaded == 0
    assert one(wh_conn, "SELECT count(*) FROM imr.letters") == 0
    assert q(wh_conn, "SELECT status, claimed_by FROM imr.s3_objects") == [("pending", None)]
    assert claim_all(wh_conn, "run2") == ["s/a.pdf"]


# --------------------------------------------------------------------------- concurrency


def test_concurrent_claims_get_disjoint_keys(wh_conn, pg_dsn):
    keys = [f"c/{n:05d}.pdf" for n in range(3000)]
    warehouse.register_objects(wh_conn, BUCKET, [obj(k) for k in keys], "register")
    conns = [psycopg2.connect(pg_dsn) for _ in range(4)]
    barrier = threading.Barrier(len(conns))
    claimed: dict[str, list[str]] = {}

    def run(i, conn):
        run_id = f"run{i}"
        barrier.wait()
        got = []
        while ids := warehouse.claim_batches(conn, BUCKET, run_id, batch_size=50, max_batches=3):
            for batch_id in ids:
                got += [o.key for o in warehouse.get_batch(conn, batch_id).objects]
        claimed[run_id] = got

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(conns)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    [c.close() for c in conns]
    all_claimed = [k for got in claimed.values() for k in got]
    assert sorted(all_claimed) == keys  # every key once: nothing lost, nothing twice
    assert len([got for got in claimed.values() if got]) > 1  # they really ran side by side
    owners = dict(q(wh_conn, "SELECT key, claimed_by FROM imr.s3_objects"))
    assert all(owners[k] == run_id for run_id, got in claimed.items() for k in got)


def test_claim_skips_rows_locked_by_another_transaction(wh_conn, pg_dsn):
    warehouse.register_objects(wh_conn, BUCKET, [obj(f"l/{n}.pdf") for n in range(4)], "run0")
    other = psycopg2.connect(pg_dsn)
    try:
        with other.cursor() as cur:  # another run's claim in flight: rows locked, not yet committed
            cur.execute("SELECT key FROM imr.s3_objects WHERE key IN ('l/0.pdf', 'l/1.pdf') FOR UPDATE")
        assert claim_all(wh_conn, "run1") == ["l/2.pdf", "l/3.pdf"]
    finally:
        other.rollback()
        other.close()
    assert claim_all(wh_conn, "run2") == ["l/0.pdf", "l/1.pdf"]


def test_release_and_stale_claims(wh_conn):
    warehouse.register_objects(wh_conn, BUCKET, [obj("r/1.pdf"), obj("r/2.pdf")], "run1")
    claim_all(wh_conn, "run1")
    assert warehouse.release_claims(wh_conn, "run1") == 2
    assert claim_all(wh_conn, "run2") == ["r/1.pdf", "r/2.pdf"]
    # run2 dies; after stale_after its claim can be taken over.
    assert warehouse.claim_batches(wh_conn, BUCKET, "run3", 10) == []
    ids = warehouse.claim_batches(wh_conn, BUCKET, "run3", 10, stale_after=timedelta(0))
    assert [o.key for o in warehouse.get_batch(wh_conn, ids[0]).objects] == ["r/1.pdf", "r/2.pdf"]


def test_an_old_claim_of_a_run_whose_lanes_are_alive_is_not_taken_over(wh_conn):
    """A backfill of the archive runs for hours: its keys' claims grow old while its lanes work
    through the batches. Another run must not take them over while a lane holds a live lease."""
    warehouse.register_objects(wh_conn, BUCKET, [obj("s/1.pdf"), obj("s/2.pdf"), obj("s/3.pdf")], "long")
    ids = warehouse.claim_batches(wh_conn, BUCKET, "long", 1)
    assert warehouse.claim_next_batch(wh_conn, "long", "long|0|1", timedelta(minutes=2)) == ids[0]
    with wh_conn, wh_conn.cursor() as cur:  # the claims are a day old
        cur.execute(
            "UPDATE imr.s3_objects SET claimed_at = now() - interval '1 day' WHERE claimed_by = 'long'"
        )
    assert warehouse.claim_batches(wh_conn, BUCKET, "nightly", 10) == []
    # The lane dies; once its lease is older than stale_after, the run is dead and its keys go.
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute(
            "UPDATE imr.batches SET lease_expires_at = now() - interval '7 hours' WHERE run_id = 'long'"
        )
    ids = warehouse.claim_batches(wh_conn, BUCKET, "nightly", 10)
    assert [o.key for o in warehouse.get_batch(wh_conn, ids[0]).objects] == ["s/1.pdf", "s/2.pdf", "s/3.pdf"]


def test_mark_for_reparse_and_prefix(wh_conn):
    objs = [obj("2016/a.pdf"), obj("2017/b.pdf")]
    outcomes = [ok("2016/a.pdf", letter("CM16-0000040")), ok("2017/b.pdf", letter("CM17-0000041"))]
    ingest(wh_conn, "run1", objs, outcomes, parser_version="1.0.0")
    assert warehouse.mark_for_reparse(wh_conn, BUCKET, "1.0.0") == 0
    assert warehouse.mark_for_reparse(wh_conn, BUCKET, "1.1.0", prefix="2017/") == 1
    ids = warehouse.claim_batches(wh_conn, BUCKET, "backfill", 10, prefix="2017/")
    assert [o.key for o in warehouse.get_batch(wh_conn, ids[0]).objects] == ["2017/b.pdf"]


# --------------------------------------------------------------------------- privileges


def test_loader_role_can_load_but_not_touch_public(wh_conn, pg_dsn, admin_dsn):
    role = f"imr_test_login_{uuid.uuid4().hex[:8]}"
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN IN ROLE imr_loader")
        cur.execute("CREATE TABLE public.not_yours (x int)")
    try:
        loader = psycopg2.connect(f"{pg_dsn} user={role}")
        try:
            # The whole load path (temp tables, COPY, upserts, sequences) works as the loader...
            counts = ingest(
                loader,
                "run1",
                [obj("p/a.pdf"), obj("p/b.pdf")],
                [ok("p/a.pdf", letter("CM16-0000050")), fail("p/b.pdf")],
            )
            assert (counts.loaded, counts.quarantined) == (1, 1)
            quality.record_results(loader, "run1", quality.run_checks(loader, "run1"))
            # ...but nothing outside schema imr, and no DDL.
            for sql in (
                "CREATE TABLE public.evil (x int)",
                "INSERT INTO public.not_yours VALUES (1)",
                "SELECT * FROM public.not_yours",
                "CREATE TABLE imr.evil (x int)",
                "DROP TABLE imr.letters",
                "INSERT INTO imr.schema_migrations (version) VALUES ('9999_evil')",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege), loader.cursor() as cur:
                    cur.execute(sql)
                loader.rollback()
        finally:
            loader.close()
    finally:
        with wh_conn, wh_conn.cursor() as cur:
            cur.execute(f"DROP ROLE {role}")


# --------------------------------------------------------------------------- data quality


def test_quality_checks_pass_on_good_data_and_fail_on_bad(wh_conn):
    objs = [obj(f"d/{n}.pdf") for n in range(3)]
    outcomes = [ok(f"d/{n}.pdf", letter(f"CM16-000006{n}", ("Upheld", "Overturned"))) for n in range(3)]
    ingest(wh_conn, "run1", objs, outcomes)
    good = quality.run_checks(wh_conn, "run1")
    assert [r.name for r in good if not r.passed] == []
    assert quality.record_results(wh_conn, "run1", good) == len(good)

    # Seed bad rows behind the loader's back: a letter without items whose outcome disagrees, a
    # foreign decision, a date-order warning on most letters, and an object this run left pending.
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO imr.letters (case_number, outcome, source_bucket, source_key, source_etag,"
            " source_sha256, parser_version) VALUES ('BAD-1', 'Uphold', 'b', 'k', 'e', 's', 'v')"
        )
        cur.execute("ALTER TABLE imr.items DROP CONSTRAINT items_decision_check")
        cur.execute(
            "UPDATE imr.items SET decision = 'Withdrawn' WHERE case_number = 'CM16-0000060' AND seq = 2"
        )
        cur.execute("""UPDATE imr.letters SET warnings = '[{"code": "date_order", "message": "x"}]'""")
        cur.execute("UPDATE imr.s3_objects SET status = 'pending' WHERE key = 'd/2.pdf'")
    bad = {r.name: r for r in quality.run_checks(wh_conn, "run1", date_order_threshold=0.5)}
    assert {n for n, r in bad.items() if not r.passed} == {
        "letters_required_fields",  # BAD-1 has no decision_date
        "letters_case_number_format",
        "items_decision_domain",
        "letters_outcome_matches_items",  # BAD-1 says Uphold without any item
        "letters_have_items",
        "letters_date_order_warning_share",
        "run_reconciliation",
    }
    assert bad["letters_have_items"].observed == 1
    assert float(bad["letters_date_order_warning_share"].observed) == 1.0
    quality.record_results(wh_conn, "run1", bad.values())
    latest = {d["check"]: d["passed"] for d in report.summary(wh_conn)["latest_dq"]}
    assert latest["letters_have_items"] is False and latest["letters_case_number_unique"] is True


_OPERATOR_SCRIPT = """
import sys
import psycopg2
from airflow.providers.common.sql.operators.sql import SQLColumnCheckOperator, SQLTableCheckOperator
from imr import quality

conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
bad = []
for table, checks in quality.table_checks().items():
    op = SQLTableCheckOperator(task_id="t", table=table, checks=checks, conn_id="imr_warehouse")
    cur.execute(op.sql.replace("{{ run_id }}", sys.argv[2]))  # Airflow renders the template
    bad += [(table, name, result) for name, result in cur.fetchall() if result != 1]
    assert len(checks) > 0
for table, mapping in quality.column_mapping().items():
    op = SQLColumnCheckOperator(task_id="c", table=table, column_mapping=mapping, conn_id="imr_warehouse")
    cur.execute(op.sql)
    bad += [(table, c, k, r) for c, k, r in cur.fetchall() if not op._get_match(mapping[c][k], r)]
print(bad)
sys.exit(1 if bad else 0)
"""


def test_quality_definitions_run_through_the_airflow_operators(wh_conn, pg_dsn, tmp_path):
    """The check dicts have the shapes the common-sql operators take, and the SQL those operators build
    from them runs on our schema and passes on good data. In a subprocess: importing Airflow here would
    fix its configuration for every later test in the session."""
    import os
    import subprocess

    ingest(wh_conn, "run-x", [obj("o/1.pdf")], [ok("o/1.pdf", letter("CM16-0000070"))])
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    r = subprocess.run(
        [sys.executable, "-c", _OPERATOR_SCRIPT, pg_dsn, "run-x"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]


# --------------------------------------------------------------------------- benchmark baseline, summary


def test_executemany_baseline_loads_the_same_rows(wh_conn, pg_dsn):
    objs = [obj(f"e/{n}.pdf") for n in range(5)]
    outcomes = [
        ok(f"e/{n}.pdf", letter(f"CM16-000008{n}", ("Upheld", "Overturned", "Upheld"))) for n in range(4)
    ]
    outcomes.append(fail("e/4.pdf"))
    ingest(wh_conn, "run1", objs, outcomes)
    copy_state = snapshot(wh_conn)

    other = psycopg2.connect(pg_dsn)
    with other, other.cursor() as cur:
        cur.execute(
            "TRUNCATE imr.letters, imr.items, imr.item_citations, imr.s3_objects, imr.parse_failures,"
            " imr.batches"
        )
    warehouse.register_objects(other, BUCKET, objs, "run1")
    claim_all(other, "run1")
    counts = load_rows_executemany(other, BUCKET, outcomes, "run1", "load", 0)
    assert (counts.loaded, counts.quarantined, counts.items_written) == (4, 1, 12)
    assert snapshot(other) == copy_state
    other.close()


def test_summary(wh_conn):
    ingest(
        wh_conn,
        "run1",
        [obj("m/1.pdf"), obj("m/2.pdf")],
        [ok("m/1.pdf", letter("CM16-0000090")), fail("m/2.pdf")],
    )
    s = report.summary(wh_conn)
    assert s["objects_by_status"] == {
        "pending": 0,
        "processing": 0,
        "loaded": 1,
        "quarantined": 1,
        "duplicate": 0,
    }
    assert s["quarantined_by_error_code"] == {"no_text_layer": 1}
    assert s["rows"]["letters"] == 1 and s["rows"]["items"] == 1 and s["rows"]["parse_failures_open"] == 1
