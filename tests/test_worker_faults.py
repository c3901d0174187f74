"""The worker pool's death and out-of-memory paths, with real faults (imr.parse.workers).

* A worker killed by a signal while it parses a letter: that letter gets a classified error, the pool
  starts a new worker, the rest of the batch is parsed. The signal is sent to the worker process
  itself, found as this process's child running `imr.parse.workers`.
* A worker over its address-space cap (RLIMIT_AS): a one-page PDF whose content stream is a Flate
  bomb (a few hundred kB that inflate to 256 MB) makes pdfminer's inflate fail with MemoryError in
  the worker; the letter is `too_large` (memory) and the pool goes on.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

import imr_synth
from imr.parse.limits import Limits
from imr.parse.workers import ParserPool
from support.minipdf import one_page_pdf
from support.procs import worker_pids

# Slow for pdfminer (tens of seconds on a shared core): long enough to be killed in the middle of it.
SLOW = imr_synth.bad_files()["timeout"]
KILL_AFTER_S = 1.5


def _letter(seed: str) -> tuple[str, bytes]:
    truth, pdf = imr_synth.random_letter(random.Random(seed), n_items=2)
    return truth.case_number, pdf


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.parametrize(
    ("sig", "code", "message"),
    [
        # SIGKILL is what the kernel's OOM killer sends: classified as memory.
        (signal.SIGKILL, "too_large", "out of memory"),
        (signal.SIGTERM, "internal_error", f"exit code -{signal.SIGTERM.value}"),
        (signal.SIGSEGV, "internal_error", f"exit code -{signal.SIGSEGV.value}"),
    ],
    ids=["SIGKILL", "SIGTERM", "SIGSEGV"],
)
def test_worker_killed_mid_letter(sig: signal.Signals, code: str, message: str) -> None:
    (case_a, pdf_a), (case_b, pdf_b) = _letter("death-a"), _letter("death-b")
    docs = [("a.pdf", pdf_a), ("slow.pdf", SLOW), ("b.pdf", pdf_b)]
    killed: list[tuple[int, float]] = []

    def kill_the_busy_worker() -> None:
        (pid,) = worker_pids()
        before = _cpu_seconds(pid)
        time.sleep(KILL_AFTER_S)
        killed.append((pid, _cpu_seconds(pid) - before))  # CPU spent on slow.pdf: it was parsing
        os.kill(pid, sig)

    with ParserPool(jobs=1, limits=Limits(timeout_s=120)) as pool:
        (first_worker,) = worker_pids()
        results = pool.imap(docs)
        a = next(results)  # the worker is idle again; the next next() hands it slow.pdf
        killer = threading.Timer(0.2, kill_the_busy_worker)
        killer.start()
        slow = next(results)
        killer.join()
        b = next(results)
        workers_after = worker_pids()

    assert a.ok and a.letter.case_number == case_a
    ((pid, cpu),) = killed
    assert pid == first_worker and cpu > 0.1, "the worker was not busy parsing when it was killed"
    assert (slow.source, slow.letter, slow.error_code) == ("slow.pdf", None, code)
    assert message in slow.message, slow.message
    assert KILL_AFTER_S <= slow.seconds < 60  # reported on the death, not at the 120 s deadline
    assert b.ok and b.letter.case_number == case_b, (b.error_code, b.message)
    assert len(workers_after) == 1 and first_worker not in workers_after, "no fresh worker was started"


def _flate_bomb(inflated_mb: int) -> bytes:
    """A page whose content stream inflates to `inflated_mb` MB (spaces: a valid, empty drawing)."""
    chunk = b" " * (1 << 20)
    return one_page_pdf((chunk for _ in range(inflated_mb)), flate=True)


def test_worker_over_its_memory_cap() -> None:
    cap_mb = 128  # a worker needs ~55 MB of address space; a real letter parses well within this
    bomb = _flate_bomb(256)
    assert len(bomb) < 2 * 1024 * 1024  # small on disk: the byte limit does not stop it
    (case_a, pdf_a), (case_b, pdf_b) = _letter("oom-a"), _letter("oom-b")
    docs = [("a.pdf", pdf_a), ("bomb.pdf", bomb), ("b.pdf", pdf_b)]
    with ParserPool(jobs=1, limits=Limits(memory_mb=cap_mb, timeout_s=120)) as pool:
        (worker,) = worker_pids()
        results = list(pool.imap(docs))
        workers_after = worker_pids()
    a, bombed, b = results
    assert a.ok and a.letter.case_number == case_a
    assert (bombed.source, bombed.letter, bombed.error_code) == ("bomb.pdf", None, "too_large")
    assert "memory" in bombed.message and f"{cap_mb} MB" in bombed.message, bombed.message
    assert bombed.sha256  # read and hashed before parsing ran out of memory
    assert b.ok and b.letter.case_number == case_b, (b.error_code, b.message)
    # MemoryError is caught inside the worker: it survives and parses the next letter.
    assert workers_after == {worker}


def test_the_bomb_is_harmless_without_a_cap() -> None:
    """The memory cap, not something else about the file, is what rejects the bomb: with room to
    inflate it, the same page parses as an empty page (no text layer)."""
    bomb = _flate_bomb(64)
    with ParserPool(jobs=1, limits=Limits(memory_mb=1024, timeout_s=120)) as pool:
        (result,) = pool.imap([("bomb.pdf", bomb)])
    assert result.error_code == "no_text_layer", (result.error_code, result.message)
