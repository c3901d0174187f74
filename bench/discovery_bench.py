"""Discovery at archive scale, for `make bench` (and `make bench-discovery` alone):

* `discover` (imr.pipeline.discover, the function the Airflow task calls, with a boto3 client and a
  psycopg2 connection) over 20,000 and over 200,000 objects, each in a fresh process into a fresh
  warehouse: seconds, seconds per 100,000 keys split into S3 listing and manifest writes, and the
  process's peak RSS (its VmHWM; see _peak_mb), which must stay flat: the larger at most 1.2x the
  smaller;
* `plan` (imr.warehouse.claim_batches, as the task calls it with the default pool's lanes) on the
  200,000 pending keys;
* the baseline: listing the same 200,000 keys with a bare boto3 paginator, nothing written.

The S3 endpoint is imr_devtools.devservices's (start_s3 without the request recording) in a
scratch state dir on a free local port, holding zero-byte-ish objects: a few bytes each, so every
ETag differs. It is seeded through moto's backend in the server's own process (start_s3's `prepare`
hook calls `seed` below there), since PUTting 220,000 objects over HTTP runs at ~280/s on this
machine (13 minutes); everything measured goes over HTTP. moto's ListObjectsV2 rescans and sorts
the whole bucket for every page, so a listing costs O(N^2) (343 s for 200,000 keys, against 24 s of
client CPU); real S3 pages in constant time. By default the server keeps each bucket's sorted key
names and answers a page from its place in them (same keys, order, tokens and XML); `--moto-scan`
measures against moto's own scan.
PostgreSQL is the embedded one (imr_devtools.devservices), in scratch databases dropped afterwards
(imr_devtools.scratch).

    python bench/discovery_bench.py [--sizes 20000,200000] [--moto-scan] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imr_devtools import devservices, scratch

PREFIX = "letters/"
BATCH_SIZE = 200  # the DAGs' default batch_size param
RSS_FLAT = 1.2  # issue 9: the larger run's peak RSS at most this times the smaller's
ARCHIVE_KEYS = 1_700_000  # the DWC archive since 2013, for the extrapolation
# Ports the bench must never bind: other engineers' stacks on this machine.
_RESERVED_PORTS = range(25400, 25501)


def _key(n: int) -> str:
    # Shaped like the archive's keys (year-coded case numbers), so COPY carries realistic widths.
    return f"{PREFIX}{2013 + n % 12}/CM{13 + n % 12:02d}-{n:07d}.pdf"


def _bucket(size: int) -> str:
    return f"imr-discovery-{size}"


def _mb(kb: int) -> float:
    return kb / 1024


def _peak_mb() -> float:
    """This process's peak RSS: the kernel's high-water mark of its own address space (VmHWM).
    Not ru_maxrss: Linux carries the parent's peak over an exec into the child's ru_maxrss, so a
    child of a large parent (bench/run.py after the pipeline bench) would report the parent's size
    at 20,000 and at 200,000 keys alike and hide any growth."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return _mb(int(line.split()[1]))
    except OSError:
        pass
    return _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# --------------------------------------------------------------------------- the S3 endpoint


def _index_listing(backend_cls: Any, names: dict[str, list[str]]) -> None:
    """ListObjectsV2 for the seeded buckets from their sorted key names: moto's own code rescans and
    sorts the bucket per page; this finds the page by bisection, then lets moto truncate and mint the
    continuation token as it always does. Other buckets, and delimiters, keep moto's path."""
    from bisect import bisect_left, bisect_right

    original = backend_cls.list_objects_v2

    def list_objects_v2(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys):
        sorted_names = names.get(bucket.name)
        if sorted_names is None or delimiter:
            return original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
        prefix = prefix or ""
        after = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
        start = bisect_left(sorted_names, prefix)
        if after:
            start = max(start, bisect_right(sorted_names, after))
        page = []
        for name in sorted_names[start : start + max_keys + 1]:
            if not name.startswith(prefix):
                break
            page.append(bucket.keys[name])
        return self._truncate_result(page, max_keys)

    backend_cls.list_objects_v2 = list_objects_v2


def seed(sizes: list[int], moto_scan: bool, out: str) -> None:
    """start_s3's `prepare` hook, in the S3 endpoint's process before it answers: one bucket per size
    seeded through moto's backend, the listing indexed unless `moto_scan`; writes {"seed_s", "rss_mb"}
    to `out`."""
    from moto.s3.models import S3Backend, s3_backends

    backend = s3_backends["123456789012"]["aws"]
    names: dict[str, list[str]] = {}
    start = time.perf_counter()
    for size in sizes:
        bucket = _bucket(size)
        backend.create_bucket(bucket, "us-east-1")
        for n in range(size):
            backend.put_object(bucket, _key(n), b"%d" % n)
        names[bucket] = sorted(_key(n) for n in range(size))
    seed_s = time.perf_counter() - start
    if not moto_scan:
        _index_listing(S3Backend, names)
    Path(out).write_text(json.dumps({"seed_s": seed_s, "rss_mb": _peak_mb()}))


def _free_port() -> int:
    """A free port on 127.0.0.1 outside the other engineers' stacks."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _RESERVED_PORTS:
            return port


@contextmanager
def s3_endpoint(sizes: list[int], moto_scan: bool) -> Iterator[dict[str, Any]]:
    """Start the seeded S3 endpoint; yields {"url", "seed_s", "rss_mb"}; stops it on the way out."""
    state = Path(tempfile.mkdtemp(prefix="imr-discovery-s3-"))
    port = _free_port()
    seeded = state / "seeded.json"
    try:
        devservices.start_s3(
            state,
            port,
            record=False,
            prepare=f"{Path(__file__).resolve()}:seed",
            prepare_args={"sizes": sizes, "moto_scan": moto_scan, "out": str(seeded)},
            timeout=1800,  # 220,000 objects seed in minutes on a busy machine
        )
        yield {"url": f"http://127.0.0.1:{port}", **json.loads(seeded.read_text())}
    finally:
        devservices.stop_s3(state, compact=False)
        shutil.rmtree(state, ignore_errors=True)


# --------------------------------------------------------------------------- measured children


class _TimedS3:
    """The boto3 client with its ListObjectsV2 pages timed: the time discover spends waiting on S3
    (the request and botocore's parse), so the rest is the manifest's share. Only the paginator is
    wrapped; everything discover calls still reaches boto3 unchanged."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.list_s = 0.0

    def get_paginator(self, name: str) -> Any:
        paginator = self._client.get_paginator(name)
        timed = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[dict]:
                pages = iter(paginator.paginate(**kwargs))
                while True:
                    start = time.perf_counter()
                    try:
                        page = next(pages)
                    except StopIteration:
                        return
                    finally:
                        timed.list_s += time.perf_counter() - start
                    yield page

        return Paginator()


def _s3_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    from imr.config import S3_RETRY_EXTRA

    # What S3Hook builds from the aws_default connection devservices writes: the same retry config.
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=devservices.S3_REGION,
        config=Config(**S3_RETRY_EXTRA["config_kwargs"]),
        **devservices.S3_CREDENTIALS,
    )


def child(what: str, url: str, dsn: str, size: int, taper_lanes: int = 0) -> dict[str, Any]:
    """One measurement in this fresh process; `floor_rss_mb` is the peak after imports and
    connecting, before the measured call."""
    import psycopg2

    from imr import pipeline, warehouse

    bucket = _bucket(size)
    s3 = _s3_client(url)
    conn = psycopg2.connect(dsn)
    s3.head_bucket(Bucket=bucket)  # the client's endpoint and connection pool warm, as in a task
    floor = _peak_mb()
    out: dict[str, Any] = {"what": what, "objects": size}
    cpu = time.process_time()
    start = time.perf_counter()
    if what == "list":
        keys = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
            keys += len(page.get("Contents", ()))
        out.update(keys=keys, list_s=time.perf_counter() - start)
    elif what in ("discover", "rediscover"):
        timed = _TimedS3(s3)
        pending = pipeline.discover(timed, conn, bucket, PREFIX, f"bench-{what}")
        out.update(pending=pending, list_s=timed.list_s)
    elif what == "plan":
        batch_ids = warehouse.claim_batches(
            conn, bucket, "bench-plan", BATCH_SIZE, prefix=PREFIX, taper_lanes=taper_lanes
        )
        out.update(batches=len(batch_ids))
    else:
        raise SystemExit(f"unknown measurement {what}")
    out["seconds"] = time.perf_counter() - start
    # This process's own CPU (botocore parsing pages, building COPY rows): what the task's worker
    # pays whatever the endpoint; the rest of the wall time is waiting on S3 and PostgreSQL.
    out["cpu_s"] = time.process_time() - cpu
    out["floor_rss_mb"] = floor
    out["peak_rss_mb"] = _peak_mb()
    out["ru_maxrss_mb"] = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # for comparison
    if what != "list":
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'processing') FROM imr.s3_objects"
                " WHERE bucket = %s",
                (bucket,),
            )
            out["manifest_rows"], out["claimed"] = cur.fetchone()
    conn.close()
    return out


def _run_child(what: str, url: str, dsn: str, size: int, taper_lanes: int = 0) -> dict[str, Any]:
    args = ["--child", what, "--url", url, "--dsn", dsn]
    args += ["--size", str(size), "--taper-lanes", str(taper_lanes)]
    out = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{what} {size}: exit {out.returncode}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the benchmark


@contextmanager
def _scratch_db(env: dict[str, str], name: str) -> Iterator[str]:
    """A fresh, migrated warehouse database; dropped afterwards."""
    with scratch.scratch_database(env["IMR_WAREHOUSE_DSN"], name=name, migrate_schema=True) as dsn:
        yield dsn


def _plan_lanes() -> int:
    """The lanes the plan task tapers the tail batches for on the default deployment (the pool's
    slots, under core.parallelism): imported here, not in the measured child, which stays free of
    Airflow."""
    from airflow.sdk.configuration import conf

    from imr_airflow.params import pool_slots
    from imr_airflow.tasks import lane_count

    max_map_length = conf.getint("core", "max_map_length")
    return lane_count(0, max_map_length, max_map_length, pool_slots(), conf.getint("core", "parallelism"))


def _expected_batches(keys: int) -> int:
    """claim_batches's batches for `keys`: full ones, then the tapered tail for the plan's lanes."""
    from imr.warehouse.manifest import TAPER

    head = max(keys - _plan_lanes() * BATCH_SIZE, 0)
    return -(-head // BATCH_SIZE) + -(-(keys - head) // -(-BATCH_SIZE // TAPER))


def _per_100k(seconds: float, keys: int) -> float:
    return seconds * 100_000 / keys if keys else float("nan")


def run_discovery_bench(sizes: tuple[int, ...] = (20_000, 200_000), moto_scan: bool = False) -> dict:
    """Every measurement of the module docstring; prints the table and returns the figures."""
    small, large = min(sizes), max(sizes)
    env = devservices.service_env()
    res: dict[str, Any] = {"sizes": list(sizes), "s3": "moto (scan)" if moto_scan else "moto (indexed pages)"}
    print(
        f"\nDiscovery at archive scale: seeding {' + '.join(f'{s:,}' for s in sizes)} objects ...", flush=True
    )
    with s3_endpoint(list(sizes), moto_scan) as s3:
        res["seed_s"] = s3["seed_s"]
        res["s3_server_rss_mb"] = s3["rss_mb"]
        res["list_only"] = _run_child("list", s3["url"], env["IMR_WAREHOUSE_DSN"], large)
        runs = {}
        for size in sizes:
            with _scratch_db(env, f"imr_bench_discovery_{size}") as dsn:
                runs[size] = _run_child("discover", s3["url"], dsn, size)
                if size == large:
                    res["rediscover"] = _run_child("rediscover", s3["url"], dsn, size)
                    res["plan"] = _run_child("plan", s3["url"], dsn, size, _plan_lanes())
    res["discover"] = {str(s): r for s, r in runs.items()}
    for r in (*runs.values(), res["rediscover"], res["list_only"]):
        keys = r["objects"]
        r["s_per_100k"] = _per_100k(r["seconds"], keys)
        r["list_s_per_100k"] = _per_100k(r["list_s"], keys)
        r["manifest_s_per_100k"] = _per_100k(r["seconds"] - r["list_s"], keys)
        r["cpu_s_per_100k"] = _per_100k(r["cpu_s"], keys)
    res["rss_ratio"] = runs[large]["peak_rss_mb"] / runs[small]["peak_rss_mb"]
    res["rss_flat"] = res["rss_ratio"] <= RSS_FLAT
    big = runs[large]
    res["discovery_over_listing_s_per_100k"] = big["s_per_100k"] - res["list_only"]["s_per_100k"]
    res["archive"] = {
        "keys": ARCHIVE_KEYS,
        "discover_manifest_min": big["manifest_s_per_100k"] * ARCHIVE_KEYS / 100_000 / 60,
        "rediscover_manifest_min": res["rediscover"]["manifest_s_per_100k"] * ARCHIVE_KEYS / 100_000 / 60,
        "plan_s": res["plan"]["seconds"] * ARCHIVE_KEYS / large,
    }
    ok = all(r["manifest_rows"] == r["objects"] == r["pending"] for r in runs.values())
    ok = ok and res["rediscover"]["pending"] == 0 and res["list_only"]["keys"] == large
    ok = ok and res["plan"]["claimed"] == large and res["plan"]["batches"] == _expected_batches(large)
    res["counts_ok"] = ok
    print_discovery(res)
    return res


def print_discovery(res: dict) -> None:
    print(
        f"S3: {res['s3']}, seeded in {res['seed_s']:.0f} s (server RSS {res['s3_server_rss_mb']:.0f} MB);"
        f" PostgreSQL: embedded, scratch databases"
    )
    head = f"{'measurement':<34}{'keys':>9}{'s':>8}{'s/100k':>8}{'S3 s/100k':>10}{'DB s/100k':>10}"
    print(f"{head}{'CPU s/100k':>11}{'floor MB':>10}{'peak MB':>9}")
    rows = [(f"discover, {int(s):,} new", r) for s, r in res["discover"].items()]
    rows.append((f"discover again, {res['rediscover']['objects']:,} known", res["rediscover"]))
    rows.append((f"list only (paginator), {res['list_only']['objects']:,}", res["list_only"]))
    for label, r in rows:
        print(
            f"{label:<34}{r['objects']:>9,}{r['seconds']:>8.1f}{r['s_per_100k']:>8.1f}"
            f"{r['list_s_per_100k']:>10.1f}{r['manifest_s_per_100k']:>10.1f}{r['cpu_s_per_100k']:>11.1f}"
            f"{r['floor_rss_mb']:>10.0f}{r['peak_rss_mb']:>9.0f}"
        )
    p = res["plan"]
    label = f"plan, {p['objects']:,} pending"
    print(
        f"{label:<34}{p['objects']:>9,}{p['seconds']:>8.1f}"
        f"{'':>39}{p['floor_rss_mb']:>10.0f}{p['peak_rss_mb']:>9.0f}"
        f"   {p['batches']:,} batches of {BATCH_SIZE} (tail tapered)"
    )
    a = res["archive"]
    print(
        f"peak RSS {max(map(int, res['discover'])):,} vs {min(map(int, res['discover'])):,} keys:"
        f" {res['rss_ratio']:.2f}x ({'flat' if res['rss_flat'] else 'NOT FLAT'}, limit {RSS_FLAT}x);"
        f" counts {'ok' if res['counts_ok'] else 'WRONG'}"
    )
    big = res["discover"][str(max(map(int, res["discover"])))]
    print(
        f"discovery over listing alone: {big['manifest_s_per_100k']:.1f} s per 100k keys of manifest writes"
        f" (discover - paginator wall time: {res['discovery_over_listing_s_per_100k']:.1f} s)"
    )
    print(
        f"{a['keys']:,} keys: manifest writes {a['discover_manifest_min']:.1f} min first time,"
        f" {a['rediscover_manifest_min']:.1f} min on a re-listing, plan ~{a['plan_s']:.0f} s"
        " (+ the S3 listing)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="20000,200000", help="object counts, comma-separated")
    ap.add_argument("--moto-scan", action="store_true", help="moto's own O(N) per page listing")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--dsn", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--taper-lanes", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.child:
        print(json.dumps(child(args.child, args.url, args.dsn, args.size, args.taper_lanes)))
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    res = run_discovery_bench(sizes, args.moto_scan)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0 if res["rss_flat"] and res["counts_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
