"""The parse workers' sandbox (imr.parse.sandbox, imr.parse.workers), on real worker processes.

* A worker starts without the task's credentials: set in this (parent) process, `AIRFLOW__*`,
  `AIRFLOW_CONN_*`, `AWS_*` and `IMR_*` values are absent from the real worker's environment block
  (/proc/PID/environ) and from `os.environ` read inside a worker; the worker still parses letters.
* The kernel holds the worker to its limits (/proc/PID/limits of the real worker): no file writes,
  no core dumps, no new processes, a CPU limit of one letter's budget over what it has used.
* Inside a worker a file write fails (EFBIG) and leaves nothing on disk.
* A worker over its CPU time is killed by the kernel even while the parent is not watching its
  deadline (the consumer of `imap` is busy with an earlier result), and the letter is `timeout`.
* A healthy long-lived worker is never killed by the cumulative CPU cap: it uses several letters'
  budgets in all, each letter gets a fresh budget, and it is replaced before the hard limit.
* A worker that hangs or exits while starting fails the pool's start with `WorkerStartError` within
  the ready timeout, and leaves no process behind.

The probe tests run `tests/worker_probe.py`: the real worker loop and sandbox with a handler that
also runs commands inside the worker (a test-only module parameter of ParserPool; nothing in
production can select it). NPROC is checked as the kernel reports it, not by forking: tests run as
root, for whom the kernel does not enforce RLIMIT_NPROC.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

import imr_synth
from imr.parse.limits import Limits
from imr.parse.sandbox import CPU_CAP_BUDGETS, WORKER_ENV_ALLOWLIST, cpu_budget_s
from imr.parse.workers import ParserPool, WorkerStartError
from support.procs import worker_pids
from worker_probe import MODULE, command

TESTS = Path(__file__).resolve().parent
SLOW = imr_synth.bad_files()["timeout"]  # ~10 s of CPU in pdfminer

SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-h15c-0f3a",
    "AIRFLOW__API__SECRET_KEY": "api-secret-h15c-77b1",
    "AIRFLOW__CORE__FERNET_KEY": "fernet-h15c-c2d9",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:meta-pw-h15c@db/airflow",
    "AIRFLOW_CONN_IMR_WAREHOUSE": "postgresql://imr_app:conn-pw-h15c@db/imr",
    "AIRFLOW_CONN_AWS_DEFAULT": "aws://AKIAH15C:conn-s3-h15c@",
    "AWS_ACCESS_KEY_ID": "AKIAH15CPARENT",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-h15c-9e4c",
    "AWS_SESSION_TOKEN": "aws-token-h15c-51aa",
    "IMR_WAREHOUSE_DSN": "host=db user=imr_app password=dsn-pw-h15c",
    "IMR_VIEWER_PASSWORD": "viewer-pw-h15c",
}


def _letter(seed: str) -> tuple[str, bytes]:
    truth, pdf = imr_synth.random_letter(random.Random(seed), n_items=2)
    return truth.case_number, pdf


def _set_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _assert_no_credentials(env: dict[str, str]) -> None:
    leaked = [k for k in env if k.startswith(("AIRFLOW", "_AIRFLOW", "AWS_", "IMR_"))]
    assert not leaked, f"the worker inherited {leaked}"
    values = "\0".join(env.values())
    assert not [v for v in SECRETS.values() if v in values], "a secret value reached the worker"
    assert set(env) - {"PYTHONDONTWRITEBYTECODE"} <= WORKER_ENV_ALLOWLIST, sorted(env)


def _probe_pool(monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> ParserPool:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # allowlisted: how the worker finds worker_probe
    return ParserPool(_worker_module=MODULE, **kwargs)


def test_worker_environment_holds_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_secrets(monkeypatch)
    case, pdf = _letter("env")
    with ParserPool(jobs=1) as pool:
        (pid,) = worker_pids(MODULE)
        block = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        (parsed,) = pool.imap([("a.pdf", pdf)])
    real = dict(entry.decode().split("=", 1) for entry in block if entry)
    _assert_no_credentials(real)
    assert real["PATH"] == os.environ["PATH"]
    assert parsed.ok and parsed.letter.case_number == case, (parsed.error_code, parsed.message)

    with _probe_pool(monkeypatch) as pool:
        (answer,) = pool.imap([("environ", command("environ"))])
    inside = json.loads(answer.message)["environ"]
    _assert_no_credentials(inside)
    for name in SECRETS:  # still set here: the worker was started while they were
        assert os.environ[name] == SECRETS[name]


def _limits_of(pid: int) -> dict[str, tuple[str, str]]:
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    # "Max cpu time              32                   94                   seconds"
    return {row[:26].strip(): tuple(row[26:68].split()) for row in rows}


def test_kernel_holds_the_worker_to_its_limits() -> None:
    limits = Limits(timeout_s=30, memory_mb=512)
    budget = cpu_budget_s(limits)
    with ParserPool(jobs=1, limits=limits):
        (pid,) = worker_pids(MODULE)
        seen = _limits_of(pid)
    assert seen["Max file size"] == ("0", "0")
    assert seen["Max core file size"] == ("0", "0")
    assert seen["Max processes"] == ("0", "0")
    assert seen["Max address space"] == (str(512 << 20),) * 2
    soft, hard = (int(v) for v in seen["Max cpu time"])
    # Start-up used a few tenths of a CPU second: the first letter may use one budget beyond that.
    assert budget <= soft <= budget + 2, seen["Max cpu time"]
    assert abs(hard - soft - (CPU_CAP_BUDGETS - 1) * budget) <= 1, seen["Max cpu time"]


def test_worker_cannot_write_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "dropped.bin"
    case, pdf = _letter("write")
    with _probe_pool(monkeypatch) as pool:
        wrote, parsed = pool.imap([("write", command("write", path=str(target))), ("a.pdf", pdf)])
    answer = json.loads(wrote.message)
    assert (answer["written"], answer.get("errno")) == (False, "EFBIG"), answer
    assert not target.exists() or target.stat().st_size == 0
    # The same worker goes on parsing (pdfminer writes nothing): the limit costs letters nothing.
    assert parsed.ok and parsed.letter.case_number == case, (parsed.error_code, parsed.message)


def _wait_until(predicate, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_worker_over_its_cpu_time_is_killed_while_nobody_watches() -> None:
    limits = Limits(timeout_s=1)
    budget = cpu_budget_s(limits)
    case, pdf = _letter("cpu")
    with ParserPool(jobs=2, limits=limits) as pool:
        results = pool.imap([("a.pdf", pdf), ("slow.pdf", SLOW)])
        started = time.monotonic()
        a = next(results)
        # While this consumer holds a's result, the pool is suspended and checks no deadline: the
        # other worker, on slow.pdf (~10 s of CPU), must be stopped by its own CPU limit.
        stopped = _wait_until(lambda: len(worker_pids(MODULE)) == 1, 60)
        waited, survivors = time.monotonic() - started, worker_pids(MODULE)
        slow = next(results)
        after = worker_pids(MODULE)
    assert a.ok and a.letter.case_number == case
    assert stopped, "the worker on slow.pdf was still running after 60 s: no CPU limit stopped it"
    assert waited >= budget  # it had its whole budget first
    assert (slow.source, slow.letter, slow.error_code) == ("slow.pdf", None, "timeout")
    assert f"{budget} s of CPU time" in slow.message, slow.message
    assert survivors < after and len(after) == 2, "no fresh worker took the killed one's place"


def test_long_lived_worker_outlives_its_cpu_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Letters of 0.1 CPU s each, until the first worker retires: ~5 CPU s, several budgets."""
    limits = Limits(timeout_s=1)
    budget = cpu_budget_s(limits)
    answers: list[dict] = []
    with _probe_pool(monkeypatch, limits=limits) as pool:
        (first,) = worker_pids(MODULE)

        def letters():
            for i in range(400):
                if answers and answers[-1]["pid"] != first:
                    return
                yield f"spin-{i}.pdf", command("spin", cpu_s=0.1)

        results = []
        for result in pool.imap(letters()):
            results.append(result)
            answers.append(json.loads(result.message) if result.error_code is None else {"pid": None})
        after = worker_pids(MODULE)
    assert [r.error_code for r in results if r.error_code] == [], results[-1].message
    mine = [a for a in answers if a["pid"] == first]
    assert len(mine) < len(results), "the first worker was never replaced"
    assert first not in after and len(after) == 1
    hard = mine[0]["rlimit_cpu"][1]
    assert all(a["rlimit_cpu"][1] == hard for a in mine)  # the hard limit never moves
    assert mine[-1]["cpu_used"] > 2 * budget  # it used more than two letters' budgets, unharmed
    assert mine[-1]["cpu_used"] + budget > hard - 2  # and retired when one more might not fit
    for before, answer in itertools.pairwise(mine):  # each letter: a budget over what was used
        floor = math.ceil(before["cpu_used"]) + budget
        assert floor <= answer["rlimit_cpu"][0] <= floor + 1, (before, answer)


@pytest.mark.parametrize(
    ("sitecustomize", "expected"),
    [("import time\ntime.sleep(600)\n", "not ready within 2 s"), ("import os\nos._exit(3)\n", "exit code 3")],
    ids=["hangs", "exits"],
)
def test_worker_that_never_becomes_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sitecustomize: str, expected: str
) -> None:
    """The worker's interpreter runs a sitecustomize found on PYTHONPATH before the worker loop:
    one that blocks stands for a hung start (an import from a stuck file system), one that exits for
    a broken installation."""
    (tmp_path / "sitecustomize.py").write_text(sitecustomize)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    outcome: dict[str, object] = {}

    def start() -> None:
        try:
            with ParserPool(jobs=2, ready_timeout_s=2):
                outcome["started"] = True
        except Exception as exc:
            outcome["error"] = exc

    began = time.monotonic()
    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    starter.join(30)
    hung, elapsed, left = starter.is_alive(), time.monotonic() - began, worker_pids(MODULE)
    for pid in left:  # unblock a pool that would wait for ever
        os.kill(pid, signal.SIGKILL)
    starter.join(5)
    assert not hung, "the pool waited for its workers without end"
    error = outcome.get("error")
    assert isinstance(error, WorkerStartError), outcome
    assert expected in str(error), str(error)
    assert elapsed < 15
    assert not left, "a worker that never got ready was left running"
