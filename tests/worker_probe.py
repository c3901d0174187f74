"""A parse worker that also obeys probe commands, for tests of the worker sandbox (imr.parse.sandbox).

Run by `ParserPool(_worker_module="worker_probe")`, it is the real worker: the pool's spawn (its
environment) and `imr.parse.workers._serve` (its resource limits, ready handshake, per-letter CPU arming);
only the document handler differs. A document that is a JSON object is a command run inside the
worker, whose answer comes back as the result's `message` (JSON); any other document is parsed as a
letter. The tests directory must be on PYTHONPATH for the worker to find this module.

The parent-side view of the workers is tests/support/procs.py.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import sys
import time
from pathlib import Path

from imr.parse.limits import Limits
from imr.parse.workers import Outcome, _serve, parse_document

MODULE = "worker_probe"


def _rlimit(name: str) -> list[int | None]:
    return [None if v == resource.RLIM_INFINITY else v for v in resource.getrlimit(getattr(resource, name))]


def _try_write(path: str) -> dict:
    try:
        with open(path, "wb") as f:
            f.write(b"x" * 4096)
    except OSError as exc:
        return {"written": False, "errno": errno.errorcode.get(exc.errno, str(exc.errno))}
    return {"written": True}


def _spin(cpu_s: float) -> dict:
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass
    return {}


def _command(cmd: dict) -> dict:
    op = cmd["op"]
    if op == "environ":
        answer = {"environ": dict(os.environ)}
    elif op == "write":
        answer = _try_write(cmd["path"])
    elif op == "spin":
        answer = _spin(cmd["cpu_s"])
    else:
        raise ValueError(f"unknown probe command {op!r}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    answer.update(pid=os.getpid(), cpu_used=usage.ru_utime + usage.ru_stime, rlimit_cpu=_rlimit("RLIMIT_CPU"))
    return answer


def handle(payload: bytes | Path, limits: Limits) -> Outcome:
    """A probe command's answer, or the parse of a letter."""
    if isinstance(payload, bytes) and payload.startswith(b"{"):
        return None, None, None, json.dumps(_command(json.loads(payload)))
    return parse_document(payload, limits)


def command(op: str, **args: object) -> bytes:
    """The document that makes a probe worker run `op`."""
    return json.dumps({"op": op, **args}).encode()


if __name__ == "__main__":
    _serve(Limits(**json.loads(sys.argv[1])), handle=handle)
