"""What an alert says and when a run deserves one, as plain code (no Airflow import): the message of a
failed run (its failed task, the log link, the failed data-quality checks with their observed values),
the quarantine-rate verdict of a run, and the small record of alerts sent (imr.alerts_sent, which the
monitor reads). imr_airflow.alerting hands these to Airflow's notifiers.

A message carries names, counts, run ids and links, never letter text: it leaves the warehouse's
trust boundary (mail, chat)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlencode

from imr.quality import WARNING_CHECKS, CheckResult
from imr.warehouse.db import transaction

# The kinds of alert (imr.alerts_sent.kind).
KIND_RUN_FAILED = "run_failed"
KIND_GATE_FAILED = "gate_failed"
KIND_QUARANTINE = "quarantine_rate"
KIND_DEADLINE = "deadline_missed"
KINDS = (KIND_RUN_FAILED, KIND_GATE_FAILED, KIND_QUARANTINE, KIND_DEADLINE)

# Rejection codes that mean the parser does not understand a letter (a new format, a parser bug),
# rather than a bad file: a few of these in a run are worth a look even when the share is small.
PARSER_GAP_CODES = ("not_an_imr_letter", "item_structure", "header_missing_field", "internal_error")

# Names of the two quarantine checks in imr.dq_results. They alert; they never fail a run.
CHECK_QUARANTINE_SHARE = "run_quarantine_share"
CHECK_PARSER_GAP = "run_parser_gap_quarantine"
ALERT_CHECKS = (CHECK_QUARANTINE_SHARE, CHECK_PARSER_GAP)

# The monitor plugin's mount point (plugins/imr_monitor/app.py URL_PREFIX).
MONITOR_PATH = "/imr-monitor/"


@dataclass(frozen=True)
class QuarantineThresholds:
    """When a run's quarantine is worth an alert.

    :param share: alert when quarantined / processed exceeds this ...
    :param min_count: ... and at least this many objects were quarantined (one bad file in ten
        pages nobody)
    :param gap_share: alert when objects with a PARSER_GAP_CODES code / processed exceeds this ...
    :param gap_min_count: ... and at least this many have such a code
    """

    share: float = 0.05
    min_count: int = 3
    gap_share: float = 0.01
    gap_min_count: int = 1


@dataclass(frozen=True)
class QuarantineStats:
    """What one run did to the objects it processed: `processed` objects ended loaded, quarantined
    or duplicate in it; `by_code` counts the quarantined ones by rejection code."""

    processed: int
    by_code: Mapping[str, int]

    @property
    def quarantined(self) -> int:
        """Objects the run quarantined, all codes."""
        return sum(self.by_code.values())

    @property
    def parser_gap(self) -> int:
        """Objects quarantined with a code that signals a parser gap (`PARSER_GAP_CODES`)."""
        return sum(n for code, n in self.by_code.items() if code in PARSER_GAP_CODES)

    def share(self, n: int) -> float:
        """`n` as a fraction of the objects the run processed (0 when it processed none).

        :param n: a count of objects.
        """
        return n / self.processed if self.processed else 0.0


def quarantine_stats(counts: Mapping[str, int]) -> QuarantineStats:
    """The quarantine figures of a run from its manifest counts (`imr.metrics.run_counts`, the one
    query over the run's objects that the metrics use too).

    :param counts: {status: n} and {"quarantined.<code>": n} of the objects the run processed.
    :return: the objects processed and the quarantined ones by code.
    """
    processed = sum(counts.get(status, 0) for status in ("loaded", "quarantined", "duplicate"))
    prefix = "quarantined."
    by_code = {k.removeprefix(prefix): n for k, n in sorted(counts.items()) if k.startswith(prefix)}
    return QuarantineStats(processed, by_code)


def quarantine_checks(stats: QuarantineStats, limits: QuarantineThresholds) -> list[CheckResult]:
    """The two quarantine checks as results for imr.dq_results: the quarantined share (observed: the
    share, rounded to 4 places) and the parser-gap count (observed: the count)."""
    share = stats.share(stats.quarantined)
    share_ok = not (share > limits.share and stats.quarantined >= limits.min_count)
    gap = stats.parser_gap
    gap_ok = not (stats.share(gap) > limits.gap_share and gap >= limits.gap_min_count)
    return [
        CheckResult(CHECK_QUARANTINE_SHARE, share_ok, round(share, 4)),
        CheckResult(CHECK_PARSER_GAP, gap_ok, stats.parser_gap),
    ]


def monitor_url(base_url: str, run_id: str) -> str:
    """The monitor page ("IMR Ingestion") filtered to one run's failures."""
    return f"{base_url.rstrip('/')}{MONITOR_PATH}?{urlencode({'run_id': run_id, 'state': 'all'})}"


def task_log_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The task instance's page in the Airflow 3 UI (its default tab is the log)."""
    url = f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    url += f"/tasks/{quote(task_id, safe='')}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{int(map_index)}"
    return url


@dataclass(frozen=True)
class Alert:
    """One alert: what happened to which run, and where to look.

    :param kind: one of KINDS
    :param dag_id: the DAG
    :param run_id: the run
    :param task_id: the failed task (run and gate failures), if known
    :param log_url: the failed task's log in the Airflow UI
    :param checks: failed data-quality checks as (name, observed)
    :param counts: quarantined objects by code (quarantine alerts)
    :param processed: objects the run processed (quarantine alerts)
    :param link: a further link (the monitor page filtered to the run)
    :param detail: one line more (a deadline's time, Airflow's reason)
    """

    kind: str
    dag_id: str
    run_id: str
    task_id: str | None = None
    log_url: str | None = None
    checks: Sequence[tuple[str, object]] = field(default_factory=tuple)
    counts: Mapping[str, int] = field(default_factory=dict)
    processed: int | None = None
    link: str | None = None
    detail: str | None = None

    @property
    def subject(self) -> str:
        """The mail subject / Slack headline."""
        what = {
            KIND_RUN_FAILED: "run failed",
            KIND_GATE_FAILED: "data-quality gate failed",
            KIND_QUARANTINE: "quarantine rate alert",
            KIND_DEADLINE: "run missed its deadline",
        }[self.kind]
        extra = f": {', '.join(name for name, _ in self.checks)}" if self.checks else ""
        return f"[IMR] {self.dag_id} {what}{extra} ({self.run_id})"

    def lines(self) -> list[str]:
        """The message as lines of plain text (Slack, the mail's text)."""
        out = [f"DAG: {self.dag_id}", f"Run: {self.run_id}"]
        if self.task_id:
            out.append(f"Failed task: {self.task_id}")
        if self.log_url:
            out.append(f"Log: {self.log_url}")
        for name, observed in self.checks:
            out.append(f"Check failed: {name} (observed {observed})")
        if self.counts:
            quarantined = sum(self.counts.values())
            out.append(f"Quarantined: {quarantined} of {self.processed} object(s) processed")
            out += [f"  {code}: {n}" for code, n in sorted(self.counts.items())]
        if self.detail:
            out.append(self.detail)
        if self.link:
            out.append(f"Monitor: {self.link}")
        return out

    @property
    def text(self) -> str:
        """The plain-text body."""
        return "\n".join(self.lines())

    @property
    def html(self) -> str:
        """The mail body: the lines, escaped (a run id or check name never becomes markup)."""
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines())
        return f"<p>{html.escape(self.subject)}</p><ul>{items}</ul>"


def failed_checks(
    conn, run_id: str, exclude: Iterable[str] = (*ALERT_CHECKS, *WARNING_CHECKS)
) -> list[tuple[str, object]]:
    """The data-quality checks recorded as failed for `run_id` (the gates' verdicts), as
    (name, observed); the quarantine checks, which alert on their own, and the warnings, which
    never gate, are left out."""
    skip = set(exclude)
    with transaction(conn) as cur:
        cur.execute(
            "SELECT DISTINCT ON (check_name) check_name, observed FROM imr.dq_results"
            " WHERE run_id = %s AND NOT passed ORDER BY check_name, checked_at DESC",
            (run_id,),
        )
        return [(name, observed) for name, observed in cur.fetchall() if name not in skip]


def record_sent(conn, alert: Alert, channels: Sequence[str]) -> None:
    """Note an alert that went out (imr.alerts_sent), so the monitor shows what on-call was told."""
    with transaction(conn) as cur:
        cur.execute(
            "INSERT INTO imr.alerts_sent (dag_id, run_id, kind, subject, channels)"
            " VALUES (%s, %s, %s, %s, %s)",
            (alert.dag_id, alert.run_id, alert.kind, alert.subject, list(channels)),
        )


@dataclass(frozen=True)
class SentAlert:
    """An alert as `imr.alerts_sent` records it (the monitor shows the last one per DAG)."""

    dag_id: str
    run_id: str
    kind: str
    subject: str
    channels: list[str]
    sent_at: datetime


def last_alerts(conn) -> list[SentAlert]:
    """The latest alert sent for each DAG, newest first."""
    with transaction(conn) as cur:
        cur.execute(
            "SELECT DISTINCT ON (dag_id) dag_id, run_id, kind, subject, channels, sent_at"
            " FROM imr.alerts_sent ORDER BY dag_id, sent_at DESC"
        )
        rows = [SentAlert(*r) for r in cur.fetchall()]
    return sorted(rows, key=lambda a: a.sent_at, reverse=True)
