"""Read side of the failed-parse monitor (plugins/imr_monitor): the quarantine as the Airflow UI page
and its JSON API show it. Plain queries on an open psycopg2 connection, each in its own
transaction (imr.warehouse.db.transaction), no Airflow here; every filter is a bound parameter.

A *failure* is a row of imr.parse_failures (one per object, run and error code). The monitor lists
one row per object: the newest failure that matches the filters, with the object's whole history
(first and last seen, attempts) and its state, derived from the manifest:

* ``open``: the object is quarantined;
* ``queued``: it is pending or processing again (re-queued by imr_reprocess_failures, or changed in S3);
* ``resolved``: it loaded since (status loaded or duplicate; parse_failures.resolved_at is set).

A quarantined object without any parse_failures row (loaded before that table existed) still shows,
from the manifest alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from imr.errors import REJECTION_CODES
from imr.warehouse.db import transaction

STATES = ("open", "queued", "resolved")
# Filter values for `state`: one state, "active" (open or queued, the default) or "all".
STATE_FILTERS = {"active": ("open", "queued"), "all": None, **{s: (s,) for s in STATES}}
MAX_LIMIT = 5000
# Deeper pages cost a scan of every row before them; past this, narrow the filters instead.
MAX_OFFSET = 100_000
TREND_DAYS = 14
MAX_TREND_DAYS = 366


def parse_bound(value: str | None, *, end: bool = False) -> datetime | None:
    """A filter bound from the query string: ``YYYY-MM-DD`` (a whole UTC day: with end=True the
    bound is the start of the next day, so `until` includes the day) or an ISO 8601 timestamp
    (UTC when it has no offset). Empty means no bound; anything else raises ValueError."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) == 10:
        d = date.fromisoformat(value)
        return datetime.combine(d + timedelta(days=1) if end else d, time(), tzinfo=UTC)
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    """What the page and /api/failures filter on. since/until bound the failure's occurred_at
    (until exclusive); run_id matches the run the failure happened in."""

    error_code: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    run_id: str | None = None
    bucket: str | None = None
    state: str = "active"
    limit: int = 500
    offset: int = 0
    keys: Sequence[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.state not in STATE_FILTERS:
            raise ValueError(f"state must be one of {', '.join(STATE_FILTERS)}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise ValueError(f"offset must be between 0 and {MAX_OFFSET}")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")

    def params(self) -> dict[str, Any]:
        states = STATE_FILTERS[self.state]
        return {
            "error_code": self.error_code or None,
            "since": self.since,
            "until": self.until,
            "run_id": self.run_id or None,
            "bucket": self.bucket or None,
            "keys": list(self.keys) if self.keys else None,
            "states": list(states) if states is not None else None,
            "limit": self.limit,
            "offset": self.offset,
        }


# The failures matching the filters, one (the newest) per object, with its history and state.
_FAILURES_CTE = """
WITH events AS (
    SELECT p.id, p.bucket, p.key, p.etag, p.dag_run_id, p.task_id, p.map_index, p.error_code, p.message,
           p.occurred_at, p.resolved_at
    FROM imr.parse_failures p
    UNION ALL
    SELECT NULL, o.bucket, o.key, o.etag, o.last_run_id, NULL, NULL, o.error_code, o.error_message,
           o.updated_at, NULL
    FROM imr.s3_objects o
    WHERE o.status = 'quarantined'
      AND NOT EXISTS (SELECT 1 FROM imr.parse_failures p WHERE p.bucket = o.bucket AND p.key = o.key)
), matched AS (
    SELECT DISTINCT ON (e.bucket, e.key) e.*
    FROM events e
    WHERE (%(error_code)s::text IS NULL OR e.error_code = %(error_code)s::text)
      AND (%(run_id)s::text IS NULL OR e.dag_run_id = %(run_id)s::text)
      AND (%(since)s::timestamptz IS NULL OR e.occurred_at >= %(since)s::timestamptz)
      AND (%(until)s::timestamptz IS NULL OR e.occurred_at < %(until)s::timestamptz)
      AND (%(bucket)s::text IS NULL OR e.bucket = %(bucket)s::text)
      AND (%(keys)s::text[] IS NULL OR e.key = ANY(%(keys)s::text[]))
    ORDER BY e.bucket, e.key, e.occurred_at DESC, e.id DESC NULLS LAST
), history AS (
    SELECT e.bucket, e.key, min(e.occurred_at) AS first_seen, max(e.occurred_at) AS last_seen,
           count(*) AS failures
    FROM events e JOIN matched m USING (bucket, key)
    GROUP BY e.bucket, e.key
), listed AS (
    SELECT m.*, h.first_seen, h.last_seen, h.failures, o.status AS object_status,
           coalesce(o.attempts, 0) AS attempts,
           CASE WHEN o.status IN ('loaded', 'duplicate') THEN 'resolved'
                WHEN o.status IN ('pending', 'processing') THEN 'queued'
                WHEN o.status = 'quarantined' THEN 'open'
                WHEN m.resolved_at IS NOT NULL THEN 'resolved'
                ELSE 'open' END AS state
    FROM matched m
    JOIN history h USING (bucket, key)
    LEFT JOIN imr.s3_objects o USING (bucket, key)
)
"""

_FAILURE_COLUMNS = (
    "id",
    "bucket",
    "key",
    "etag",
    "run_id",
    "task_id",
    "map_index",
    "error_code",
    "message",
    "occurred_at",
    "resolved_at",
    "first_seen",
    "last_seen",
    "failures",
    "object_status",
    "attempts",
    "state",
)


def _row(values: Sequence) -> dict[str, Any]:
    return dict(zip(_FAILURE_COLUMNS, values, strict=True))


def list_failures(conn, filters: Filters) -> dict[str, Any]:
    """{"total": objects matching, "failures": one dict per object, the newest matching failure first}."""
    with transaction(conn) as cur:  # read only: ends the transaction, no snapshot held
        cur.execute(
            _FAILURES_CTE
            + """
            SELECT id, bucket, key, etag, dag_run_id, task_id, map_index, error_code, message, occurred_at,
                   resolved_at, first_seen, last_seen, failures, object_status, attempts, state,
                   count(*) OVER () AS total
            FROM listed
            WHERE %(states)s::text[] IS NULL OR state = ANY(%(states)s::text[])
            ORDER BY occurred_at DESC, bucket, key
            LIMIT %(limit)s OFFSET %(offset)s
            """,
            filters.params(),
        )
        rows = cur.fetchall()
    total = rows[0][-1] if rows else 0
    if not rows and filters.offset:
        total = count_failures(conn, filters)
    return {"total": total, "failures": [_row(r[:-1]) for r in rows]}


def count_failures(conn, filters: Filters) -> int:
    with transaction(conn) as cur:
        cur.execute(
            _FAILURES_CTE + "SELECT count(*) FROM listed"
            " WHERE %(states)s::text[] IS NULL OR state = ANY(%(states)s::text[])",
            filters.params(),
        )
        return cur.fetchone()[0]


def counts_by_error_code(conn, filters: Filters) -> list[dict[str, Any]]:
    """Objects matching the filters (limit and offset aside) per error code and state, the most
    frequent code first: [{"error_code", "count", "open", "queued", "resolved"}]."""
    with transaction(conn) as cur:
        cur.execute(
            _FAILURES_CTE
            + """
            SELECT error_code, count(*),
                   count(*) FILTER (WHERE state = 'open'),
                   count(*) FILTER (WHERE state = 'queued'),
                   count(*) FILTER (WHERE state = 'resolved')
            FROM listed
            WHERE %(states)s::text[] IS NULL OR state = ANY(%(states)s::text[])
            GROUP BY error_code
            ORDER BY count(*) DESC, error_code
            """,
            filters.params(),
        )
        rows = cur.fetchall()
    return [{"error_code": r[0], "count": r[1], "open": r[2], "queued": r[3], "resolved": r[4]} for r in rows]


def trend_window(
    since: datetime | None, until: datetime | None, today: date | None = None
) -> tuple[date, date]:
    """The days (first, last inclusive; UTC) a trend covers: the filter's range, else the last
    TREND_DAYS days; at most MAX_TREND_DAYS days (the newest ones)."""
    today = today or datetime.now(UTC).date()
    last = (until - timedelta(microseconds=1)).astimezone(UTC).date() if until else today
    first = since.astimezone(UTC).date() if since else last - timedelta(days=TREND_DAYS - 1)
    first = min(first, last)
    if (last - first).days >= MAX_TREND_DAYS:
        first = last - timedelta(days=MAX_TREND_DAYS - 1)
    return first, last


def daily_trend(conn, first: date, last: date) -> list[dict[str, Any]]:
    """Per UTC day from `first` to `last`: objects loaded that day (manifest status loaded, by the
    time the status was set) and objects that failed to parse that day (distinct keys in
    parse_failures). [{"day": "YYYY-MM-DD", "loaded", "quarantined"}], every day present."""
    with transaction(conn) as cur:
        cur.execute(
            """
            WITH days AS (
                SELECT d::date AS day FROM generate_series(%(first)s::date, %(last)s::date, '1 day') d
            ), loaded AS (
                SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                FROM imr.s3_objects
                WHERE status = 'loaded'
                  AND updated_at >= %(first)s::date AT TIME ZONE 'UTC'
                  AND updated_at < (%(last)s::date + 1) AT TIME ZONE 'UTC'
                GROUP BY 1
            ), failed AS (
                SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(DISTINCT (bucket, key)) AS n
                FROM imr.parse_failures
                WHERE occurred_at >= %(first)s::date AT TIME ZONE 'UTC'
                  AND occurred_at < (%(last)s::date + 1) AT TIME ZONE 'UTC'
                GROUP BY 1
            )
            SELECT days.day, coalesce(loaded.n, 0), coalesce(failed.n, 0)
            FROM days LEFT JOIN loaded USING (day) LEFT JOIN failed USING (day)
            ORDER BY days.day
            """,
            {"first": first, "last": last},
        )
        rows = cur.fetchall()
    return [{"day": r[0].isoformat(), "loaded": r[1], "quarantined": r[2]} for r in rows]


def error_codes(conn) -> list[str]:
    """Every known rejection code plus any other code the warehouse holds, sorted."""
    with transaction(conn) as cur:
        cur.execute(
            "SELECT DISTINCT error_code FROM imr.parse_failures"
            " UNION SELECT DISTINCT error_code FROM imr.s3_objects WHERE error_code IS NOT NULL"
        )
        found = {r[0] for r in cur.fetchall()}
    return sorted(found | set(REJECTION_CODES))


def recent_runs(conn, limit: int = 50) -> list[str]:
    """The runs that logged failures, newest first (suggestions for the run filter)."""
    with transaction(conn) as cur:
        cur.execute(
            "SELECT dag_run_id FROM imr.parse_failures GROUP BY dag_run_id"
            " ORDER BY max(occurred_at) DESC LIMIT %s",
            (limit,),
        )
        return [r[0] for r in cur.fetchall()]


def quarantined(conn, keys: Iterable[str], bucket: str | None = None) -> dict[str, list[str]]:
    """Which of `keys` are quarantined now (the only objects imr_reprocess_failures re-queues),
    grouped by bucket: {bucket: [key, ...]}, keys sorted."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    with transaction(conn) as cur:
        cur.execute(
            """
            SELECT bucket, key FROM imr.s3_objects
            WHERE status = 'quarantined' AND key = ANY(%(keys)s::text[])
              AND (%(bucket)s::text IS NULL OR bucket = %(bucket)s::text)
            ORDER BY bucket, key
            """,
            {"keys": keys, "bucket": bucket},
        )
        rows = cur.fetchall()
    out: dict[str, list[str]] = {}
    for b, k in rows:
        out.setdefault(b, []).append(k)
    return out


def manifest_object(conn, bucket: str | None, key: str) -> dict[str, Any] | None:
    """The manifest row of an object (any status) and whether it ever failed to parse (`failed`: it
    has an imr.parse_failures row), or None: the download endpoint serves only objects the manifest
    knows. Without a bucket the key must be unambiguous."""
    with transaction(conn) as cur:
        cur.execute(
            "SELECT o.bucket, o.key, o.etag, o.size, o.status,"
            " EXISTS (SELECT 1 FROM imr.parse_failures p WHERE p.key = o.key AND p.bucket = o.bucket)"
            " FROM imr.s3_objects o"
            " WHERE o.key = %(key)s AND (%(bucket)s::text IS NULL OR o.bucket = %(bucket)s::text)"
            " ORDER BY o.bucket LIMIT 2",
            {"bucket": bucket, "key": key},
        )
        rows = cur.fetchall()
    if len(rows) != 1:
        return None
    return dict(zip(("bucket", "key", "etag", "size", "status", "failed"), rows[0], strict=True))


def is_failed_letter(obj: dict[str, Any]) -> bool:
    """Whether a manifest_object is what the monitor is for: quarantined now, or quarantined once
    (a parse_failures row, e.g. resolved since). Any other object (a letter that simply loaded) is a
    medical record the monitor has no reason to hand out.

    :param obj: a row of manifest_object
    :return: True for an object that is or was quarantined
    """
    return obj["status"] == "quarantined" or bool(obj["failed"])
