"""Pipeline figures for `make bench`, each against a baseline measured in the same run:

* end-to-end letters/s for N generated letters through `imr_backfill` under Airflow's LocalExecutor
  with parallelism 2, as a ratio to `imr parse --jobs 2` on the same files;
* warehouse load rows/s with COPY (the loader) versus `executemany`, same rows, fresh databases.

Uses the embedded services (imr_devtools.devservices) and a scratch database and bucket of its own.
"""

from __future__ import annotations

import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg2

import imr_synth
from imr import warehouse
from imr.config import CONN_WAREHOUSE, DAG_BACKFILL, VAR_BUCKET, VAR_PREFIX
from imr.parse.workers import parse_many
from imr.warehouse import ObjectResult, Parsed
from imr_devtools import devservices, scratch
from imr_devtools.airflow_runner import DagRun, DagRunError, dsn_to_uri, run_dag
from loader_baseline import load_rows_executemany  # bench/, beside this file
from progress_watch import progress_lines

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("IMR_RUN_DIR", ROOT / ".run"))
# The bench api-server's port: IMR_BENCH_API_PORT moves it off the default beside other checkouts.
API_PORT = int(os.environ.get("IMR_BENCH_API_PORT") or 28080)


def _env() -> dict[str, str]:
    return devservices.service_env()


def _fresh_db(env: dict[str, str], name: str) -> str:
    return scratch.create_database(env["IMR_WAREHOUSE_DSN"], name, fresh=True)


def _letters(n: int) -> Path:
    out = RUN_DIR / f"bench-{n}"
    if not (out / "expected.jsonl").exists():
        imr_synth.write_sample_set(out, count=n, seed=4242, include_bad=False)
    return out


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (and theirs): what a subprocess tree used."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _parse_only(files: list[Path]) -> tuple[float, float]:
    """(wall s, CPU s) of `imr parse --jobs 2` over the files."""
    cpu = _children_cpu_s()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "imr", "parse", "--quiet", "--jobs", "2", *map(str, files)],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - start, _children_cpu_s() - cpu


def _run_began(run: DagRun):
    """When the run's work began: its first task scheduled. `airflow dags test` records the run as
    starting at the logical date the runner picked before the CLI started, so Airflow's start_date
    would count the CLI's own start-up (imports, DAG parsing, pool check), which a scheduled run
    never pays."""
    return min(t.scheduled_dttm or t.start_date for t in run.task_instances if t.start_date)


def _dag_run_seconds(run: DagRun) -> tuple[float, float]:
    """(whole run from its first task scheduled, lanes phase: first lane start to last lane end)."""
    lanes = run.tasks("process_lane")
    whole = (run.end_date - _run_began(run)).total_seconds()
    return whole, (max(t.end_date for t in lanes) - min(t.start_date for t in lanes)).total_seconds()


def _covered_s(spans: list[tuple], lo, hi) -> float:
    """Seconds of [lo, hi] inside at least one of the (start, end) spans."""
    covered, reach = 0.0, lo
    for start, end in sorted(spans):
        start, end = max(start, reach), min(end, hi)
        if end > start:
            covered += (end - start).total_seconds()
            reach = end
    return covered


def phase_breakdown(run: DagRun) -> dict:
    """The run's fixed part around its lanes, from Airflow's metadata: the time before the first lane
    started (the chain check_schema, discover, plan) and after the last lane ended (record_quality,
    the gates, publish), each split into the seconds some task was running and the rest, the gaps
    (Airflow scheduling the next task, an executor slot still held by a finished task, a task
    process starting before it reports running)."""
    began = _run_began(run)
    lanes = run.tasks("process_lane")
    first, last = min(t.start_date for t in lanes), max(t.end_date for t in lanes)
    others = [(t.start_date, t.end_date) for t in run.task_instances if t.task_id != "process_lane"]
    others = [s for s in others if s[0] and s[1]]
    before = (first - began).total_seconds()
    after = (run.end_date - last).total_seconds()
    before_busy = _covered_s(others, began, first)
    after_busy = _covered_s(others, last, run.end_date)
    return {
        "before_first_lane_s": before,
        "before_tasks_s": before_busy,
        "before_gaps_s": before - before_busy,
        "lanes_s": (last - first).total_seconds(),
        "lane_start_spread_s": (max(t.start_date for t in lanes) - first).total_seconds(),
        "lane_end_spread_s": (last - min(t.end_date for t in lanes)).total_seconds(),
        "after_last_lane_s": after,
        "after_tasks_s": after_busy,
        "after_gaps_s": after - after_busy,
    }


def print_breakdown(b: dict) -> None:
    print(
        f"  fixed part: before the first lane {b['before_first_lane_s']:.1f} s (tasks running "
        f"{b['before_tasks_s']:.1f} s, gaps {b['before_gaps_s']:.1f} s); lanes {b['lanes_s']:.1f} s "
        f"(last lane started {b['lane_start_spread_s']:.1f} s after the first, first lane ended "
        f"{b['lane_end_spread_s']:.1f} s before the last); after the last lane "
        f"{b['after_last_lane_s']:.1f} s (tasks running {b['after_tasks_s']:.1f} s, gaps "
        f"{b['after_gaps_s']:.1f} s)"
    )


def task_timeline(run: DagRun) -> list[dict]:
    """Per task (mapped instances together), from Airflow's metadata: when it started and ended
    relative to the run's start, its duration, and its start latency (from scheduled, its upstream
    done, until running: the executor's and the task process's start-up, Airflow's cost, not the
    task's)."""
    rows = []
    began = _run_began(run)
    for task_id in sorted({t.task_id for t in run.task_instances}):
        tis = [t for t in run.tasks(task_id) if t.start_date and t.end_date]
        if not tis:
            continue
        first = min(t.start_date for t in tis)
        last = max(t.end_date for t in tis)
        latencies = [(t.start_date - t.scheduled_dttm).total_seconds() for t in tis if t.scheduled_dttm]
        rows.append(
            {
                "task": task_id,
                "instances": len(tis),
                "start_s": (first - began).total_seconds(),
                "end_s": (last - began).total_seconds(),
                "busy_s": sum((t.end_date - t.start_date).total_seconds() for t in tis),
                "start_latency_s": max(latencies) if latencies else None,
            }
        )
    return sorted(rows, key=lambda r: (r["start_s"], r["task"]))


def print_timeline(rows: list[dict], run_s: float) -> None:
    print(f"  task timeline of the run ({run_s:.1f} s; seconds from its first task scheduled)")
    print(f"  {'task':<26}{'n':>4}{'start':>8}{'end':>8}{'busy':>8}{'sched->run':>12}")
    for r in rows:
        lat = "" if r["start_latency_s"] is None else f"{r['start_latency_s']:.1f}"
        print(
            f"  {r['task']:<26}{r['instances']:>4}{r['start_s']:>8.1f}{r['end_s']:>8.1f}"
            f"{r['busy_s']:>8.1f}{lat:>12}"
        )


@contextmanager
def _api_server(env: dict[str, str], port: int):
    (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)
    log = (RUN_DIR / "logs" / "bench-api-server.log").open("w")
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "airflow.sh"), "api-server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "the api-server did not start; see .run/logs/bench-api-server.log"
                    ) from None
                time.sleep(1)
        # The Execution API answers its first request seconds late (measured 3.5 s: the versioned
        # routes are built then), which a deployed api-server paid long before: warm it here so the
        # run's first task does not count it.
        urllib.request.urlopen(f"http://127.0.0.1:{port}/execution/health", timeout=30)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def dag_env(env: dict[str, str], dsn: str, bucket: str, port: int) -> dict[str, str]:
    """The environment of an executor-run DAG run on warehouse `dsn` and `bucket` (prefix letters/):
    LocalExecutor, parallelism 2, the Execution API on `port` (serve it with _api_server)."""
    run_env = dict(os.environ, **env)
    run_env.update(
        {
            f"AIRFLOW_CONN_{CONN_WAREHOUSE.upper()}": dsn_to_uri(dsn),
            f"AIRFLOW_VAR_{VAR_BUCKET.upper()}": bucket,
            f"AIRFLOW_VAR_{VAR_PREFIX.upper()}": "letters/",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
        }
    )
    # Executor-run tasks talk to Airflow's Execution API: serve it on a private port for this run.
    run_env.update(
        {
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
        }
    )
    return run_env


def _end_to_end(
    env: dict[str, str],
    files: list[Path],
    conf: dict,
    *,
    dag_id: str = DAG_BACKFILL,
    dsn: str | None = None,
    bucket: str | None = None,
    port: int | None = None,
) -> DagRun:
    """One `dag_id` run over `files` uploaded to `bucket` (default: a new one) under letters/, on the
    warehouse `dsn` (default: a fresh, migrated imr_bench; bench/archive_bench.py passes its built
    archive), the api-server on `port`."""
    port = port or API_PORT
    if dsn is None:
        dsn = _fresh_db(env, "imr_bench")
    # A warehouse that exists already, as on every run but the first (migrating costs ~3 s once).
    conn = psycopg2.connect(dsn)
    warehouse.upgrade(conn)
    conn.close()
    bucket = bucket or f"imr-bench-{uuid.uuid4().hex[:8]}"
    s3 = devservices.s3_client(env)
    s3.create_bucket(Bucket=bucket)
    for f in files:
        s3.put_object(Bucket=bucket, Key=f"letters/{f.name}", Body=f.read_bytes())
    run_env = dag_env(env, dsn, bucket, port)
    log = RUN_DIR / "logs" / ("bench-backfill.log" if dag_id == DAG_BACKFILL else f"bench-{dag_id}.log")
    log.unlink(missing_ok=True)
    with _api_server(run_env, port), progress_lines(dsn):
        try:
            run = run_dag(
                dag_id,
                conf=conf,
                env=run_env,
                use_executor=True,
                log_path=log,
            )
        except DagRunError as exc:
            raise SystemExit(f"bench {dag_id} run did not finish; see {log}") from exc
    if run.state != "success":
        raise SystemExit(f"bench {dag_id} run {run.run_id} {run.state}; see {log}")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM imr.letters WHERE source_bucket = %s AND source_key = ANY(%s)",
            (bucket, [f"letters/{f.name}" for f in files]),
        )
        loaded = cur.fetchone()[0]
    if loaded != len(files):
        raise SystemExit(f"bench {dag_id} loaded {loaded} of {len(files)} letters")
    devservices.drop_bucket(s3, bucket)
    return run


def _outcomes(files: list[Path]) -> list[ObjectResult]:
    results = parse_many(((f"letters/{f.name}", f) for f in files), jobs=2)
    return [ObjectResult(r.source, f"etag-{i}", r.sha256, Parsed(r.letter)) for i, r in enumerate(results)]


def _load_seconds(env: dict[str, str], outcomes: list[ObjectResult], loader) -> tuple[float, int]:
    dsn = _fresh_db(env, "imr_bench_load")
    conn = psycopg2.connect(dsn)
    try:
        warehouse.upgrade(conn)
        objects = [{"key": o.key, "etag": o.etag, "size": 1, "last_modified": None} for o in outcomes]
        warehouse.register_objects(conn, "bench", objects, "bench")
        warehouse.claim_batches(conn, "bench", "bench", batch_size=len(outcomes))
        start = time.perf_counter()
        for i in range(0, len(outcomes), 200):  # the DAG's default batch size
            loader(conn, "bench", outcomes[i : i + 200], "bench")
        secs = time.perf_counter() - start
        rows = sum(1 + len(o.result.letter.items) for o in outcomes)
        return secs, rows
    finally:
        conn.close()


def run_pipeline_bench(n_letters: int, conf: dict | None = None, rounds: int = 2) -> dict:
    """`conf`: the imr_backfill run's params; default: the DAG's defaults, as a user runs it.

    `rounds` DAG runs, each between two parse-only runs (parse, run, parse, run, parse): one run's
    wall time on this 2-core machine varies by up to a fifth from run to run (83-104 s measured for
    the same parse-only), so each run is compared with the parse-only runs beside it and the figure
    is the median of the rounds' ratios."""
    env = _env()
    sample = _letters(n_letters)
    files = sorted((sample / "letters").glob("*.pdf"))
    parse_runs, round_figures, dag_runs = [], [], []
    before_s, parse_cpu = _parse_only(files)
    parse_runs.append(before_s)
    for _ in range(rounds):
        cpu = _children_cpu_s()
        run = _end_to_end(env, files, conf or {})
        dag_cpu = _children_cpu_s() - cpu
        after_s, _ = _parse_only(files)
        parse_runs.append(after_s)
        # Beside the parse-only runs before and after it: load from elsewhere on the machine then
        # hits the baseline about as it hits the run between them.
        parse_s = (parse_runs[-2] + after_s) / 2
        e2e_s, lanes_s = _dag_run_seconds(run)
        dag_runs.append(run)
        round_figures.append(
            {
                "parse_s": parse_s,
                "run_s": e2e_s,
                "lanes_s": lanes_s,
                "ratio": parse_s / e2e_s,
                "lanes_ratio": parse_s / lanes_s,
                "dag_cpu_s": dag_cpu,
            }
        )
    # The median round (the lower of two): its run's timeline and breakdown are printed.
    m = sorted(range(rounds), key=lambda i: round_figures[i]["ratio"])[(rounds - 1) // 2]
    run, middle = dag_runs[m], round_figures[m]
    parse_s, e2e_s, lanes_s, dag_cpu = (
        middle["parse_s"],
        middle["run_s"],
        middle["lanes_s"],
        middle["dag_cpu_s"],
    )
    timeline = task_timeline(run)
    breakdown = phase_breakdown(run)
    outcomes = _outcomes(files)
    copy_s, rows = _load_seconds(env, outcomes, warehouse.load_batch)
    many_s, _ = _load_seconds(env, outcomes, load_rows_executemany)
    res = {
        "letters": len(files),
        "rounds": round_figures,
        "parse_jobs2_letters_per_s": len(files) / parse_s,
        "dag_local_executor_p2_letters_per_s": len(files) / e2e_s,
        "dag_vs_parse_ratio": statistics.median(r["ratio"] for r in round_figures),
        "lanes_phase_vs_parse_ratio": statistics.median(r["lanes_ratio"] for r in round_figures),
        "fixed_overhead_s": e2e_s - lanes_s,
        "dags_test_cli_startup_s": (_run_began(run) - run.start_date).total_seconds(),
        "parse_only_runs_s": parse_runs,
        "parse_cpu_ms_per_letter": 1000 * parse_cpu / len(files),
        "dag_cpu_ms_per_letter": 1000 * dag_cpu / len(files),
        "lanes": len(run.tasks("process_lane")),
        "timeline": timeline,
        "breakdown": breakdown,
        "scheduler_run_s": run.seconds,
        "copy_rows_per_s": rows / copy_s,
        "executemany_rows_per_s": rows / many_s,
        "copy_vs_executemany": many_s / copy_s,
    }
    print(f"\nPipeline on {len(files)} generated letters ({rounds} round(s); the median round's figures)")
    print(f"imr parse --jobs 2:                     {res['parse_jobs2_letters_per_s']:.1f} letters/s")
    print(
        f"imr_backfill, LocalExecutor, parallel 2: "
        f"{res['dag_local_executor_p2_letters_per_s']:.1f} letters/s "
        f"(ratio to parse-only {res['dag_vs_parse_ratio']:.2f}, median of the rounds; target >= 0.85)"
        f"; below: round {m + 1}'s run"
    )
    for n, r in enumerate(round_figures, 1):
        print(
            f"  round {n}: run {r['run_s']:.1f} s, lanes {r['lanes_s']:.1f} s, parse-only beside it"
            f" {r['parse_s']:.1f} s: ratio {r['ratio']:.2f}, lanes {r['lanes_ratio']:.2f}"
        )
    print(
        f"  of which the {res['lanes']} mapped parse+load lanes: {lanes_s:.1f} s "
        f"(ratio to parse-only {res['lanes_phase_vs_parse_ratio']:.2f}, median); fixed overhead (the tasks "
        f"before and after the lanes, with their scheduling): {res['fixed_overhead_s']:.1f} s"
    )
    print(
        f"  CPU per letter: parse-only {res['parse_cpu_ms_per_letter']:.0f} ms, the DAG run's processes "
        f"(Airflow, tasks, parser workers; not S3 or PostgreSQL) {res['dag_cpu_ms_per_letter']:.0f} ms; "
        f"parse-only runs {', '.join(f'{x:.1f}' for x in parse_runs)} s"
    )
    print(
        f"  not counted: `airflow dags test` start-up before the run's first task, "
        f"{res['dags_test_cli_startup_s']:.1f} s (a scheduled run does not pay it)"
    )
    print_breakdown(breakdown)
    print_timeline(timeline, e2e_s)
    print(
        f"warehouse load: COPY {res['copy_rows_per_s']:.0f} rows/s, executemany "
        f"{res['executemany_rows_per_s']:.0f} rows/s ({res['copy_vs_executemany']:.2f}x)"
    )
    return res


if __name__ == "__main__":
    run_pipeline_bench(
        int(sys.argv[1]) if len(sys.argv) > 1 else 3000, rounds=int(sys.argv[2]) if len(sys.argv) > 2 else 2
    )
