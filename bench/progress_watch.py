"""A progress line while a benchmark's DAG run goes: a daemon thread that prints, every few seconds,
one line per active run of the warehouse (imr.console.format_progress_line: done/total, the
states, letters/s over the last `window_s` seconds, ETA), read from the warehouse the run loads.

    from progress_watch import progress_lines      # bench/, beside the benchmark

    with progress_lines(dsn):                      # every 5 s, all active runs, to stdout
        run = run_dag(...)
    with progress_lines(dsn, run_id=run_id, every_s=10):   # one run only (a shared warehouse)
        wait_for(run_id)

    watch = ProgressLines(dsn).start()             # or without a `with` block
    ...
    watch.stop()

The lines never stop the benchmark: an unreadable warehouse prints one "progress: ..." line per
outage and the thread tries again.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import psycopg2

from imr.console import poll_progress


class ProgressLines:
    """The polling thread; start() and stop(), or use it as a context manager."""

    def __init__(
        self,
        dsn: str,
        *,
        every_s: float = 5.0,
        window_s: float = 30.0,
        run_id: str | None = None,
        out: TextIO | None = None,
        prefix: str = "  [progress] ",
    ) -> None:
        self.dsn, self.every_s, self.window_s, self.run_id = dsn, every_s, window_s, run_id
        self.out, self.prefix = out, prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imr-progress", daemon=True)

    def _emit(self, line: str) -> None:
        print(self.prefix + line, file=self.out or sys.stdout, flush=True)

    def _run(self) -> None:
        poll_progress(
            lambda: psycopg2.connect(self.dsn, connect_timeout=5),
            self._emit,
            self._stop,
            every_s=self.every_s,
            window_s=self.window_s,
            run_id=self.run_id,
        )

    def start(self) -> ProgressLines:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> ProgressLines:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def progress_lines(
    dsn: str,
    *,
    every_s: float = 5.0,
    window_s: float = 30.0,
    run_id: str | None = None,
    out: TextIO | None = None,
) -> ProgressLines:
    """A ProgressLines to use in a `with` block (see the module's docstring)."""
    return ProgressLines(dsn, every_s=every_s, window_s=window_s, run_id=run_id, out=out)
