"""Parsing letters in killable worker processes: `ParserPool` / `parse_many` (one `ParseResult`
per document) and `parse_document`, what a worker does with one document.

A worker runs the function `READ_LETTER` names on each document: by default `imr.letter.from_pdf`,
the parse, enrich and validate stages of one letter. It is named, not imported, so this stage's
code depends on no later stage; the worker interpreter imports it.

pdfminer.six can loop for minutes or allocate without bound on a malformed file, and no in-process
check can interrupt a C-level or tight Python loop reliably. So each letter is parsed in a long-lived
worker process with an address-space limit; the parent enforces a wall-clock deadline per letter,
kills a worker that overruns and starts a fresh one. One bad file costs one worker, never the batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from ..errors import LetterError
from ..records import Letter
from .limits import DEFAULT_LIMITS, Limits

Document = tuple[str, bytes | Path]
# "module:function" taking (bytes, Limits) and returning a Letter or raising LetterError.
READ_LETTER = "imr.letter:from_pdf"
# So a worker interpreter finds this package however the parent found it (installed, PYTHONPATH).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


@dataclass
class ParseResult:
    """One document's outcome: its source, digest, record or error code and message, and time."""

    source: str
    sha256: str | None
    letter: Letter | None
    error_code: str | None = None
    message: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether a record was read."""
        return self.letter is not None


def _read(payload: bytes | Path, limits: Limits) -> bytes:
    if isinstance(payload, bytes):
        return payload
    size = os.stat(payload).st_size
    if size > limits.max_bytes:
        raise LetterError("too_large", f"{size} bytes exceeds the {limits.max_bytes}-byte limit")
    return Path(payload).read_bytes()


def letter_reader(name: str = READ_LETTER) -> Callable[[bytes, Limits], Letter]:
    """The function a "module:function" name refers to.

    :param name: e.g. ``"imr.letter:from_pdf"``.
    :return: the function.
    """
    module, _, func = name.partition(":")
    return getattr(importlib.import_module(module), func)


def parse_document(
    payload: bytes | Path, limits: Limits, read: Callable[[bytes, Limits], Letter] | None = None
) -> tuple[str | None, Letter | None, str | None, str | None]:
    """(sha256, letter, error_code, message) for one document, in this process.

    :param payload: the document's bytes or a path to them.
    :param limits: the bounds it is read within.
    :param read: what turns the bytes into a record (default: `READ_LETTER`).
    :return: the digest (None when unread), the letter or None, the rejection code and message.
    """
    sha = None
    read = read or letter_reader()
    try:
        data = _read(payload, limits)
        sha = hashlib.sha256(data).hexdigest()
        return sha, read(data, limits), None, None
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


def _serve(limits: Limits) -> None:
    """Worker loop (`python -m imr.parse.workers LIMITS_JSON`): requests on stdin, results on stdout."""
    read = letter_reader()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    reader, writer = Connection(os.dup(0)), Connection(os.dup(1))
    os.dup2(2, 1)  # stray prints must not corrupt the result stream
    if limits.memory_mb:
        cap = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
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
        sha, letter, code, message = parse_document(payload, limits, read)
        writer.send((idx, sha, letter, code, message, time.perf_counter() - start))


@dataclass
class _Worker:
    process: subprocess.Popen
    reader: Connection
    writer: Connection
    task: tuple[int, str] | None = None
    deadline: float = 0.0
    started: float = 0.0


class ParserPool:
    """`jobs` worker processes; `imap` yields one ParseResult per document, in input order."""

    def __init__(self, jobs: int = 1, limits: Limits = DEFAULT_LIMITS) -> None:
        self.jobs = max(1, jobs)
        self.limits = limits
        self._workers: list[_Worker] = []

    def __enter__(self) -> ParserPool:
        self._workers = [self._spawn() for _ in range(self.jobs)]
        for w in self._workers:
            self._await_ready(w)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        # A fresh interpreter rather than multiprocessing's fork/forkserver: under Airflow the parent
        # may hold threads (fork is unsafe) and multiprocessing children re-import the parent's
        # __main__ (Airflow's CLI: seconds per worker), which would eat the per-letter deadline.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        proc = subprocess.Popen(
            [sys.executable, "-m", "imr.parse.workers", json.dumps(asdict(self.limits))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        reader = Connection(os.dup(proc.stdout.fileno()), writable=False)
        writer = Connection(os.dup(proc.stdin.fileno()), readable=False)
        proc.stdout.close()
        proc.stdin.close()
        return _Worker(proc, reader, writer)

    @staticmethod
    def _await_ready(w: _Worker) -> None:
        if w.reader.recv() != "ready":
            raise RuntimeError("parser worker failed to start")

    def close(self) -> None:
        """Stop the workers (asked first, killed after 2 s)."""
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

    def _replace(self, w: _Worker) -> None:
        if w.process.poll() is None:
            w.process.kill()
        w.process.wait()
        w.reader.close()
        w.writer.close()
        fresh = self._spawn()
        self._await_ready(fresh)
        self._workers[self._workers.index(w)] = fresh

    def imap(self, documents: Iterable[Document]) -> Iterator[ParseResult]:
        """One `ParseResult` per document, in input order.

        :param documents: (source, bytes or path) pairs.
        :return: an iterator of results.
        """
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
                idx, source = w.task
                if w.reader in ready:
                    try:
                        _, sha, letter, code, message, secs = w.reader.recv()
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
        try:
            rc = w.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            rc = None
        if rc == -signal.SIGKILL:
            return "too_large", "the worker was killed while parsing (out of memory?)"
        return "internal_error", f"the parser process died (exit code {rc})"


def parse_many(
    documents: Iterable[Document], *, jobs: int = 1, limits: Limits = DEFAULT_LIMITS
) -> Iterator[ParseResult]:
    """Parse documents in a pool of `jobs` worker processes.

    :param documents: (source, bytes or path) pairs.
    :param jobs: worker processes.
    :param limits: the per-letter bounds.
    :return: an iterator of results, in input order.
    """
    with ParserPool(jobs, limits) as pool:
        yield from pool.imap(documents)


if __name__ == "__main__":
    _serve(Limits(**json.loads(sys.argv[1])))
