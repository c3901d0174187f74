"""Progress of the runs that are ingesting now: what the monitor's "Runs in progress" section, its
GET /api/progress and the benchmarks' progress line (imr.console) show. Plain SQL on an open
psycopg2 connection, no Airflow here.

A run's work is the keys its plan claimed into imr.batches. Everything is counted from those batch
rows (one per `batch_size` keys: about 8,500 for the whole 1.7-million-letter archive), never from the
manifest's rows, so a poll every few seconds stays cheap during an archive backfill. The batch columns
mirror the manifest (migration 0007): a batch's keys are `processing` from the claim until the load
transaction that finishes the batch, which also records how many became loaded, quarantined and
duplicate; a key in none of these went back to `pending` (its object changed in S3 meanwhile).

A run is *active* while it still holds unfinished work: it has an unfinished batch whose keys are
still `processing` under its name. A run that ended early handed its keys back (release_claims)
and leaves its unfinished batches behind; it is not active, and the next run takes those keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from imr.warehouse.db import transaction

DEFAULT_WINDOW_S = 300.0

_PROGRESS_SQL = """
WITH clock AS (
    SELECT coalesce(%(now)s::timestamptz, now()) AS now
), candidates AS (
    SELECT DISTINCT run_id FROM imr.batches
    WHERE finished_at IS NULL AND (%(run_id)s::text IS NULL OR run_id = %(run_id)s::text)
), active AS (
    -- A batch's keys are claimed, loaded and handed back together, so the first key of a run's first
    -- unfinished batch tells whether the run still holds its work: one primary-key probe per run.
    SELECT c.run_id FROM candidates c
    CROSS JOIN LATERAL (
        SELECT b.bucket, b.keys[1] AS key FROM imr.batches b
        WHERE b.run_id = c.run_id AND b.finished_at IS NULL
        ORDER BY b.batch_id LIMIT 1
    ) f
    WHERE EXISTS (
        SELECT 1 FROM imr.s3_objects o
        WHERE o.bucket = f.bucket AND o.key = f.key AND o.status = 'processing' AND o.claimed_by = c.run_id
    )
)
SELECT b.run_id,
       min(b.created_at),
       clock.now,
       count(*),
       count(b.finished_at),
       count(*) FILTER (WHERE b.finished_at IS NULL AND b.lease_expires_at >= clock.now),
       sum(b.n_keys),
       coalesce(sum(b.n_keys) FILTER (WHERE b.finished_at IS NULL), 0),
       coalesce(sum(b.n_keys) FILTER (WHERE b.finished_at IS NULL AND b.lease_expires_at >= clock.now), 0),
       coalesce(sum(b.loaded), 0),
       coalesce(sum(b.quarantined), 0),
       coalesce(sum(b.duplicate), 0),
       coalesce(sum(b.n_keys - b.loaded - b.quarantined - b.duplicate), 0),
       coalesce(sum(b.n_keys) FILTER (
           WHERE b.finished_at > clock.now - %(window)s::interval AND b.finished_at <= clock.now), 0),
       max(b.finished_at)
FROM imr.batches b
JOIN active USING (run_id)
CROSS JOIN clock
GROUP BY b.run_id, clock.now
ORDER BY min(b.created_at), b.run_id
"""


@dataclass(frozen=True)
class RunProgress:
    """One active run. `counts` holds the five manifest states of the run's keys (they sum to
    `total`); `rate_per_s` is objects finished (loaded, quarantined or duplicate) per second over the
    last `window_s` seconds, or since the run started when that is shorter; `eta_s` is what remains
    (`processing`) at that rate, None while the rate is 0."""

    run_id: str
    started_at: datetime
    as_of: datetime
    total: int
    counts: dict[str, int]
    batches: dict[str, int]
    in_lanes: int
    window_s: float
    done_in_window: int
    rate_per_s: float
    eta_s: float | None
    last_finished_at: datetime | None

    @property
    def remaining(self) -> int:
        """Keys still processing."""
        return self.counts["processing"]

    @property
    def done(self) -> int:
        """Keys finished (loaded, quarantined, duplicate or back to pending)."""
        return self.total - self.remaining

    @property
    def fraction(self) -> float:
        """The done share of the run's keys, 0..1."""
        return self.done / self.total if self.total else 0.0

    @property
    def eta_at(self) -> datetime | None:
        """When the run should finish at the current rate, or None."""
        return self.as_of + timedelta(seconds=self.eta_s) if self.eta_s is not None else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (timestamps as ISO 8601)."""
        eta_at = self.eta_at
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "total": self.total,
            "counts": dict(self.counts),
            "done": self.done,
            "fraction": round(self.fraction, 4),
            "batches": dict(self.batches),
            "in_lanes": self.in_lanes,
            "window_s": round(self.window_s, 1),
            "done_in_window": self.done_in_window,
            "rate_per_s": round(self.rate_per_s, 4),
            "eta_s": round(self.eta_s, 1) if self.eta_s is not None else None,
            "eta_at": eta_at.isoformat() if eta_at else None,
            "last_finished_at": self.last_finished_at.isoformat() if self.last_finished_at else None,
        }


def _run_progress(row: tuple, window_s: float) -> RunProgress:
    (run_id, started, now, n_batches, n_finished, n_leased, total, processing, in_lanes, loaded,
     quarantined, duplicate, pending, done_in_window, last_finished) = row  # fmt: skip
    # Early in a run the window reaches back before its start: divide by the time it has run.
    window = max(0.0, min(window_s, (now - started).total_seconds()))
    rate = done_in_window / window if window > 0 else 0.0
    return RunProgress(
        run_id=run_id,
        started_at=started,
        as_of=now,
        total=int(total or 0),
        counts={
            "pending": int(pending),
            "processing": int(processing),
            "loaded": int(loaded),
            "quarantined": int(quarantined),
            "duplicate": int(duplicate),
        },
        batches={
            "total": n_batches,
            "finished": n_finished,
            "in_lanes": n_leased,
            "waiting": n_batches - n_finished - n_leased,
        },
        in_lanes=int(in_lanes),
        window_s=window,
        done_in_window=int(done_in_window),
        rate_per_s=rate,
        eta_s=processing / rate if rate > 0 else None,
        last_finished_at=last_finished,
    )


def active_runs_progress(
    conn, window_s: float = DEFAULT_WINDOW_S, *, run_id: str | None = None, now: datetime | None = None
) -> list[RunProgress]:
    """Every active run (or only `run_id`, if active), the earliest started first. `now` replaces
    the database's clock (tests); the rate is measured over the `window_s` seconds before it."""
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    params = {"now": now, "run_id": run_id, "window": timedelta(seconds=window_s)}
    with transaction(conn) as cur:
        cur.execute(_PROGRESS_SQL, params)
        rows = cur.fetchall()
    return [_run_progress(r, window_s) for r in rows]


# --------------------------------------------------------------------------- text


def format_duration(seconds: float | None) -> str:
    """A short human duration: "45 s", "12 min 05 s", "3 h 07 min"; "unknown" for None."""
    if seconds is None:
        return "unknown"
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_rate(rate_per_s: float) -> str:
    # Two decimals below 1/s, so a slow or stalling run does not read as 0.
    """A rate as text, e.g. "48.2 letters/s".

    :param rate_per_s: letters per second.
    :return: the text.
    """
    return f"{rate_per_s:,.2f} letters/s" if rate_per_s < 1 else f"{rate_per_s:,.1f} letters/s"
