"""`make bench-write-ceiling`: how many letters/s the warehouse absorbs from many lanes at once
(issue 18, "The warehouse's write ceiling"), with the parse step replaced by pre-parsed records.

For each lane count (default 2, 8, 32, 64), on a fresh database: LETTERS replicas of the parsed
corpus (bench_records: distinct case numbers, the archive's items and citations per letter) are
registered in the manifest (register_objects) and planned into batches with the real claim
(claim_batches). Then that many processes, each a lane as imr.pipeline.run_lane is one, lease the
run's next batch (claim_next_batch), read its keys (get_batch), load the pre-parsed letters with the
real load_batch under the lease (lease_owner) and so finish the batch, until none is left. Processes,
not threads: building the staging rows is Python work the GIL would serialise.

Printed per lane count: letters/s (items/s, citations/s), lock waits (samples of backends waiting
on a heavyweight lock, from pg_stat_activity every SAMPLE_S), deadlocks (pg_stat_database delta plus
DeadlockDetected caught in lanes: any fails the bench), WAL MB/s, and where the time went: CPU cores
used by PostgreSQL's processes and by the lane processes, and what the active backends were
waiting on (CPU = no wait event; Client:ClientRead = waiting for the lane; LWLock:WAL* / IO:WAL* =
WAL; Lock:* = row or transaction locks).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg2

import bench_records as br
import pipeline_bench as pb
from imr.warehouse import (
    ObjectResult,
    Parsed,
    claim_batches,
    claim_next_batch,
    get_batch,
    register_objects,
    upgrade,
)
from imr.warehouse.load import load_batch
from imr.warehouse.manifest import LeaseLost

BUCKET = "imr-ceiling"
DB = "imr_bench_ceiling"
LANES = (2, 8, 32, 64)
LETTERS = 6400
BATCH_SIZE = 50
SAMPLE_S = 0.1


def _n(key: str) -> int:
    """Replica number of a key made by bench_records.replica_key."""
    return int(key.rsplit("/", 1)[1].split(".")[0]) - br.REPLICA_BASE


def prepare(env: dict[str, str], letters: int, batch_size: int, run_id: str) -> tuple[str, int]:
    """A fresh database with `letters` objects registered and claimed into batches; (dsn, batches)."""
    dsn = pb._fresh_db(env, DB)
    conn = psycopg2.connect(dsn)
    try:
        upgrade(conn)
        objects = (
            {"key": br.replica_key(n), "etag": f"etag-{n}", "size": 1, "last_modified": None}
            for n in range(letters)
        )
        register_objects(conn, BUCKET, objects, run_id)
        batches = claim_batches(conn, BUCKET, run_id, batch_size)
    finally:
        conn.close()
    return dsn, len(batches)


def _count(counts, name: str) -> int:
    """A count from load_batch's result, a dict today (a typed result may replace it: one place)."""
    return counts[name] if isinstance(counts, dict) else getattr(counts, name)


def _lane(dsn: str, run_id: str, lane: int, records: list[dict], ready, out) -> None:
    """One lane process: lease, load, finish, until the run has no free batch; reports to `out`."""
    rep = br.Replicator(records)
    conn = psycopg2.connect(dsn)
    owner = f"{run_id}|{lane}|1"
    totals = Counter(batches=0, lost=0, deadlocks=0)
    ready.wait()
    try:
        while (batch_id := claim_next_batch(conn, run_id, owner)) is not None:
            batch = get_batch(conn, batch_id)
            results = [
                ObjectResult(o.key, o.etag, br.replica_sha256(_n(o.key)), Parsed(rep.letter(_n(o.key))))
                for o in batch.objects
            ]
            try:
                counts = load_batch(
                    conn,
                    batch.bucket,
                    results,
                    run_id,
                    "write_ceiling",
                    lane,
                    batch_id=batch_id,
                    lease_owner=owner,
                )
            except LeaseLost:
                totals["lost"] += 1
                continue
            except psycopg2.errors.DeadlockDetected:
                totals["deadlocks"] += 1
                continue
            totals.update(
                batches=1, **{k: _count(counts, k) for k in ("loaded", "letters_written", "items_written")}
            )
    finally:
        conn.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put({"lane": lane, "end": time.time(), "cpu_s": usage.ru_utime + usage.ru_stime, **totals})


def _proc_cpu_s(pid: int, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s(postmaster: int) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster with its reaped children (exited
    backends) plus its live children. Linux only; the server must run on this machine."""
    total = _proc_cpu_s(postmaster, children=True)
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                total += _proc_cpu_s(int(p.name))
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, iowait) CPU seconds of the whole machine so far, every process's (/proc/stat)."""
    user, nice, system, _idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9]
    )
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / hz, iowait / hz


def _postmaster(cur) -> int:
    cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
    pid = cur.fetchone()[0]
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _db_stats(cur) -> dict:
    cur.execute(
        "SELECT deadlocks, xact_commit, xact_rollback, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
        " FROM pg_stat_database WHERE datname = current_database()"
    )
    deadlocks, commits, rollbacks, wal = cur.fetchone()
    return {"deadlocks": deadlocks, "commits": commits, "rollbacks": rollbacks, "wal_bytes": float(wal)}


class Sampler(threading.Thread):
    """What the database's other backends are doing, every SAMPLE_S: counts of active backends per
    wait event ('CPU' for none) and of backends waiting on heavyweight locks."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self.stop = threading.Event()
        self.waits: Counter = Counter()
        self.samples = 0
        self.lock_wait_samples = 0
        self.max_lock_waiters = 0

    def run(self) -> None:
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend' AND state = 'active'"
                )
                events = [r[0] for r in cur.fetchall()]
                self.samples += 1
                self.waits.update(events)
                locked = sum(e.startswith("Lock:") for e in events)
                self.lock_wait_samples += locked > 0
                self.max_lock_waiters = max(self.max_lock_waiters, locked)
                self.stop.wait(SAMPLE_S)
        self.conn.close()


def _verify(dsn: str, letters: int) -> dict:
    """What the run left: letters, distinct cases, items, citations, manifest and batch states."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT (SELECT count(*) FROM imr.letters), (SELECT count(DISTINCT case_number) FROM imr.letters),
                   (SELECT count(*) FROM imr.items), (SELECT count(*) FROM imr.item_citations),
                   (SELECT count(*) FROM imr.s3_objects WHERE status = 'loaded'),
                   (SELECT count(*) FROM imr.batches WHERE finished_at IS NULL)
            """
        )
        row = cur.fetchone()
    conn.close()
    keys = ("letters", "cases", "items", "citations", "manifest_loaded", "unfinished_batches")
    res = dict(zip(keys, row, strict=True))
    res["ok"] = (
        res["letters"] == res["cases"] == res["manifest_loaded"] == letters and not res["unfinished_batches"]
    )
    return res


def _start_lanes(ctx, dsn: str, run_id: str, lanes: int, records: list[dict]):
    ready = ctx.Barrier(lanes + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_lane, args=(dsn, run_id, i, records, ready, out)) for i in range(lanes)]
    for p in procs:
        p.start()
    return procs, ready, out


def run_level(env: dict[str, str], lanes: int, letters: int, batch_size: int, records: list[dict]) -> dict:
    """One lane count on a fresh database; the figures, and whether the load was exact."""
    run_id = f"ceiling-{lanes}"
    dsn, n_batches = prepare(env, letters, batch_size, run_id)
    ctx = mp.get_context("fork")  # the lanes inherit the parsed records; no connection is open here
    procs, ready, out = _start_lanes(ctx, dsn, run_id, lanes, records)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    postmaster = _postmaster(cur)
    sampler = Sampler(dsn)
    before, pg_before, machine_before = _db_stats(cur), postgres_cpu_s(postmaster), machine_cpu()
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    ready.wait()  # every lane connected and holds its records: the clock starts with the work
    started = time.time()
    sampler.start()
    reports = [out.get() for _ in procs]
    for p in procs:
        p.join()
    sampler.stop.set()
    sampler.join()
    wall = max(r["end"] for r in reports) - started
    time.sleep(0.3)  # let the lanes' backends exit, so the postmaster has reaped their CPU time
    after, pg_after, machine_after = _db_stats(cur), postgres_cpu_s(postmaster), machine_cpu()
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    conn.close()
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    total = Counter()
    for r in reports:
        total.update({k: v for k, v in r.items() if k not in ("lane", "end", "cpu_s")})
    check = _verify(dsn, letters)
    active = sum(sampler.waits.values()) or 1
    return {
        "lanes": lanes,
        "letters": letters,
        "batches": n_batches,
        "batch_size": batch_size,
        "wall_s": wall,
        "letters_per_s": check["letters"] / wall,
        "items_per_s": check["items"] / wall,
        "citations_per_s": check["citations"] / wall,
        "letters_written": total["letters_written"],
        "lost_leases": total["lost"],
        "deadlocks": (after["deadlocks"] - before["deadlocks"]) + total["deadlocks"],
        "rollbacks": after["rollbacks"] - before["rollbacks"],
        "lock_wait_share": sampler.lock_wait_samples / max(1, sampler.samples),
        "max_lock_waiters": sampler.max_lock_waiters,
        "wal_mb_per_s": (after["wal_bytes"] - before["wal_bytes"]) / wall / 2**20,
        "postgres_cores": (pg_after - pg_before) / wall,
        "client_cores": client_cpu / wall,
        # the machine's busy cores over the level (+0.3 s): the bench's own and everyone else's
        "machine_cores": (machine_after[0] - machine_before[0]) / (wall + 0.3),
        "iowait_cores": (machine_after[1] - machine_before[1]) / (wall + 0.3),
        "waits": {k: v / active for k, v in sampler.waits.most_common(6)},
        "check": check,
    }


def limit_of(r: dict, cores: int) -> str:
    """A one-line reading of what bounded a level."""
    if r["lock_wait_share"] > 0.5:
        return "row/transaction locks"
    if r["machine_cores"] >= 0.85 * cores:
        others = max(0.0, r["machine_cores"] - r["postgres_cores"] - r["client_cores"])
        return (
            f"CPU: all {cores} cores busy (PostgreSQL {r['postgres_cores']:.1f},"
            f" lanes {r['client_cores']:.1f}, other processes {others:.1f})"
        )
    wal = sum(v for k, v in r["waits"].items() if "WAL" in k.upper())
    if wal > 0.3 or r["iowait_cores"] > 0.5:
        return "WAL writing/flushing (fsync)"
    return "none saturated (latency per batch)"


def print_table(rows: list[dict]) -> None:
    cores = os.cpu_count() or 1
    print(f"\nWrite ceiling ({cores} cores; batches of {rows[0]['batch_size']} pre-parsed letters)")
    print(
        f"{'lanes':>5}{'letters':>8}{'wall s':>8}{'letters/s':>10}{'items/s':>9}{'cites/s':>9}"
        f"{'lockwait':>9}{'dlocks':>7}{'WAL MB/s':>9}{'pg cores':>9}{'client':>7}{'machine':>8}  limit"
    )
    for r in rows:
        print(
            f"{r['lanes']:>5}{r['letters']:>8}{r['wall_s']:>8.1f}{r['letters_per_s']:>10.0f}"
            f"{r['items_per_s']:>9.0f}{r['citations_per_s']:>9.0f}{r['lock_wait_share']:>9.0%}"
            f"{r['deadlocks']:>7}{r['wal_mb_per_s']:>9.1f}{r['postgres_cores']:>9.2f}"
            f"{r['client_cores']:>7.2f}{r['machine_cores']:>8.2f}  {limit_of(r, cores)}"
        )
    for r in rows:
        waits = ", ".join(f"{k} {v:.0%}" for k, v in r["waits"].items())
        print(f"  {r['lanes']:>3} lanes, active backends: {waits}")


def run_write_ceiling(
    lanes: tuple[int, ...] = LANES, letters: int = LETTERS, batch_size: int = BATCH_SIZE, quiet: bool = False
) -> list[dict]:
    env = pb._env()
    records = br.corpus_records()
    rows = [run_level(env, n, letters, batch_size, records) for n in lanes]
    if not quiet:
        print_table(rows)
    bad = [r for r in rows if r["deadlocks"] or not r["check"]["ok"] or r["letters_written"] != letters]
    if bad:
        raise SystemExit(
            f"write ceiling: deadlocks or an inexact load at {[(r['lanes'], r['check']) for r in bad]}"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", default=",".join(map(str, LANES)), help="comma-separated lane counts")
    ap.add_argument("--letters", type=int, default=LETTERS, help="letters per lane count")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = ap.parse_args(argv)
    run_write_ceiling(tuple(int(x) for x in args.lanes.split(",")), args.letters, args.batch_size)


if __name__ == "__main__":
    main()
