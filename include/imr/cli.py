"""`imr` command line: parse letters, manage the warehouse schema, generate sample letters."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .parse.limits import Limits
from .parse.workers import ParseResult, parse_many


def _expand(paths: list[str]) -> Iterator[Path]:
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix.lower() == ".pdf")
        else:
            yield p


def result_json(r: ParseResult) -> dict:
    """One input's JSON line: the record's fields plus `file`, or `file`, `error_code`, `message`.

    :param r: the worker's result for one file.
    :return: the JSON-ready dict.
    """
    if r.ok:
        d = r.letter.to_dict()
        d["file"] = r.source
        return d
    return {"file": r.source, "error_code": r.error_code, "message": r.message}


def _table_row(r: ParseResult) -> str:
    if not r.ok:
        return f"{r.source}\tERROR {r.error_code}: {r.message}"
    d = r.letter.to_dict()
    return f"{r.source}\t{d['case_number']}\t{d['decision_date']}\t{d['outcome']}\t{len(d['items'])} item(s)"


def cmd_parse(args: argparse.Namespace) -> int:
    """`imr parse`: one JSON line (or table row) per input file; exit status 1 if any failed.

    :param args: the parsed command line.
    :return: the exit status.
    """
    files = list(_expand(args.paths))
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb, max_pages=args.max_pages)
    show_progress = len(files) >= 20 and not args.quiet
    failed = 0
    start = time.monotonic()
    out = sys.stdout
    for n, r in enumerate(parse_many(((str(f), f) for f in files), jobs=args.jobs, limits=limits), 1):
        failed += not r.ok
        if args.format == "jsonl":
            out.write(json.dumps(result_json(r), ensure_ascii=False) + "\n")
        else:
            out.write(_table_row(r) + "\n")
        if show_progress and (n % 50 == 0 or n == len(files)):
            rate = n / max(time.monotonic() - start, 1e-9)
            print(f"[imr] {n}/{len(files)} parsed, {failed} failed, {rate:.1f} letters/s", file=sys.stderr)
    return 1 if failed else 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """`imr db upgrade`: apply the warehouse migrations.

    :param args: the parsed command line (`--dsn`).
    :return: the exit status.
    """
    from .warehouse import connect, upgrade

    try:
        conn = connect(args.dsn)
    except LookupError as e:
        raise SystemExit(f"imr: {e}") from None
    try:
        applied = upgrade(conn)
    finally:
        conn.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (schema is current)"))
    return 0


INSIGHTS_BUCKET = "local-letters"  # the manifest's bucket name for files `imr insights` loads


def _pct(x) -> str:
    return "n/a" if x is None else f"{float(x):.1%}"


def format_insights(conn) -> str:
    """The Insights page's headline figures for all letters (`imr.read.insights`, open range), as
    the README shows them.

    :param conn: a psycopg2 connection to the warehouse.
    :return: the lines to print.
    """
    from .read import insights

    totals = insights.totals(conn)
    mix = insights.pharmaceutical_mix(conn)
    timing = insights.timeliness(conn)["all"]
    labels = insights.label_basis(conn)
    median = timing["median_days"]
    return "\n".join(
        [
            f"letters: {totals['letters']}, items: {totals['items']}",
            f"pharmaceutical share of items: {_pct(mix['pharmaceutical_share'])}"
            f" ({mix['pharmaceutical_items']}/{mix['items']})",
            f"opioid share of pharmaceuticals: {_pct(mix['opioid_share_of_pharmaceuticals'])}"
            f" ({mix['opioid_items']}/{mix['pharmaceutical_items']})",
            "overturn rate by category:",
            *(
                f"  {c['category'] or '(none)':<26} {_pct(c['overturn_rate']):>6}"
                f"  ({c['overturned']}/{c['items']})"
                for c in insights.overturn_by_category(conn)
            ),
            f"median days application received -> decision: {'n/a' if median is None else f'{median:g}'}",
            f"share of letters decided over 30 days after application: {_pct(timing['share_over_30_days'])}",
            f"share of items labelled by default: {_pct(labels['default_share'])}"
            f" ({labels['default_items']}/{labels['items']})",
        ]
    )


def cmd_relabel(args: argparse.Namespace) -> int:
    """Relabel the warehouse at --dsn (imr.warehouse.relabel); prints the run as one JSON line."""
    from dataclasses import asdict

    from . import warehouse
    from .warehouse.relabel import relabel

    try:
        conn = warehouse.connect(args.dsn)
    except LookupError as e:
        raise SystemExit(f"imr: {e}") from None
    try:
        result = relabel(conn, batch_letters=args.batch_letters, force=args.force)
        refreshed = warehouse.refresh_insights(conn)
    finally:
        conn.close()
    print(json.dumps(asdict(result) | {"insights": refreshed.as_json()}))
    return 0


def cmd_db_refresh_insights(args: argparse.Namespace) -> int:
    """Recompute the Insights aggregates at --dsn: the marked days, or every day with --rebuild;
    prints what it recomputed as one JSON line."""
    import time

    from . import warehouse

    try:
        conn = warehouse.connect(args.dsn)
    except LookupError as e:
        raise SystemExit(f"imr: {e}") from None
    try:
        started = time.perf_counter()
        done = warehouse.rebuild_insights(conn) if args.rebuild else warehouse.refresh_insights(conn)
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    print(json.dumps(done.as_json() | {"seconds": round(seconds, 3)}))
    return 0


def cmd_insights(args: argparse.Namespace) -> int:
    """Parse letters, load them into the warehouse at --dsn (a scratch database: the schema is
    migrated, the files registered under bucket `local-letters`) and print the headline figures
    from the analytics views."""
    from datetime import UTC, datetime

    from . import pipeline, warehouse

    files = list(_expand(args.paths))
    try:
        conn = warehouse.connect(args.dsn)
    except LookupError as e:
        raise SystemExit(f"imr: {e}") from None
    try:
        warehouse.upgrade(conn)
        run_id = "insights-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        reports = pipeline.ingest_files(conn, INSIGHTS_BUCKET, files, run_id, jobs=args.jobs)
        warehouse.refresh_insights(conn)
        failed = sum(r.load.quarantined for r in reports)
        if failed:
            print(
                f"imr insights: {failed} file(s) could not be loaded (see imr.parse_failures)",
                file=sys.stderr,
            )
        print(format_insights(conn))
    finally:
        conn.close()
    return 0


# Modules `imr generate` needs that only the development requirements install: module -> what to install.
DEV_ONLY_MODULES = {"imr_synth": "the imr_synth package", "reportlab": "reportlab"}


def cmd_generate(args: argparse.Namespace) -> int:
    # The generator (include/imr_synth) is development tooling: imported here, not at module level, so
    # that every other command works where its dependencies are absent.
    """`imr generate`: synthetic letters, their truth and one bad file per rejection class.

    :param args: the parsed command line.
    :return: the exit status (2 where the dev dependencies are absent).
    """
    try:
        from imr_synth import write_sample_set
    except ModuleNotFoundError as e:
        missing = DEV_ONLY_MODULES.get((e.name or "").partition(".")[0])
        if missing is None:
            raise
        print(
            f"imr generate: needs {missing}, a development dependency that is not installed here; "
            "install the development requirements (`make setup` does) to generate letters.",
            file=sys.stderr,
        )
        return 2
    rows = write_sample_set(Path(args.outdir), count=args.count, seed=args.seed, include_bad=not args.no_bad)
    print(f"wrote {len(rows)} files under {args.outdir}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `imr` argument parser with its subcommands.

    :return: the parser.
    """
    p = argparse.ArgumentParser(prog="imr", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    pp = sub.add_parser("parse", help="parse letters (files or folders) to JSON lines")
    pp.add_argument("paths", nargs="+")
    pp.add_argument("--format", choices=("jsonl", "table"), default="jsonl")
    pp.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    pp.add_argument("--timeout", type=float, default=Limits.timeout_s, help="seconds per letter")
    pp.add_argument("--memory-mb", type=int, default=Limits.memory_mb, help="address-space cap per worker")
    pp.add_argument("--max-pages", type=int, default=Limits.max_pages)
    pp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    pp.set_defaults(func=cmd_parse)

    db = sub.add_parser("db", help="warehouse schema")
    dbs = db.add_subparsers(dest="db_command", required=True)
    up = dbs.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("--dsn", help="libpq DSN (default: $IMR_WAREHOUSE_DSN)")
    up.set_defaults(func=cmd_db_upgrade)
    ri = dbs.add_parser(
        "refresh-insights",
        help="recompute the Insights page's monthly aggregates (marked days; all with --rebuild)",
    )
    ri.add_argument("--dsn", help="libpq DSN (default: $IMR_WAREHOUSE_DSN)")
    ri.add_argument("--rebuild", action="store_true", help="recompute every month from the base tables")
    ri.set_defaults(func=cmd_db_refresh_insights)

    ins = sub.add_parser(
        "insights", help="load letters into a scratch warehouse and print headline figures from its views"
    )
    ins.add_argument("paths", nargs="+", help="PDF files or folders")
    ins.add_argument("--dsn", help="libpq DSN of a scratch database (default: $IMR_WAREHOUSE_DSN)")
    ins.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ins.set_defaults(func=cmd_insights)

    rl = sub.add_parser(
        "relabel",
        help="recompute stored items' labels and citations with the current classifier (no re-parse)",
    )
    rl.add_argument("--dsn", help="libpq DSN (default: $IMR_WAREHOUSE_DSN)")
    rl.add_argument("--batch-letters", type=int, default=500, help="letters per transaction (default 500)")
    rl.add_argument("--force", action="store_true", help="relabel items already of the current version too")
    rl.set_defaults(func=cmd_relabel)

    gen = sub.add_parser("generate", help="write synthetic letters with ground truth")
    gen.add_argument("outdir")
    gen.add_argument("--count", type=int, default=50)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--no-bad", action="store_true", help="omit the bad-input files")
    gen.set_defaults(func=cmd_generate)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the `imr` command line.

    :param argv: the arguments (default: `sys.argv[1:]`).
    :return: the exit status.
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
