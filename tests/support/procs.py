"""The parse workers of this process, as the kernel sees them (/proc, Linux): for the tests that kill
workers or watch them come and go (test_worker_faults.py, test_worker_sandbox.py)."""

from __future__ import annotations

import os
from pathlib import Path

WORKER_MODULE = "imr.parse.workers"


def worker_pids(*modules: str) -> set[int]:
    """Live (not zombie) children of this process that run the parse worker or one of `modules`.

    :param modules: other `python -m` module names that count as workers (a probe worker)
    :return: their process ids
    """
    me, pids = os.getpid(), set()
    names = {m.encode() for m in (WORKER_MODULE, *modules)}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == me and state != "Z" and names & set(cmdline):
            pids.add(int(proc.name))
    return pids
