"""bench/write_ceiling.py at a tiny size: lanes in separate processes, each leasing batches and
loading pre-parsed records with the real load_batch, load exactly the letters fed, each once, with
their items and citations, every batch finished and no deadlock."""

from __future__ import annotations

import psycopg2
import pytest

import bench_records as br  # bench/ is on pytest's pythonpath (pyproject.toml)
import write_ceiling as wc

pytestmark = pytest.mark.integration


LETTERS = 230  # 12 batches of 20, the last one short
LANES = 5


@pytest.fixture
def level(services, corpus_dir, admin_dsn):
    records = br.corpus_records()
    res = wc.run_level(wc.pb._env(), LANES, LETTERS, 20, records)
    yield res, admin_dsn.replace("dbname=postgres", f"dbname={wc.DB}"), records
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {wc.DB} WITH (FORCE)")
    conn.close()


def test_lanes_load_exactly_the_letters_fed_once(level) -> None:
    res, dsn, records = level
    rep = br.Replicator(records)
    want = [rep.letter(n) for n in range(LETTERS)]
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT case_number, source_key FROM imr.letters")
        loaded = cur.fetchall()
        cur.execute("SELECT count(*) FROM imr.items")
        items = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM imr.item_citations")
        citations = cur.fetchone()[0]
        cur.execute("SELECT status, count(*) FROM imr.s3_objects GROUP BY status")
        statuses = dict(cur.fetchall())
        cur.execute(
            "SELECT count(*), count(finished_at), sum(loaded), count(DISTINCT lease_owner) FROM imr.batches"
        )
        batches, finished, batch_loaded, owners = cur.fetchone()
    conn.close()
    assert sorted(loaded) == sorted((w.case_number, br.replica_key(n)) for n, w in enumerate(want))
    assert items == sum(len(w.items) for w in want)
    assert citations == sum(br.n_citations(records[rep.pool[n % len(rep.pool)]]) for n in range(LETTERS))
    assert statuses == {"loaded": LETTERS}
    assert batches == finished == res["batches"] == 12 and batch_loaded == LETTERS
    assert owners > 1  # the batches really were shared among the lanes
    # each letter written once: a batch loaded twice would write its letters again
    assert res["letters_written"] == LETTERS
    assert res["deadlocks"] == 0 and res["check"]["ok"]
    assert res["letters_per_s"] > 0 and res["wall_s"] > 0
