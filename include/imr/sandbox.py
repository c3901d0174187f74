"""What a parse worker (imr.workers) inherits and what the kernel lets it do: the worker sandbox.

A letter is untrusted input to pdfminer.six, and a PDF that exploits a parser bug runs code with
whatever the worker holds (CVE-2025-64512 was that class). The task that starts the workers holds
the API's JWT secret, `AIRFLOW_CONN_*` URIs, the warehouse DSN and S3 keys in its environment. So:

* a worker starts with an allowlisted environment (`WORKER_ENV_ALLOWLIST`), none of those;
* before it reports ready it limits itself (`confine`): address space (the `memory_mb` limit),
  file size 0 (it writes no files), core size 0 (a core dump would hold letter text), process count
  0 (no fork, no thread), and CPU time per letter (`CpuAllowance`).

CPU time is bounded per letter, not per worker: a long-lived worker parses thousands of letters, so a
cumulative cap alone would sooner or later kill a healthy one. Before each letter the soft limit is
set to the CPU already used plus one letter's budget (the per-letter deadline rounded up, plus a
second of rlimit granularity). While the parent watches, its wall-clock deadline always comes first
(a single-threaded worker uses at most one CPU second per second); the soft limit is the backstop
for when nobody watches: a parent that is busy between two results or was killed (an orphaned worker
spinning on a PDF would otherwise run forever). SIGXCPU kills the worker. The hard limit is a small
multiple of the budget, for code that raises its own soft limit or ignores SIGXCPU; a worker whose
remaining allowance is less than one budget asks to be replaced after its result (`exhausted`), so
healthy work never reaches it.

File size 0 covers the worker's inherited stderr too when that is a regular file (`imr parse 2>log`,
pytest's capture): the worker's own warnings are then lost. Under Airflow the task's stderr is a
socket, and a terminal or pipe is not limited.

What this does not prevent: the limits bound a runaway parse and code that runs as an ordinary
user, not code that runs as root (root may raise every limit again, and RLIMIT_NPROC is not enforced
for root at all); the worker still runs as the task's user, so code in it can read what that user can
read (files, `/proc/<parent>/environ`) and open network connections. A separate user, a read-only
file system and no network (container, seccomp) are the deployment's to add.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass

from .limits import Limits

# The variables a worker needs to start its interpreter, find its packages and decode text; nothing
# else, so no credential is ever inherited. HOME: the Airflow image keeps its packages in
# ~/.local (the user site), found through HOME. No TMPDIR (a worker writes no files) and no IMR_*
# variable: the limits travel as JSON on the worker's command line.
WORKER_ENV_ALLOWLIST = frozenset(
    {
        "PATH",
        "HOME",
        "LD_LIBRARY_PATH",
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONUSERBASE",
        "PYTHONNOUSERSITE",
        "PYTHONUTF8",
        "PYTHONIOENCODING",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
    }
)

# How many worst-case letters (one CPU budget each) fit under a worker's hard CPU limit. A worker is
# replaced once less than one budget is left, so with the default 30 s deadline a worker lives for
# about a minute of CPU (some hundreds of letters) and a runaway one is stopped after ~90 s.
CPU_CAP_BUDGETS = 3


def worker_env(parent: Mapping[str, str], package_root: str) -> dict[str, str]:
    """The environment a worker starts with: the allowlisted part of `parent`, with `package_root`
    first on PYTHONPATH.

    :param parent: the starting process's environment.
    :param package_root: the directory holding the `imr` package, so the worker finds it however
        the parent did (installed, PYTHONPATH).
    :return: a new mapping; `parent` is not changed.
    """
    env = {k: v for k, v in parent.items() if k in WORKER_ENV_ALLOWLIST}
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # it could not write its bytecode cache anyway (file size 0)
    return env


def cpu_budget_s(limits: Limits) -> int:
    """CPU seconds one letter may use in a worker: the deadline rounded up, plus a second because
    RLIMIT_CPU counts whole seconds.

    :param limits: the per-letter limits.
    :return: the budget in whole seconds.
    """
    return math.ceil(limits.timeout_s) + 1


def _cpu_used_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _lower(which: int, value: int) -> int:
    """Set both limits of `which` to `value`, or keep a lower hard limit the worker inherited (an
    ordinary user may not raise it); the value set."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
    return value


@dataclass
class CpuAllowance:
    """The worker's CPU time limits: `budget` seconds per letter, `hard` seconds in all."""

    budget: int
    hard: int

    def arm(self) -> None:
        """Allow the next letter `budget` more CPU seconds than used so far."""
        soft = min(self.hard, math.ceil(_cpu_used_s()) + self.budget)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, self.hard))

    def exhausted(self) -> bool:
        """Whether another letter's budget would no longer fit under the hard limit."""
        return math.ceil(_cpu_used_s()) + self.budget > self.hard


def confine(limits: Limits) -> CpuAllowance:
    """Apply the worker's resource limits to this process (called in the worker, before it takes a
    letter). Once lowered, an ordinary user cannot raise a hard limit again.

    :param limits: the per-letter limits (`memory_mb`: the address-space cap, 0 for none;
        `timeout_s`: the CPU budget).
    :return: the CPU allowance to arm before each letter.
    """
    if limits.memory_mb:
        _lower(resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024)
    _lower(resource.RLIMIT_FSIZE, 0)  # Python ignores SIGXFSZ: a write fails with EFBIG
    _lower(resource.RLIMIT_CORE, 0)
    # 0: fork and clone fail whatever else the user runs (the limit counts all the user's processes,
    # so only 0 means the same everywhere). Not enforced for root or with CAP_SYS_RESOURCE/ADMIN.
    _lower(resource.RLIMIT_NPROC, 0)
    budget = cpu_budget_s(limits)
    hard = math.ceil(_cpu_used_s()) + CPU_CAP_BUDGETS * budget
    _, inherited = resource.getrlimit(resource.RLIMIT_CPU)
    if inherited != resource.RLIM_INFINITY:
        hard = min(hard, inherited)
    allowance = CpuAllowance(budget, hard)
    allowance.arm()
    return allowance
