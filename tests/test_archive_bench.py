"""bench/archive_bench.py at a tiny size: the SQL-built warehouse holds exactly the rows the records
and the pool imply, its replicas are the Replicator's letters (distinct case numbers, dates spread
and shifted), and a second build reuses the database instead of rebuilding it."""

from __future__ import annotations

import re

import psycopg2
import pytest

import archive_bench as ab  # bench/ is on pytest's pythonpath (pyproject.toml)
import bench_records as br

pytestmark = pytest.mark.integration


SIZE = 317  # not a multiple of the pool's length: the remainder is counted too


@pytest.fixture
def archive(services, corpus_dir, admin_dsn):
    env = ab.pb._env()
    dsn = ab.build(env, SIZE, rebuild=True, quiet=True)
    yield env, dsn
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {ab.db_name(SIZE)} WITH (FORCE)")
    conn.close()


def test_built_warehouse_row_counts_are_exact(archive) -> None:
    _env, dsn = archive
    rows = {t: v["rows"] for t, v in ab.size(dsn)["tables"].items()}
    records = br.corpus_records()
    mix = br.pool(records)
    items = sum(len(records[mix[n % len(mix)]]["items"]) for n in range(SIZE))
    cites = sum(br.n_citations(records[mix[n % len(mix)]]) for n in range(SIZE))
    assert rows["imr.letters"] == SIZE
    assert rows["imr.items"] == items == ab.expected_counts(SIZE)["imr.items"]
    assert rows["imr.item_citations"] == cites
    assert rows["imr.s3_objects"] == SIZE + round(SIZE * ab.FAILURE_RATE)
    assert rows["imr.parse_failures"] == round(SIZE * ab.FAILURE_RATE)
    # the archive's proportions, not the sample's
    assert 2.8 <= items / SIZE <= 3.1 and 5.5 <= cites / SIZE <= 7.0


def test_replicas_are_distinct_spread_and_match_the_records(archive) -> None:
    _env, dsn = archive
    rep = br.Replicator(br.corpus_records())
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(DISTINCT case_number), count(DISTINCT extract(year FROM decision_date)),"
            " min(decision_date), max(decision_date) FROM imr.letters"
        )
        cases, years, first, last = cur.fetchone()
        cur.execute(
            "SELECT count(*) FROM imr.s3_objects o JOIN imr.letters l"
            " ON l.source_key = o.key AND l.case_number = o.case_number AND l.source_sha256 = o.sha256"
            " WHERE o.status = 'loaded'"
        )
        manifest_matches = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM imr.parse_failures f JOIN imr.s3_objects o USING (bucket, key)"
            " WHERE f.resolved_at IS NULL AND o.status = 'quarantined' AND o.error_code = f.error_code"
        )
        open_failures = cur.fetchone()[0]
        for n in (0, 1, 200, SIZE - 1):
            want = rep.letter(n)
            cur.execute(
                "SELECT l.case_number, l.decision_date, l.date_assigned, l.application_received,"
                " l.source_sha256, array_agg(i.request ORDER BY i.seq)"
                " FROM imr.letters l JOIN imr.items i USING (case_number)"
                " WHERE l.source_key = %s GROUP BY 1, 2, 3, 4, 5",
                (br.replica_key(n),),
            )
            got = cur.fetchone()
            assert got == (
                want.case_number,
                want.decision_date,
                want.date_assigned,
                want.application_received,
                br.replica_sha256(n),
                [i.request for i in want.items],
            )
            assert re.fullmatch(r"CM\d{2}-\d{7}", got[0])
    conn.close()
    assert cases == SIZE
    assert years == 14 and first.year == 2013 and last.year == 2026
    assert manifest_matches == SIZE
    assert open_failures == round(SIZE * ab.FAILURE_RATE)


def test_a_built_warehouse_is_reused(archive) -> None:
    env, dsn = archive
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT built_at FROM imr_bench.built")
        built_at = cur.fetchone()[0]
        cur.execute("DELETE FROM imr.parse_failures WHERE id IN (SELECT min(id) FROM imr.parse_failures)")
    conn.close()
    assert ab.build(env, SIZE, quiet=True) == dsn
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT built_at FROM imr_bench.built")
        assert cur.fetchone()[0] == built_at
        cur.execute("SELECT count(*) FROM imr.parse_failures")  # not rebuilt: the deleted row stays gone
        assert cur.fetchone()[0] == round(SIZE * ab.FAILURE_RATE) - 1
    conn.close()
