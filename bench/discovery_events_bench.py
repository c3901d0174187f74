"""Discovery from S3 notifications against listing, for `make bench-discovery-events`:

for a bucket of K existing keys (already in the manifest, as a nightly run finds the archive) plus
500 new ones uploaded with the bucket notifying an SQS queue, it measures

* events mode: imr.discovery.drain_events (what the nightly's discover task calls in events mode);
* listing mode: imr.pipeline.discover over the same bucket (what it calls without a queue);
* the reconciliation listing (imr.discovery.reconcile) over all K + 500 + a few keys uploaded with
  notifications off (lost events), in seconds per 100,000 keys, with the unseen count it reports;

each with its wall time and the S3 list calls and SQS calls counted on the wire (an
imr_devtools.faultproxy.FaultProxy without faults between the clients and the endpoint), and checks
the exact counts (500 pending in both modes, zero listing calls in events mode, the lost keys found).

The S3+SQS endpoint is discovery_bench's: moto's server on a scratch port with the K keys seeded
through its backend and its listing indexed (real S3 pages in constant time; moto's own scan is
O(N) per page), here with moto's SQS beside it; PostgreSQL the embedded one, a scratch database.

    python bench/discovery_events_bench.py [--keys 200000] [--new 500] [--lost 25] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import psycopg2

import discovery_bench
from discovery_bench import (
    PREFIX,
    _bucket,
    _free_port,
    _key,
    _per_100k,
    _s3_client,
    _scratch_db,
)
from imr import discovery, pipeline, warehouse
from imr_devtools import devservices, events
from imr_devtools.faultproxy import FaultProxy


@contextmanager
def endpoint(size: int) -> Iterator[dict[str, Any]]:
    """The seeded S3 + SQS endpoint (discovery_bench.seed_events); yields {"url", "seed_s", "rss_mb"}."""
    state = Path(tempfile.mkdtemp(prefix="imr-events-s3-"))
    port = _free_port()
    seeded = state / "seeded.json"
    try:
        devservices.start_s3(
            state,
            port,
            record=False,
            prepare=f"{Path(discovery_bench.__file__).resolve()}:seed_events",
            prepare_args={"size": size, "out": str(seeded)},
            timeout=1800,
        )
        yield {"url": f"http://127.0.0.1:{port}", **json.loads(seeded.read_text())}
    finally:
        devservices.stop_s3(state, compact=False)
        shutil.rmtree(state, ignore_errors=True)


def _existing(size: int) -> list[dict]:
    """The seeded keys as the manifest already holds them (discovery_bench.seed's bytes and ETags)."""
    return [
        {"key": _key(n), "etag": hashlib.md5(b"%d" % n).hexdigest(), "size": len(b"%d" % n)}
        for n in range(size)
    ]


def _prime(dsn: str, size: int) -> None:
    """The archive already in the manifest, loaded."""
    conn = psycopg2.connect(dsn)
    try:
        warehouse.register_objects(conn, _bucket(size), _existing(size), "archive")
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE imr.s3_objects SET status = 'loaded'")
    finally:
        conn.close()


def _lists(ops: dict[str, int]) -> int:
    return ops.get("s3:ListObjectsV2", 0) + ops.get("s3:ListObjects", 0)


def _sqs_calls(ops: dict[str, int]) -> int:
    return sum(n for op, n in ops.items() if op.startswith("sqs:"))


def _measure(proxy: FaultProxy, fn) -> tuple[Any, float, dict[str, int]]:
    before = proxy.operations()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    after = proxy.operations()
    return out, seconds, {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def run_events_bench(size: int = 200_000, new: int = 500, lost: int = 25) -> dict[str, Any]:
    """Every measurement of the module docstring; prints the table and returns the figures."""
    env = devservices.service_env()
    bucket = _bucket(size)
    res: dict[str, Any] = {"existing": size, "new": new, "lost": lost}
    print(f"\nDiscovery, events vs listing: seeding {size:,} objects ...", flush=True)
    with endpoint(size) as s3, FaultProxy(s3["url"], fault_rate=0.0) as proxy:
        res["seed_s"] = s3["seed_s"]
        res["s3_server_rss_mb"] = s3["rss_mb"]
        direct = _s3_client(s3["url"])
        kw = {"region_name": devservices.S3_REGION, **devservices.S3_CREDENTIALS}
        sqs_direct = boto3.client("sqs", endpoint_url=s3["url"], **kw)
        url, arn = events.create_queue(sqs_direct, "imr-bench-events", visibility_s=60)
        events.notify(direct, bucket, arn, PREFIX)
        new_keys = {f"{PREFIX}2026/new-{i:05d}.pdf": b"%%PDF new %d" % i for i in range(new)}
        for key, body in new_keys.items():
            direct.put_object(Bucket=bucket, Key=key, Body=body)
        res["queued"] = events.queue_depth(sqs_direct, url)
        s3c = _s3_client(proxy.url)
        sqs = boto3.client("sqs", endpoint_url=proxy.url, **kw)
        with _scratch_db(env, "imr_bench_events") as ev_dsn, _scratch_db(env, "imr_bench_listing") as ls_dsn:
            _prime(ev_dsn, size)
            _prime(ls_dsn, size)
            conn = psycopg2.connect(ev_dsn)
            report, secs, ops = _measure(
                proxy, lambda: discovery.drain_events(sqs, url, conn, bucket, PREFIX, "nightly-events")
            )
            res["events"] = {
                "seconds": secs,
                "pending": report.pending,
                "lists": _lists(ops),
                "sqs": _sqs_calls(ops),
            }
            res["events"]["ops"] = ops
            res["queue_after"] = events.queue_depth(sqs_direct, url)

            lconn = psycopg2.connect(ls_dsn)
            pending, secs, ops = _measure(
                proxy, lambda: pipeline.discover(s3c, lconn, bucket, PREFIX, "nightly-listing")
            )
            res["listing"] = {
                "seconds": secs,
                "pending": pending,
                "lists": _lists(ops),
                "sqs": _sqs_calls(ops),
            }
            lconn.close()

            events.notify(direct, bucket, None)
            for i in range(lost):
                direct.put_object(
                    Bucket=bucket, Key=f"{PREFIX}2026/lost-{i:05d}.pdf", Body=b"%%PDF lost %d" % i
                )
            found, secs, ops = _measure(
                proxy, lambda: discovery.reconcile(s3c, conn, bucket, PREFIX, "sweep")
            )
            res["reconcile"] = {
                "seconds": secs,
                "listed": found.listed,
                "unseen": found.unseen,
                "changed": found.changed,
                "lists": _lists(ops),
                "s_per_100k": _per_100k(secs, found.listed),
            }
            conn.close()
    ev, ls, rc = res["events"], res["listing"], res["reconcile"]
    res["counts_ok"] = (
        res["queued"] == new + 1  # + the s3:TestEvent
        and ev["pending"] == ls["pending"] == new
        and ev["lists"] == 0
        and res["queue_after"] == 0
        and ls["lists"] == -(-(size + new) // 1000)
        and (rc["listed"], rc["unseen"], rc["changed"]) == (size + new + lost, lost, 0)
    )
    print_events(res)
    return res


def print_events(res: dict) -> None:
    k, n = res["existing"], res["new"]
    print(
        f"bucket: {k:,} existing keys (in the manifest) + {n:,} new; seeded in {res['seed_s']:.0f} s"
        f" (endpoint RSS after seeding: {res['s3_server_rss_mb']:.0f} MB)"
    )
    print(f"{'nightly discovery':<28}{'s':>8}{'pending':>9}{'S3 lists':>10}{'SQS calls':>11}")
    for mode in ("events", "listing"):
        r = res[mode]
        print(f"{mode + ' mode':<28}{r['seconds']:>8.2f}{r['pending']:>9,}{r['lists']:>10,}{r['sqs']:>11,}")
    rc = res["reconcile"]
    print(
        f"reconciliation listing: {rc['listed']:,} keys in {rc['seconds']:.1f} s"
        f" ({rc['s_per_100k']:.1f} s per 100k keys, {rc['lists']:,} list calls),"
        f" {rc['unseen']} not in the manifest (lost events: {res['lost']})"
    )
    print(
        f"queue after the drain: {res['queue_after']} message(s);"
        f" counts {'ok' if res['counts_ok'] else 'WRONG'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200_000, help="existing keys in the bucket and manifest")
    ap.add_argument("--new", type=int, default=500, help="new keys, uploaded with notifications on")
    ap.add_argument("--lost", type=int, default=25, help="keys uploaded with notifications off")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    res = run_events_bench(args.keys, args.new, args.lost)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0 if res["counts_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
