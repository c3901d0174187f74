"""The data-quality checks scoped to a run against the whole-table ones, on a generated warehouse:

* builds, in a scratch database on the embedded PostgreSQL (imr_devtools.devservices), a warehouse of
  N archive letters plus a night of 500 new ones, all valid for every check: each letter two items
  (Upheld and Overturned, so Partially Overturn), both parties' evidence cited, five citation rows
  (about the issue's 2.2 items and 4.9 citations per letter), one manifest row, spread dates;
* EXPLAINs every run-scoped check and reports any sequential scan of letters, items, citations or
  the manifest (there must be none: the run's cases come by s3_objects_last_run_idx and the tables
  by their primary keys);
* times quality.run_checks scoped to the night's run (SCOPE_RUN) and over the archive
  (SCOPE_ARCHIVE, the sweep), each the best of --repeat runs, warm cache.

    python bench/quality_scope.py [--letters 400000] [--night 500] [--repeat 3] [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import re
import sys
import time

ARCHIVE_RUN = "archive"
NIGHT_RUN = "night"
BIG_TABLES = ("letters", "items", "item_citations", "s3_objects")

# One generated letter per g: case CM16-<g>, its manifest row, two items, five citations. Dates
# spread over five years; the run is the archive's or the night's by g.
_GENERATE = """
CREATE TEMP TABLE gen ON COMMIT DROP AS
SELECT g, format('CM%%s-%%s', 13 + g %% 10, lpad(g::text, 7, '0')) AS c,
       CASE WHEN g > %(archive)s THEN %(night_run)s ELSE %(archive_run)s END AS r
FROM generate_series(%(lo)s, %(hi)s) g;
INSERT INTO imr.s3_objects (bucket, key, etag, size, status, sha256, case_number, parser_version,
                            first_run_id, last_run_id)
SELECT 'imr-letters', 'letters/' || c || '.pdf', md5(c), 100000, 'loaded', md5(c), c, 'gen', r, r FROM gen;
INSERT INTO imr.letters (case_number, date_assigned, decision_date, application_received, priority,
    reviewer_specialty, patient_age, patient_sex, outcome, source_bucket, source_key, source_etag,
    source_sha256, parser_version)
SELECT c, date '2016-01-01' + (g %% 1800), date '2016-01-20' + (g %% 1800),
       date '2015-12-20' + (g %% 1800), 'Standard', 'Orthopedic Surgery', 20 + g %% 60,
       CASE WHEN g %% 2 = 0 THEN 'Female' ELSE 'Male' END, 'Partially Overturn', 'imr-letters',
       'letters/' || c || '.pdf', md5(c), md5(c), 'gen'
FROM gen;
INSERT INTO imr.items (case_number, seq, request, decision, category, subcategory,
                       claims_administrator_evidence, expert_reviewer_evidence)
SELECT c, s, 'MRI of the lumbar spine', CASE s WHEN 1 THEN 'Upheld' ELSE 'Overturned' END,
       %(category)s, %(subcategory)s, 'cited', 'cited'
FROM gen, generate_series(1, 2) s;
-- Five per letter: item 1 has three (one claims administrator, two expert reviewer), item 2 two.
INSERT INTO imr.item_citations (case_number, seq, source, ordinal, family, title, year)
SELECT c, s, src, ord, 'MTUS', 'ACOEM', 2004
FROM gen, generate_series(1, 2) s,
     (VALUES ('claims_administrator', 1), ('expert_reviewer', 1), ('expert_reviewer', 2)) v(src, ord)
WHERE s = 1 OR ord = 1;
"""


def generate(conn, letters: int, night: int = 500, chunk: int = 100_000) -> None:
    """Fill a migrated, empty warehouse with `letters` archive letters (run ARCHIVE_RUN) and `night`
    more (run NIGHT_RUN), then ANALYZE, as the planner sees a warehouse that autovacuum keeps.

    :param conn: a psycopg2 connection to the warehouse database (owner or superuser).
    :param letters: letters loaded before the night.
    :param night: letters the night's run loaded.
    :param chunk: letters per statement batch (keeps each transaction's memory bounded).
    """
    from imr.enrich.taxonomy import taxonomy

    category, subs = next(iter(taxonomy().items()))
    total = letters + night
    for lo in range(1, total + 1, chunk):
        params = {
            "lo": lo,
            "hi": min(lo + chunk - 1, total),
            "archive": letters,
            "archive_run": ARCHIVE_RUN,
            "night_run": NIGHT_RUN,
            "category": category,
            "subcategory": next(iter(subs)),
        }
        with conn, conn.cursor() as cur:
            cur.execute(_GENERATE, params)
    old = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE imr.letters, imr.items, imr.item_citations, imr.s3_objects")
    finally:
        conn.autocommit = old


def seq_scans(conn, run_id: str) -> dict[str, list[str]]:
    """{check: the big tables its run-scoped plan scans sequentially}; empty lists when indexed.

    :param conn: a warehouse connection.
    :param run_id: the run the checks are scoped to.
    :return: every check's name, with the tables read by a Seq Scan (none, when the scope is indexed).
    """
    from imr import quality

    out = {}
    with conn, conn.cursor() as cur:
        for check in quality.checks(run_id, scope=quality.SCOPE_RUN):
            cur.execute("EXPLAIN " + check.sql)
            plan = "\n".join(r[0] for r in cur.fetchall())
            out[check.name] = [t for t in BIG_TABLES if re.search(rf"Seq Scan on {t}\b", plan)]
    return out


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--letters", type=int, default=400_000)
    ap.add_argument("--night", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database imr_qbench")
    ap.add_argument("--reuse", action="store_true", help="time the warehouse a --keep run left")
    args = ap.parse_args()

    import psycopg2

    from imr import quality, warehouse
    from imr_devtools import devservices, scratch

    env = devservices.start()
    admin_dsn = env["IMR_WAREHOUSE_DSN"]
    dsn = scratch.create_database(admin_dsn, "imr_qbench", exist_ok=True, fresh=not args.reuse)
    with psycopg2.connect(dsn) as probe, probe.cursor() as cur:
        cur.execute("SELECT to_regclass('imr.letters') IS NOT NULL")
        reuse = args.reuse and cur.fetchone()[0]
    probe.close()
    conn = psycopg2.connect(dsn)
    try:
        warehouse.upgrade(conn)
        if not reuse:
            t0 = time.perf_counter()
            generate(conn, args.letters, args.night)
            print(f"generated {args.letters:,} + {args.night:,} letters in {time.perf_counter() - t0:.0f} s")
        with conn, conn.cursor() as cur:
            for t in BIG_TABLES:
                cur.execute(f"SELECT count(*) FROM imr.{t}")
                print(f"  imr.{t}: {cur.fetchone()[0]:,} rows")
        scans = {n: s for n, s in seq_scans(conn, NIGHT_RUN).items() if s}
        print("run-scoped plans with a sequential scan of a big table:", scans or "none")
        results = {}

        def scoped() -> None:
            results["run"] = quality.run_checks(conn, NIGHT_RUN, scope=quality.SCOPE_RUN)

        def archive() -> None:
            results["archive"] = quality.run_checks(conn, NIGHT_RUN, scope=quality.SCOPE_ARCHIVE)

        t_run, t_all = _best(scoped, args.repeat), _best(archive, args.repeat)
        for scope, rs in results.items():
            failed = [r.name for r in rs if not r.passed]
            print(f"  {scope}: {len(rs)} checks, failed: {failed or 'none'}")
        print(f"scoped to the night's run ({args.night} letters): {t_run:.3f} s")
        print(f"whole archive (the sweep): {t_all:.3f} s  ({t_all / t_run:.0f}x)")
        return 1 if scans else 0
    finally:
        conn.close()
        if not args.keep:
            scratch.drop_database(admin_dsn, "imr_qbench")


if __name__ == "__main__":
    sys.exit(main())
