"""Progress for a terminal: `format_progress_line` (one active run on one line),
`active_run_lines` and `poll_progress` (a polling loop for a thread, bench/progress_watch.py). The
figures come from the read stage (`imr.read.progress`); only their text is made here."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

from .read.progress import DEFAULT_WINDOW_S, RunProgress, active_runs_progress, format_duration, format_rate


def format_progress_line(p: RunProgress) -> str:
    """One line for a terminal, e.g.
    "run manual__x: 1,200/3,000 done (40.0%): loaded 1,150, quarantined 40, duplicate 10, pending 0;
    processing 1,800 (200 in lanes); 48.2 letters/s over 60 s; ETA 37 s"."""
    c = p.counts
    return (
        f"run {p.run_id}: {p.done:,}/{p.total:,} done ({p.fraction:.1%}): loaded {c['loaded']:,}, "
        f"quarantined {c['quarantined']:,}, duplicate {c['duplicate']:,}, pending {c['pending']:,}; "
        f"processing {c['processing']:,} ({p.in_lanes:,} in lanes); "
        f"{format_rate(p.rate_per_s)} over {p.window_s:.0f} s; ETA {format_duration(p.eta_s)}"
    )


def active_run_lines(conn, window_s: float = DEFAULT_WINDOW_S, run_id: str | None = None) -> list[str]:
    """format_progress_line for every active run (or `run_id`)."""
    return [format_progress_line(p) for p in active_runs_progress(conn, window_s, run_id=run_id)]


def poll_progress(
    connect: Callable[[], Any],
    emit: Callable[[str], None],
    stop: threading.Event,
    every_s: float = 5.0,
    window_s: float = 60.0,
    run_id: str | None = None,
) -> None:
    """Until `stop` is set: every `every_s` seconds, emit one progress line per active run (or
    `run_id`). The connection is opened by `connect` and re-opened after an error (the database
    may restart under a benchmark); an error is emitted once per outage, never raised."""
    failing = False
    while not stop.wait(every_s):
        try:
            with closing(connect()) as conn:
                conn.autocommit = True
                for line in _lines_until(conn, stop, every_s, window_s, run_id):
                    emit(line)
                    failing = False
        except Exception as exc:  # a progress line must never stop the benchmark it reports on
            if not failing:
                emit(f"progress: warehouse not readable ({type(exc).__name__}: {exc})")
            failing = True


def _lines_until(
    conn, stop: threading.Event, every_s: float, window_s: float, run_id: str | None
) -> Iterator[str]:
    """The lines of one connection's life: a poll now, then one every `every_s` until `stop`."""
    while True:
        yield from active_run_lines(conn, window_s, run_id)
        if stop.wait(every_s):
            return
