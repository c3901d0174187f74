"""Parsing letters in killable worker processes: `ParserPool` / `parse_many` (one `ParseResult`
per document) and `parse_document`, what a worker does with one document.

pdfminer.six can loop for minutes or allocate without bound on a malformed file, and no in-process
check can interrupt a C-level or tight Python loop reliably. So each letter is parsed in a long-lived
worker process; the parent enforces a wall-clock deadline per letter, kills a worker that overruns
and starts a fresh one. One bad file costs one worker, never the batch. A worker starts without the
task's credentials and within resource limits (imr.sandbox).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .errors import LetterError
from .letter_parser import parse_pdf
from .limits import DEFAULT_LIMITS, Limits
from .records import Letter
from .sandbox import confine, cpu_budget_s, worker_env

Document = tuple[str, bytes | Path]
Outcome = tuple[str | None, Letter | None, str | None, str | None]
# So a worker interpreter finds this package however the parent found it (installed, PYTHONPATH).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
# A worker starts in ~0.3 s; a minute covers a machine under load, and beats hanging forever on an
# interpreter that never gets going (a blocked import, a stopped process).
READY_TIMEOUT_S = 60.0


class WorkerStartError(RuntimeError):
    """A parser worker did not become ready (it hung or exited while starting): a fault of the
    machine or the installation, not of any letter, so no letter is classified by it."""


@dataclass
class ParseResult:
    source: str
    sha256: str | None
    letter: Letter | None
    error_code: str | None = None
    message: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.letter is not None


def _read(payload: bytes | Path, limits: Limits) -> bytes:
    if isinstance(payload, bytes):
        return payload
    size = os.stat(payload).st_size
    if size > limits.max_bytes:
        raise LetterError("too_large", f"{size} bytes exceeds the {limits.max_bytes}-byte limit")
    return Path(payload).read_bytes()


def parse_document(payload: bytes | Path, limits: Limits) -> Outcome:
    """(sha256, letter, error_code, message) for one document, in this process."""
    sha = None
    try:
        data = _read(payload, limits)
        sha = hashlib.sha256(data).hexdigest()
        return sha, parse_pdf(data, limits), None, None
    except LetterError as exc:
        return sha, None, exc.code, exc.message
    except MemoryError:
        return sha, None, "too_large", f"parsing exceeded the {limits.memory_mb} MB memory limit"
    except RecursionError:
        return sha, None, "pdf_error", "the PDF's object structure nests too deeply"
    except OSError as exc:
        return sha, None, "pdf_error", f"could not read the file ({exc.strerror or type(exc).__name__})"
    except Exception as exc:
        return sha, None, "internal_error", f"unexpected {type(exc).__name__} in the parser"


def _serve(limits: Limits, handle: Callable[[bytes | Path, Limits], Outcome] = parse_document) -> None:
    """Worker loop (`python -m imr.workers LIMITS_JSON`): requests on stdin, results on stdout.

    :param limits: the per-letter limits.
    :param handle: what is done with one document; tests pass their own through a module of theirs
        (`ParserPool(_worker_module=...)`), production never does.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    reader, writer = Connection(os.dup(0)), Connection(os.dup(1))
    os.dup2(2, 1)  # stray prints must not corrupt the result stream
    cpu = confine(limits)
    writer.send("ready")
    while True:
        try:
            msg = reader.recv()
        except EOFError:
            return
        if msg is None:
            return
        idx, payload = msg
        start = time.perf_counter()
        cpu.arm()
        sha, letter, code, message = handle(payload, limits)
        writer.send((idx, sha, letter, code, message, time.perf_counter() - start, cpu.exhausted()))


@dataclass
class _Worker:
    process: subprocess.Popen
    reader: Connection
    writer: Connection
    task: tuple[int, str] | None = None
    deadline: float = 0.0
    started: float = 0.0


class ParserPool:
    """`jobs` worker processes; `imap` yields one ParseResult per document, in input order.

    :param jobs: how many workers parse at the same time.
    :param limits: the per-letter limits.
    :param ready_timeout_s: how long a starting worker may take to report ready before the pool
        kills it and raises `WorkerStartError`.
    :param _worker_module: the module a worker runs (`python -m`); for tests only, which run their
        own document handler inside the real worker loop and sandbox.
    """

    def __init__(
        self,
        jobs: int = 1,
        limits: Limits = DEFAULT_LIMITS,
        *,
        ready_timeout_s: float = READY_TIMEOUT_S,
        _worker_module: str = "imr.workers",
    ) -> None:
        self.jobs = max(1, jobs)
        self.limits = limits
        self.ready_timeout_s = ready_timeout_s
        self._worker_module = _worker_module
        self._workers: list[_Worker] = []

    def __enter__(self) -> ParserPool:
        deadline = time.monotonic() + self.ready_timeout_s  # they start side by side: one deadline
        try:
            for _ in range(self.jobs):
                self._workers.append(self._spawn())
            for w in self._workers:
                self._await_ready(w, deadline)
        except BaseException:
            for w in self._workers:
                self._discard(w)
            self._workers = []
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        # A fresh interpreter rather than multiprocessing's fork/forkserver: under Airflow the parent
        # may hold threads (fork is unsafe) and multiprocessing children re-import the parent's
        # __main__ (Airflow's CLI: seconds per worker), which would eat the per-letter deadline.
        # The environment is allowlisted: a worker holding the task's secrets would hand them to any
        # PDF that exploits the parser.
        proc = subprocess.Popen(
            [sys.executable, "-m", self._worker_module, json.dumps(asdict(self.limits))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=worker_env(os.environ, _PACKAGE_ROOT),
            close_fds=True,
        )
        reader = Connection(os.dup(proc.stdout.fileno()), writable=False)
        writer = Connection(os.dup(proc.stdin.fileno()), readable=False)
        proc.stdout.close()
        proc.stdin.close()
        return _Worker(proc, reader, writer)

    def _await_ready(self, w: _Worker, deadline: float) -> None:
        """Wait until `deadline` (monotonic) for `w` to report ready; otherwise kill it and raise
        WorkerStartError."""
        hung = not w.reader.poll(max(0.0, deadline - time.monotonic()))
        if not hung:
            with contextlib.suppress(EOFError, OSError):
                if w.reader.recv() == "ready":
                    return
        self._discard(w)
        if hung:
            raise WorkerStartError(f"a parser worker was not ready within {self.ready_timeout_s:g} s; killed")
        raise WorkerStartError(f"a parser worker exited while starting (exit code {w.process.returncode})")

    @staticmethod
    def _discard(w: _Worker) -> None:
        if w.process.poll() is None:
            w.process.kill()
        w.process.wait()
        w.reader.close()
        w.writer.close()

    def close(self) -> None:
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.writer.send(None)
        for w in self._workers:
            try:
                w.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
            w.reader.close()
            w.writer.close()
        self._workers = []

    def _replace(self, w: _Worker, *, retire: bool = False) -> None:
        """Start a fresh worker in place of `w`: killed, or (`retire`) asked to exit first, for a
        healthy worker whose CPU allowance is used up."""
        if retire:
            with contextlib.suppress(OSError):
                w.writer.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.process.wait(timeout=2)
        self._discard(w)
        fresh = self._spawn()
        self._workers[self._workers.index(w)] = fresh
        self._await_ready(fresh, time.monotonic() + self.ready_timeout_s)

    def imap(self, documents: Iterable[Document]) -> Iterator[ParseResult]:
        if not self._workers:
            raise RuntimeError("ParserPool used outside its `with` block")
        todo = enumerate(documents)
        done: dict[int, ParseResult] = {}
        next_out = 0
        exhausted = False
        while True:
            for w in self._workers:
                if w.task is None and not exhausted:
                    nxt = next(todo, None)
                    if nxt is None:
                        exhausted = True
                        break
                    idx, (source, payload) = nxt
                    w.task, w.started = (idx, source), time.monotonic()
                    w.deadline = w.started + self.limits.timeout_s
                    w.writer.send((idx, payload))
            busy = [w for w in self._workers if w.task is not None]
            if not busy:
                break
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = set(wait([w.reader for w in busy], timeout=timeout))
            now = time.monotonic()
            for w in busy:
                result = self._collect(w, w.reader in ready, now)
                if result is not None:
                    done[w.task[0]] = result
                    w.task = None
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    def _collect(self, w: _Worker, readable: bool, now: float) -> ParseResult | None:
        """The busy worker `w`'s result, if it has one or has failed (then it is replaced)."""
        source = w.task[1]
        if readable:
            try:
                _, sha, letter, code, message, secs, retire = w.reader.recv()
            except (EOFError, OSError):
                code, message = self._death_reason(w)
            else:
                if retire:
                    self._replace(w, retire=True)
                return ParseResult(source, sha, letter, code, message, secs)
        elif now >= w.deadline:
            code, message = "timeout", f"no result within {self.limits.timeout_s:g} s; worker killed"
        else:
            return None
        self._replace(w)
        return ParseResult(source, None, None, code, message, now - w.started)

    def _death_reason(self, w: _Worker) -> tuple[str, str]:
        try:
            rc = w.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            rc = None
        if rc == -signal.SIGKILL:
            return "too_large", "the worker was killed while parsing (out of memory?)"
        if rc == -signal.SIGXCPU:
            budget = cpu_budget_s(self.limits)
            return "timeout", f"the parser used up its {budget} s of CPU time; the worker was killed"
        return "internal_error", f"the parser process died (exit code {rc})"


def parse_many(
    documents: Iterable[Document], *, jobs: int = 1, limits: Limits = DEFAULT_LIMITS
) -> Iterator[ParseResult]:
    with ParserPool(jobs, limits) as pool:
        yield from pool.imap(documents)


if __name__ == "__main__":
    _serve(Limits(**json.loads(sys.argv[1])))
