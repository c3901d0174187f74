"""`make bench-archive`: the nightly path on a warehouse the archive's size (issue 18, Must show 1).

Builds (once per size; `--rebuild` to redo) a database `imr_archive_<size>` holding SIZE letters
replicated in SQL from the parsed corpus (bench_records: distinct case numbers, decision dates
spread over 2013-2026, the archive's ~2.9 items and ~6 citations per letter), a `loaded` manifest
row for each, and ~2% of that again as quarantined objects with open parse failures. Then prints,
each part a function (`--only build,nightly,insights,sweep,size`):

* nightly: `imr_ingest_nightly` runs through Airflow (LocalExecutor, parallelism 2, as
  bench/pipeline_bench.py runs it) with 500 new letters on that warehouse and on an empty one,
  alternating, `--rounds` of each (default 2; the medians), timed from the run's first task
  scheduled to its end, with its check phase (record_quality and the gates); the 500 letters are
  deleted again after each run (and the Insights aggregates refreshed), so the built warehouse
  stays reusable;
* insights: each Insights route's queries (the functions plugins/imr_monitor/insights.py calls), all
  dates, one quarter (whole months) and about a quarter not aligned to months, after the publish
  step's refresh of the Insights aggregates (migration 0014; the build computes them all);
* sweep: the `imr_quality_sweep` DAG's run, if that DAG exists;
* size: pg_database_size and rows and bytes per table.

The build uses INSERT ... SELECT over generate_series, not the per-letter loader, committed in chunks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg2

import bench_records as br
import imr_synth
import pipeline_bench as pb
from imr import PARSER_VERSION, warehouse
from imr.config import DAG_NIGHTLY
from imr.read import insights
from imr.warehouse import upgrade
from imr.warehouse.db import copy_rows
from imr.warehouse.rows import (
    CITATION_COLUMNS,
    ITEM_COLUMNS,
    LETTER_COLUMNS,
    citation_rows,
    item_rows,
    letter_row,
)

DEFAULT_SIZE = 1_700_000
CHUNK = 100_000
BUCKET = "imr-archive"
NIGHTLY_LETTERS = 500
SWEEP_DAG = "imr_quality_sweep"
# Open failures per letter in the archive (issue 18's quarter-size warehouse: 8,696 per 436,218).
FAILURE_RATE = 0.02
FAILURE_CODES = ("no_text_layer", "not_an_imr_letter", "encrypted", "pdf_error", "header_missing_field")
QUARTER = insights.DecisionRange(date(2019, 4, 1), date(2019, 6, 30))
# About a quarter that starts and ends inside a month: its 19 + 20 days come from the base tables.
UNALIGNED = insights.DecisionRange(date(2019, 4, 12), date(2019, 7, 20))
RANGES = (("all dates", insights.DecisionRange()), ("one quarter", QUARTER), ("unaligned", UNALIGNED))
ROUTES = ("categories", "pharmaceuticals", "guidelines", "timeliness", "labels")
TABLES = (
    "imr.letters",
    "imr.items",
    "imr.item_citations",
    "imr.s3_objects",
    "imr.parse_failures",
    "imr.batches",
    "imr.dq_results",
    "imr.insights_month_letters",
    "imr.insights_month_items",
    "imr.insights_month_guidelines",
    "imr.insights_month_families",
    "imr.insights_month_default_requests",
)
PARTS = ("build", "nightly", "insights", "sweep", "size")


def db_name(size: int) -> str:
    return f"imr_archive_{size}"


def dsn_for(env: dict[str, str], name: str) -> str:
    return env["IMR_WAREHOUSE_DSN"].replace("dbname=imr", f"dbname={name}")


def failures_for(size: int) -> int:
    return round(size * FAILURE_RATE)


def expected_counts(size: int, records: list[dict] | None = None) -> dict[str, int]:
    """The rows a build of `size` letters holds per table, from the records and the pool alone."""
    records = records if records is not None else br.corpus_records()
    mix = br.pool(records)
    full, rest = divmod(size, len(mix))
    uses = [full + (pos < rest) for pos in range(len(mix))]
    fails = failures_for(size)
    return {
        "imr.letters": size,
        "imr.items": sum(u * len(records[i]["items"]) for u, i in zip(uses, mix, strict=True)),
        "imr.item_citations": sum(u * br.n_citations(records[i]) for u, i in zip(uses, mix, strict=True)),
        "imr.s3_objects": size + fails,
        "imr.parse_failures": fails,
    }


# ------------------------------------------------------------------------------------------ build

# Replica n: its template (the pool's), decision date and the shift applied to the template's dates.
_REPLICA = f"""
    SELECT n, p.idx, d.day AS decision_date, d.day - t.decision_date AS shift,
           'CM' || to_char(d.day, 'YY') || '-' || lpad(({br.REPLICA_BASE} + n)::text, 7, '0') AS case_number,
           'letters/archive/' || lpad(({br.REPLICA_BASE} + n)::text, 7, '0') || '.pdf' AS key
    FROM generate_series(%(lo)s::int, %(hi)s::int - 1) AS n
    JOIN imr_bench.pool p ON p.pos = n %% %(pool)s
    JOIN imr_bench.letter t ON t.idx = p.idx
    CROSS JOIN LATERAL (
        SELECT date '{br.FIRST_DAY}' + ((n::bigint * {br.DAY_STRIDE}) %% {br.N_DAYS})::int AS day
    ) d
"""

_DATES_SHIFTED = ("date_assigned", "date_of_injury", "ur_denial_date", "application_received")


def _insert_letters_sql() -> str:
    cols = [c for c in LETTER_COLUMNS[1:] if c not in ("case_number", "decision_date", *_DATES_SHIFTED)]
    return f"""
    INSERT INTO imr.letters (case_number, decision_date, {", ".join(_DATES_SHIFTED)}, {", ".join(cols)},
        source_bucket, source_key, source_etag, source_sha256, source_last_modified, parser_version,
        loaded_at)
    SELECT r.case_number, r.decision_date, {", ".join(f"t.{c} + r.shift" for c in _DATES_SHIFTED)},
           {", ".join(f"t.{c}" for c in cols)},
           %(bucket)s, r.key, md5(r.key), encode(sha256(convert_to(r.key, 'UTF8')), 'hex'),
           r.decision_date + time '12:00', %(pv)s, r.decision_date + interval '1 day'
    FROM ({_REPLICA}) r JOIN imr_bench.letter t ON t.idx = r.idx
    """


def _insert_children_sql(table: str, template: str, columns: tuple[str, ...]) -> str:
    """Every replica's copy of a template letter's child rows (items or citations), under its case number.

    :param table: the warehouse table written (imr.items, imr.item_citations)
    :param template: the imr_bench table of the template rows, keyed by the template letter's idx
    :param columns: the table's columns (imr.warehouse.rows); all after (key, case_number) are copied as
        they are
    :return: the INSERT ... SELECT statement
    """
    cols = columns[2:]
    return f"""
    INSERT INTO {table} (case_number, {", ".join(cols)})
    SELECT r.case_number, {", ".join(f"t.{c}" for c in cols)}
    FROM ({_REPLICA}) r JOIN {template} t ON t.idx = r.idx
    """


def _insert_items_sql() -> str:
    return _insert_children_sql("imr.items", "imr_bench.item", ITEM_COLUMNS)


def _insert_citations_sql() -> str:
    return _insert_children_sql("imr.item_citations", "imr_bench.citation", CITATION_COLUMNS)


_INSERT_MANIFEST = f"""
INSERT INTO imr.s3_objects (bucket, key, etag, size, last_modified, sha256, status, case_number,
    parser_version, attempts, first_run_id, last_run_id, updated_at)
SELECT %(bucket)s, r.key, md5(r.key), 40000 + (r.n::bigint * 7717) %% 160000, r.decision_date + time '12:00',
       encode(sha256(convert_to(r.key, 'UTF8')), 'hex'), 'loaded', r.case_number, %(pv)s, 1,
       'archive-' || to_char(r.decision_date, 'YYYY-MM-DD'),
       'archive-' || to_char(r.decision_date, 'YYYY-MM-DD'),
       r.decision_date + interval '1 day'
FROM ({_REPLICA}) r
"""

# Objects that failed: their own keys, quarantined in the manifest, one open parse_failures row each.
_INSERT_FAILURES = f"""
WITH f AS (
    SELECT n, 'letters/archive/failed/' || lpad(n::text, 7, '0') || '.pdf' AS key,
           (%(codes)s::text[])[1 + n %% cardinality(%(codes)s::text[])] AS code,
           date '{br.FIRST_DAY}' + ((n::bigint * {br.DAY_STRIDE}) %% {br.N_DAYS})::int AS day
    FROM generate_series(0, %(failures)s::int - 1) AS n
), o AS (
    INSERT INTO imr.s3_objects (bucket, key, etag, size, last_modified, status, parser_version,
        attempts, first_run_id, last_run_id, error_code, error_message, updated_at)
    SELECT %(bucket)s, key, md5(key), 30000, day + time '12:00', 'quarantined', %(pv)s, 1,
           'archive-' || to_char(day, 'YYYY-MM-DD'), 'archive-' || to_char(day, 'YYYY-MM-DD'), code,
           'replicated failure', day + interval '1 day'
    FROM f
)
INSERT INTO imr.parse_failures (bucket, key, etag, dag_run_id, task_id, map_index, error_code, message,
    occurred_at)
SELECT %(bucket)s, key, md5(key), 'archive-' || to_char(day, 'YYYY-MM-DD'), 'process_lane', 0, code,
       'replicated failure', day + interval '1 day'
FROM f
"""


def _stage_templates(cur, records: list[dict]) -> None:
    """The parsed records as the loader stages them (its row builders), keyed by record index."""
    from imr.records import Letter

    cur.execute(
        f"""
        DROP SCHEMA IF EXISTS imr_bench CASCADE;
        CREATE SCHEMA imr_bench;
        CREATE TABLE imr_bench.letter AS
            SELECT NULL::int AS idx, {", ".join(LETTER_COLUMNS[1:])} FROM imr.letters WITH NO DATA;
        CREATE TABLE imr_bench.item AS
            SELECT NULL::int AS idx, {", ".join(ITEM_COLUMNS[1:])} FROM imr.items WITH NO DATA;
        CREATE TABLE imr_bench.citation AS
            SELECT NULL::int AS idx, {", ".join(CITATION_COLUMNS[1:])} FROM imr.item_citations WITH NO DATA;
        CREATE TABLE imr_bench.pool (pos INT PRIMARY KEY, idx INT NOT NULL);
        CREATE TABLE imr_bench.built (size INT, letters BIGINT, seconds FLOAT, built_at TIMESTAMPTZ);
        """
    )
    letters = [(str(i), Letter.from_dict(r)) for i, r in enumerate(records)]
    copy_rows(cur, "imr_bench.letter", ("idx", *LETTER_COLUMNS[1:]), [letter_row(k, x) for k, x in letters])
    copy_rows(
        cur,
        "imr_bench.item",
        ("idx", *ITEM_COLUMNS[1:]),
        [row for k, x in letters for row in item_rows(k, x)],
    )
    copy_rows(
        cur,
        "imr_bench.citation",
        ("idx", *CITATION_COLUMNS[1:]),
        [row for k, x in letters for row in citation_rows(k, x)],
    )
    copy_rows(cur, "imr_bench.pool", ("pos", "idx"), list(enumerate(br.pool(records))))


def is_built(dsn_admin: str, size: int) -> bool:
    conn = psycopg2.connect(dsn_admin)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name(size),))
            if cur.fetchone() is None:
                return False
    finally:
        conn.close()
    conn = psycopg2.connect(dsn_admin.replace("dbname=postgres", f"dbname={db_name(size)}"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('imr_bench.built') IS NOT NULL")
            if not cur.fetchone()[0]:
                return False
            cur.execute("SELECT count(*) FROM imr_bench.built WHERE size = %s", (size,))
            return cur.fetchone()[0] > 0
    finally:
        conn.close()


def build(env: dict[str, str], size: int, rebuild: bool = False, quiet: bool = False) -> str:
    """The warehouse of `size` letters (built unless it exists); returns its DSN."""
    admin = env["IMR_WAREHOUSE_DSN"].replace("dbname=imr", "dbname=postgres")
    dsn = dsn_for(env, db_name(size))
    if not rebuild and is_built(admin, size):
        if not quiet:
            print(f"warehouse {db_name(size)}: built already (--rebuild to redo)")
        return dsn
    records = br.corpus_records()
    pb._fresh_db(env, db_name(size))
    started = time.perf_counter()
    conn = psycopg2.connect(dsn)
    try:
        upgrade(conn)
        with conn, conn.cursor() as cur:
            _stage_templates(cur, records)
        params = {"bucket": BUCKET, "pv": PARSER_VERSION, "pool": len(br.pool(records))}
        with conn.cursor() as cur:
            # The replicas are consistent by construction: skip the per-row FK triggers (superuser
            # only; otherwise they run) and the commit flush of each chunk.
            cur.execute("SET synchronous_commit = off")
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if cur.fetchone()[0]:
                cur.execute("SET session_replication_role = replica")
        conn.commit()
        for lo in range(0, size, CHUNK):
            hi = min(size, lo + CHUNK)
            with conn, conn.cursor() as cur:
                for sql in (
                    _insert_letters_sql(),
                    _insert_items_sql(),
                    _insert_citations_sql(),
                    _INSERT_MANIFEST,
                ):
                    cur.execute(sql, {**params, "lo": lo, "hi": hi})
            if not quiet:
                print(
                    f"  built {hi:,} of {size:,} letters, {time.perf_counter() - started:.0f} s", flush=True
                )
        with conn, conn.cursor() as cur:
            cur.execute(
                _INSERT_FAILURES, {**params, "failures": failures_for(size), "codes": list(FAILURE_CODES)}
            )
        # The Insights aggregates (migration 0014) as a warehouse in service holds them: the build's
        # INSERTs skip the marking triggers (replica role), so every month is computed here.
        t0 = time.perf_counter()
        warehouse.rebuild_insights(conn)
        aggregate_s = time.perf_counter() - t0
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")  # a warehouse in service is vacuumed: visibility map set
        conn.autocommit = False
        seconds = time.perf_counter() - started
        with conn, conn.cursor() as cur:
            cur.execute("DROP TABLE imr_bench.letter, imr_bench.item, imr_bench.citation")
            cur.execute("INSERT INTO imr_bench.built VALUES (%s, %s, %s, now())", (size, size, seconds))
    finally:
        conn.close()
    if not quiet:
        print(
            f"warehouse {db_name(size)}: built {size:,} letters in {seconds:.1f} s"
            f" ({size / seconds:,.0f} letters/s), of which the Insights aggregates {aggregate_s:.1f} s"
        )
    return dsn


# ---------------------------------------------------------------------------------------- nightly


def _check_phase_s(run) -> float:
    """The run's data-quality phase: record_quality and the gates side by side, first start to last end."""
    tis = [
        t
        for t in run.task_instances
        if (t.task_id == "record_quality" or t.task_id.startswith("gate_")) and t.start_date and t.end_date
    ]
    if not tis:
        return 0.0
    return (max(t.end_date for t in tis) - min(t.start_date for t in tis)).total_seconds()


def _forget_nightly(dsn: str, keys: list[str]) -> None:
    """Take the nightly run's letters out of the built warehouse again, so the next run finds it as
    built (its Insights aggregates refreshed). The build writes no batches and no quality results,
    so those tables are emptied."""
    conn = psycopg2.connect(dsn)
    try:
        upgrade(conn)  # a warehouse built by an older checkout
        with conn, conn.cursor() as cur:
            cur.execute(
                "DELETE FROM imr.letters WHERE source_bucket = %s AND source_key = ANY(%s)", (BUCKET, keys)
            )
            cur.execute("DELETE FROM imr.s3_objects WHERE bucket = %s AND key = ANY(%s)", (BUCKET, keys))
            cur.execute("DELETE FROM imr.parse_failures WHERE bucket = %s AND key = ANY(%s)", (BUCKET, keys))
            cur.execute("DELETE FROM imr.batches")
            cur.execute("DELETE FROM imr.dq_results")
        # The deletes marked their days; a real night follows a night that added letters, not one
        # that took them away, so the next run's publish must not pay for recomputing those days.
        warehouse.refresh_insights(conn)
    finally:
        conn.close()


def _drop_bucket_if_any(env: dict[str, str], bucket: str) -> None:
    s3 = pb.devservices.s3_client(env)
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        return
    pb.devservices.drop_bucket(s3, bucket)


# The days a night's letters are decided in: the 30 days up to the archive's last day. A real night
# publishes letters decided in the weeks before; the refresh of the Insights aggregates costs the
# letters of the days a run touched, so where the dates fall is part of the figure.
ARCHIVE_LAST_DAY = date.fromisoformat(br.FIRST_DAY) + timedelta(days=br.N_DAYS - 1)
NIGHT_DAYS = (ARCHIVE_LAST_DAY - timedelta(days=29), ARCHIVE_LAST_DAY)
NIGHT_DATES = ("recent", "spread")


def night_letters(n: int, dates: str = "recent") -> Path:
    """The nightly part's letters: decided in NIGHT_DAYS ("recent"), or over the generator's years
    2015-2020 ("spread": a backfill's pattern, about one day per letter touched)."""
    if dates == "spread":
        return pb._letters(n)
    out = pb.RUN_DIR / f"bench-night-{n}"
    if not (out / "expected.jsonl").exists():
        imr_synth.write_sample_set(out, count=n, seed=4242, include_bad=False, decided_in=NIGHT_DAYS)
    return out


def nightly(
    env: dict[str, str],
    dsn: str,
    letters: int = NIGHTLY_LETTERS,
    port: int = 28080,
    dates: str = "recent",
    rounds: int = 2,
) -> dict:
    """imr_ingest_nightly runs with `letters` new letters on an empty warehouse and on `dsn`,
    alternating, `rounds` of each: one run's wall time on this machine varies by a fifth from run to
    run (22-29 s measured for the same empty run), so the ratio is the medians'."""
    files = sorted((night_letters(letters, dates) / "letters").glob("*.pdf"))
    keys = [f"letters/{f.name}" for f in files]
    runs: dict[str, list[dict]] = {"empty": [], "archive": []}
    _drop_bucket_if_any(env, BUCKET)
    _forget_nightly(dsn, keys)  # an earlier run that died midway; each run cleans up after itself
    for _ in range(rounds):
        for label, target in (("empty", None), ("archive", dsn)):
            bucket = BUCKET if target else None
            if not target:
                target = pb._fresh_db(env, "imr_bench_empty")
            try:
                run = pb._end_to_end(env, files, {}, dag_id=DAG_NIGHTLY, dsn=target, bucket=bucket, port=port)
            finally:
                if bucket:
                    _forget_nightly(target, keys)
                    _drop_bucket_if_any(env, bucket)
            runs[label].append(
                {
                    "run_s": (run.end_date - pb._run_began(run)).total_seconds(),
                    "check_s": _check_phase_s(run),
                    "timeline": pb.task_timeline(run),
                }
            )
    res: dict = {"runs": runs}
    for label, rs in runs.items():
        res[label] = {k: statistics.median(r[k] for r in rs) for k in ("run_s", "check_s")}
    e, a = res["empty"], res["archive"]
    res["ratio"] = a["run_s"] / e["run_s"]
    print(
        f"\nNightly run ({DAG_NIGHTLY}, {len(files)} new letters decided {_dates_label(dates)},"
        f" LocalExecutor, parallelism 2; {rounds} alternating round(s), medians)"
    )
    for label, rs in runs.items():
        each = ", ".join(f"{r['run_s']:.1f}" for r in rs)
        print(
            f"  {label + ' warehouse:':<19}{res[label]['run_s']:7.1f} s (runs {each} s),"
            f" check phase {res[label]['check_s']:6.1f} s"
        )
    print(f"  ratio {res['ratio']:.2f} (target <= 1.3), archive check phase target <= 10 s")
    for label in ("empty", "archive"):
        print(f"  on the {label} warehouse, its last run:")
        pb.print_timeline(runs[label][-1]["timeline"], runs[label][-1]["run_s"])
    return res


def _dates_label(dates: str) -> str:
    if dates == "spread":
        return "over 2015-2020"
    return f"{NIGHT_DAYS[0]}..{NIGHT_DAYS[1]}"


# --------------------------------------------------------------------------------------- insights


def _route_calls(conn, rng: insights.DecisionRange) -> dict:
    """What each /api/insights/* route calls (plugins/imr_monitor/insights.py)."""
    return {
        "categories": lambda: (insights.totals(conn, rng), insights.overturn_by_category(conn, rng)),
        "pharmaceuticals": lambda: insights.pharmaceutical_mix(conn, rng),
        "guidelines": lambda: insights.guideline_use(conn, rng),
        "timeliness": lambda: insights.timeliness(conn, rng),
        "labels": lambda: insights.label_basis(conn, rng),
    }


def insights_times(dsn: str, repeat: int = 3) -> dict:
    """Seconds per route (first call and best of `repeat`) for RANGES, after the publish step's
    refresh of the Insights aggregates (what the nightly part's cleanup marked; on a warehouse built
    before migration 0014, every month), which is timed too."""
    conn = psycopg2.connect(dsn)
    res: dict = {}
    try:
        upgrade(conn)
        t0 = time.perf_counter()
        refreshed = warehouse.refresh_insights(conn)
        res["refresh"] = {**refreshed.as_json(), "seconds": time.perf_counter() - t0}
        print(
            f"\nInsights aggregates refreshed: {refreshed.days} marked day(s) in"
            f" {len(refreshed.months)} month(s), {res['refresh']['seconds']:.2f} s"
        )
        for label, rng in RANGES:
            for route, call in _route_calls(conn, rng).items():
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    call()
                    times.append(time.perf_counter() - t0)
                res[(label, route)] = {"first_s": times[0], "best_s": min(times)}
    finally:
        conn.close()
    print(f"\nInsights routes (first call / best of {repeat}; target <= 1 s each, page <= 2 s)")
    for label, _ in RANGES:
        page = sum(res[(label, r)]["best_s"] for r in ROUTES)
        cells = ", ".join(
            f"{r} {res[(label, r)]['first_s']:.2f}/{res[(label, r)]['best_s']:.2f} s" for r in ROUTES
        )
        print(f"  {label:<12} {cells}; page {page:.2f} s")
    return {k if isinstance(k, str) else f"{k[0]}|{k[1]}": v for k, v in res.items()}


# ------------------------------------------------------------------------------------------ sweep


def sweep_dag_exists() -> bool:
    return any(SWEEP_DAG in p.read_text() for p in (pb.ROOT / "dags").glob("*.py"))


def sweep(env: dict[str, str], dsn: str, port: int = 28080) -> dict | None:
    """The imr_quality_sweep DAG's run on the warehouse (skipped if no DAG file defines it)."""
    if not sweep_dag_exists():
        print(f"\nSweep: no {SWEEP_DAG} DAG in dags/ yet: skipped")
        return None
    _drop_bucket_if_any(env, BUCKET)
    # The sweep may list its bucket: an empty one here.
    pb.devservices.s3_client(env).create_bucket(Bucket=BUCKET)
    run_env = pb.dag_env(env, dsn, BUCKET, port)
    log = pb.RUN_DIR / "logs" / f"bench-{SWEEP_DAG}.log"
    log.unlink(missing_ok=True)
    try:
        with pb._api_server(run_env, port):
            run = pb.run_dag(SWEEP_DAG, env=run_env, use_executor=True, log_path=log)
    finally:
        _drop_bucket_if_any(env, BUCKET)
        _forget_nightly(dsn, [])
    secs = (run.end_date - pb._run_began(run)).total_seconds()
    print(f"\nSweep ({SWEEP_DAG}): {run.state} in {secs:.1f} s (log {log})")
    pb.print_timeline(pb.task_timeline(run), secs)
    return {"state": run.state, "run_s": secs}


# ------------------------------------------------------------------------------------------- size


def size(dsn: str) -> dict:
    """pg_database_size and, per table, exact rows and bytes (with indexes and TOAST)."""
    conn = psycopg2.connect(dsn)
    res: dict = {"tables": {}}
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            res["database_bytes"] = cur.fetchone()[0]
            for table in TABLES:
                cur.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")
                rows, nbytes = cur.fetchone()
                res["tables"][table] = {"rows": rows, "bytes": nbytes}
    finally:
        conn.close()
    print(f"\nWarehouse size: {res['database_bytes'] / 2**20:,.0f} MiB")
    for table, v in res["tables"].items():
        print(f"  {table:<36}{v['rows']:>14,} rows {v['bytes'] / 2**20:>10,.1f} MiB")
    return res


# ------------------------------------------------------------------------------------------- main


def run_archive_bench(
    n_letters: int = DEFAULT_SIZE,
    *,
    only: tuple[str, ...] = PARTS,
    rebuild: bool = False,
    nightly_letters: int = NIGHTLY_LETTERS,
    port: int = 28080,
    quiet: bool = False,
    night_dates: str = "recent",
    rounds: int = 2,
) -> dict:
    env = pb._env()
    res: dict = {"size": n_letters}
    dsn = build(env, n_letters, rebuild=rebuild or False, quiet=quiet)
    if "nightly" in only:
        res["nightly"] = nightly(env, dsn, nightly_letters, port, night_dates, rounds)
    if "insights" in only:
        res["insights"] = insights_times(dsn)
    if "sweep" in only:
        res["sweep"] = sweep(env, dsn, port)
    if "size" in only:
        res["size"] = size(dsn)
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("size", nargs="?", type=int, default=DEFAULT_SIZE, help="letters in the warehouse")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {PARTS}")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the warehouse even if it exists")
    ap.add_argument("--nightly-letters", type=int, default=NIGHTLY_LETTERS)
    ap.add_argument("--rounds", type=int, default=2, help="nightly runs on each warehouse, alternating")
    ap.add_argument("--api-port", type=int, default=28080, help="the bench api-server's port")
    ap.add_argument(
        "--night-dates",
        choices=NIGHT_DATES,
        default="recent",
        help="the nightly letters' decision days: the archive's last 30 days, or 2015-2020 (a backfill's)",
    )
    args = ap.parse_args(argv)
    only = tuple(p.strip() for p in args.only.split(",") if p.strip())
    unknown = set(only) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    run_archive_bench(
        args.size,
        only=only,
        rebuild=args.rebuild,
        nightly_letters=args.nightly_letters,
        port=args.api_port,
        night_dates=args.night_dates,
        rounds=args.rounds,
    )


if __name__ == "__main__":
    main()
