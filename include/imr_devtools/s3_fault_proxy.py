"""The native stack's S3 proxy: imr_devtools.faultproxy.FaultProxy as a process of its own, so that
Celery workers (other process groups) reach S3 through it and a test in yet another process can make
it misbehave.

    python -m imr_devtools.s3_fault_proxy --listen PORT --upstream http://127.0.0.1:S3PORT --control FILE

It forwards everything until FILE holds a JSON object such as {"fault_rate": 0.2, "seed": 7}; it
re-reads FILE twice a second and writes its counters to FILE's sibling `<name>.counts.json`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import time
from pathlib import Path

from imr_devtools.faultproxy import FaultProxy


def _settings(control: Path) -> dict:
    try:
        return json.loads(control.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def _write_atomic(path: Path, text: str) -> None:
    """Replaces `path` in one rename: a test reading the counters never sees a truncated file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _bind(upstream: str, port: int, attempts: int = 20) -> FaultProxy:
    """The proxy on its port; a previous proxy's socket may take a moment to go after a restart."""
    for _ in range(attempts - 1):
        try:
            return FaultProxy(upstream, fault_rate=0.0, port=port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            time.sleep(0.5)
    return FaultProxy(upstream, fault_rate=0.0, port=port)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--control", type=Path, required=True)
    args = ap.parse_args(argv[1:])
    counts = args.control.with_name(args.control.stem + ".counts.json")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with _bind(args.upstream, args.listen) as proxy:
        applied: dict = {}
        while not stop:
            wanted = _settings(args.control)
            if wanted != applied:
                proxy.fault_rate = float(wanted.get("fault_rate", 0.0))
                proxy.reset_share = float(wanted.get("reset_share", 0.5))
                applied = wanted
            _write_atomic(counts, json.dumps(proxy.counts()))
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
