"""Parsing in killable worker processes.

pdfminer.six can loop for minutes or allocate without bound on a malformed file, and no in-process
check can interrupt a C-level or tight Python loop reliably. So each letter is parsed in a long-lived
worker process with an address-space limit; the parent enforces a wall-clock deadline per letter,
kills a worker that overruns and starts a fresh one. One bad file costs one worker, never the batch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .errors import LetterError
from .parse import DEFAULT_LIMITS, Limits, parse_pdf
from .records import Letter

Document = tuple[str, bytes | Path]


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


def parse_document(
    payload: bytes | Path, limits: Limits
) -> tuple[str | None, Letter | None, str | None, str | None]:
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
    except Exception as exc:  # noqa: BLE001 - a parser bug must quarantine one letter, not stop a batch
        return sha, None, "internal_error", f"unexpected {type(exc).__name__} in the parser"


def _worker_main(conn: Connection, limits: Limits) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    if limits.memory_mb:
        cap = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        idx, payload = msg
        start = time.perf_counter()
        sha, letter, code, message = parse_document(payload, limits)
        conn.send((idx, sha, letter, code, message, time.perf_counter() - start))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    task: tuple[int, str] | None = None
    deadline: float = 0.0
    started: float = 0.0


class ParserPool:
    """`jobs` worker processes; `imap` yields one ParseResult per document, in input order."""

    def __init__(self, jobs: int = 1, limits: Limits = DEFAULT_LIMITS) -> None:
        self.jobs = max(1, jobs)
        self.limits = limits
        self._ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has the parser imported already: cheap restarts, and no
        # fork of a parent that may hold threads (Airflow's task runner, boto3's pools).
        self._ctx.set_forkserver_preload(["imr.workers"])
        self._workers: list[_Worker] = []

    def __enter__(self) -> ParserPool:
        self._workers = [self._spawn() for _ in range(self.jobs)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.limits), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def close(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self._workers:
            w.process.join(timeout=2)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._workers = []

    def _replace(self, w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join()
        w.conn.close()
        self._workers[self._workers.index(w)] = self._spawn()

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
                    w.conn.send((idx, payload))
            busy = [w for w in self._workers if w.task is not None]
            if not busy:
                break
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy], timeout=timeout))
            now = time.monotonic()
            for w in busy:
                idx, source = w.task
                if w.conn in ready:
                    try:
                        _, sha, letter, code, message, secs = w.conn.recv()
                        done[idx] = ParseResult(source, sha, letter, code, message, secs)
                        w.task = None
                        continue
                    except (EOFError, OSError):
                        code, message = self._death_reason(w)
                elif now >= w.deadline:
                    code, message = "timeout", f"no result within {self.limits.timeout_s:g} s; worker killed"
                else:
                    continue
                done[idx] = ParseResult(source, None, None, code, message, now - w.started)
                w.task = None
                self._replace(w)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    @staticmethod
    def _death_reason(w: _Worker) -> tuple[str, str]:
        w.process.join(timeout=1)
        rc = w.process.exitcode
        if rc == -signal.SIGKILL:
            return "too_large", "the worker was killed while parsing (out of memory?)"
        return "internal_error", f"the parser process died (exit code {rc})"


def parse_many(
    documents: Iterable[Document], *, jobs: int = 1, limits: Limits = DEFAULT_LIMITS
) -> Iterator[ParseResult]:
    with ParserPool(jobs, limits) as pool:
        yield from pool.imap(documents)
