"""Alerts through Airflow's notifier API: the run-failure notifier every DAG has as its
`on_failure_callback`, the quarantine alert record_quality sends, the deadline alert of the nightly
run. What a message says is imr.alerts (plain code); this module only finds the channels that are
configured and hands them the message:

* mail: the smtp provider's SmtpNotifier through connection `smtp_default` to the Variable
  `imr_alert_emails` (comma-separated);
* Slack: the slack provider's SlackWebhookNotifier through the connection imr.config.CONN_SLACK.

A channel whose Variable or connection is absent is off, so a development run sends nothing. Sending
never fails a run: a channel that errors is logged and the others still go out."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from airflow.sdk import AsyncCallback, BaseNotifier, DeadlineAlert, DeadlineReference, Variable
from airflow.sdk.configuration import conf

from imr import alerts
from imr.config import (
    BACKFILL_DEADLINE_MARGIN_MINUTES,
    CONN_SLACK,
    CONN_SMTP,
    ENV_BACKFILL_DEADLINE_MARGIN_MINUTES,
    ENV_DEADLINE_ALERTS,
    ENV_NIGHTLY_DEADLINE_MINUTES,
    NIGHTLY_DEADLINE_MINUTES,
    VAR_ALERT_EMAILS,
)

log = logging.getLogger(__name__)

# The sender when the connection's from_email extra does not say.
DEFAULT_SENDER = "imr-alerts@localhost"

Send = Callable[[alerts.Alert, dict], None]


def _connection_exists(conn_id: str) -> bool:
    from airflow.sdk import Connection

    try:
        Connection.get(conn_id)
    except Exception:  # AirflowNotFoundException / AirflowRuntimeError(CONNECTION_NOT_FOUND)
        return False
    return True


def mail_recipients() -> list[str]:
    """The addresses of the `imr_alert_emails` Variable (empty: mail is off)."""
    try:
        raw = Variable.get(VAR_ALERT_EMAILS, default=None)
    except Exception:  # no metadata database behind the Variable (a unit test, a parse)
        raw = None
    return [a.strip() for a in (raw or "").split(",") if a.strip()]


def _send_mail(alert: alerts.Alert, context: dict) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import Connection

    # The sender resolved here rather than left to SmtpNotifier: it would render the connection's
    # from_email as a template against the context's DAG, which a DAG callback under `airflow dags
    # test` (a SerializedDAG) cannot do.
    sender = Connection.get(CONN_SMTP).extra_dejson.get("from_email") or DEFAULT_SENDER
    notifier = SmtpNotifier(
        to=mail_recipients(),
        from_email=sender,
        subject=alert.subject,
        html_content=alert.html,
        smtp_conn_id=CONN_SMTP,
    )
    # notify(), not __call__: the message is final text; Jinja rendering of a run id or a check's
    # observed value would only risk mangling it.
    notifier.notify(context)


def _send_slack(alert: alerts.Alert, context: dict) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    SlackWebhookNotifier(slack_webhook_conn_id=CONN_SLACK, text=f"*{alert.subject}*\n{alert.text}").notify(
        context
    )


def channels() -> dict[str, Send]:
    """{name: send} for the channels configured now (mail, slack)."""
    out: dict[str, Send] = {}
    if mail_recipients() and _connection_exists(CONN_SMTP):
        out["mail"] = _send_mail
    if _connection_exists(CONN_SLACK):
        out["slack"] = _send_slack
    return out


def send(alert: alerts.Alert, context: dict | None = None) -> list[str]:
    """Send `alert` on every configured channel and note it in imr.alerts_sent; returns the channels
    it went out on (empty: none configured, or all failed)."""
    sent = []
    for name, deliver in channels().items():
        try:
            deliver(alert, context or {})
        except Exception:
            log.exception("alert %s of run %s: channel %s failed", alert.kind, alert.run_id, name)
        else:
            sent.append(name)
    log.info("alert %s for %s %s sent on %s", alert.kind, alert.dag_id, alert.run_id, sent or "no channel")
    if sent:
        _record(alert, sent)
    return sent


def _record(alert: alerts.Alert, sent: list[str]) -> None:
    from imr_airflow.connections import warehouse_connection

    try:
        with warehouse_connection() as conn:
            alerts.record_sent(conn, alert, sent)
    except Exception:  # the alert went out; a warehouse that is down must not hide that in the log
        log.exception("could not record alert %s for %s in imr.alerts_sent", alert.kind, alert.run_id)


def base_url() -> str:
    """The Airflow UI's address ([api] base_url), for the links of a message."""
    return conf.get("api", "base_url", fallback="http://localhost:8080/")


def _failed_checks(run_id: str) -> list[tuple[str, object]]:
    from imr_airflow.connections import warehouse_connection

    try:
        with warehouse_connection() as conn:
            return alerts.failed_checks(conn, run_id)
    except Exception:  # the warehouse itself may be why the run failed: alert without the checks
        log.exception("could not read the failed checks of %s", run_id)
        return []


def run_failure_alert(context: dict[str, Any]) -> alerts.Alert:
    """The alert for a failed run from a DAG failure callback's context: the failed task (the last
    to fail, as Airflow hands it), its log, and the checks recorded as failed for the run (a gate
    failure names them with their observed values)."""
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or context.get("dag_id") or "unknown"
    run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", "unknown")
    ti = context.get("ti")
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", None)
    checks = _failed_checks(run_id)
    gate_failed = bool(checks) or (task_id or "").startswith("gate_")
    return alerts.Alert(
        alerts.KIND_GATE_FAILED if gate_failed else alerts.KIND_RUN_FAILED,
        dag_id,
        run_id,
        task_id=task_id,
        log_url=alerts.task_log_url(base_url(), dag_id, run_id, task_id, map_index) if task_id else None,
        checks=checks,
        link=alerts.monitor_url(base_url(), run_id),
        detail=f"Reason: {context['reason']}" if context.get("reason") else None,
    )


class RunFailureNotifier(BaseNotifier):
    """A DAG's `on_failure_callback`: one alert per failed run, on every configured channel. Runs
    where Airflow runs DAG callbacks (the dag processor; `airflow dags test` itself)."""

    def render_template_fields(self, context: dict[str, Any], jinja_env=None) -> None:
        """Nothing to render (no template fields: the message is built from the context). Skipping
        it matters: under `airflow dags test` the context's dag is a SerializedDAG, which has no
        Jinja environment to ask for."""

    def notify(self, context: dict[str, Any]) -> None:
        send(run_failure_alert(context), context)


async def deadline_missed(*, dag_id: str, context: dict[str, Any] | None = None) -> list[str]:
    """A DeadlineAlert's callback (AsyncCallback: the triggerer awaits it when the scheduler finds
    the deadline missed). The context is the scheduler's simple one: the run as the REST API shows
    it and the deadline. Sending is blocking I/O (SMTP, the warehouse), so it runs in a thread, off
    the triggerer's event loop."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    # The run as the REST API shows it (DAGRunResponse): its id is `dag_run_id`.
    run_id = run.get("dag_run_id") or run.get("run_id") or "unknown"
    alert = alerts.Alert(
        alerts.KIND_DEADLINE,
        run.get("dag_id") or dag_id,
        run_id,
        link=alerts.monitor_url(base_url(), run_id),
        detail=f"Deadline {deadline.get('deadline_time')} passed; run state {run.get('state', 'unknown')}",
    )
    return await asyncio.to_thread(send, alert, {})


def _minutes(env: str, default: float) -> timedelta:
    return timedelta(minutes=float(os.environ.get(env) or default))


def nightly_deadline(dag_id: str) -> DeadlineAlert:
    """The nightly run must have finished IMR_NIGHTLY_DEADLINE_MINUTES after its logical date."""
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=_minutes(ENV_NIGHTLY_DEADLINE_MINUTES, NIGHTLY_DEADLINE_MINUTES),
        callback=AsyncCallback(deadline_missed, kwargs={"dag_id": dag_id}),
        name="imr_nightly_late",
    )


def backfill_deadline(dag_id: str) -> DeadlineAlert:
    """A backfill is late when it runs longer than its last runs did on average (the last 10, once
    there are 3) plus IMR_BACKFILL_DEADLINE_MARGIN_MINUTES; before 3 finished runs there is none."""
    return DeadlineAlert(
        reference=DeadlineReference.AVERAGE_RUNTIME(max_runs=10, min_runs=3),
        interval=_minutes(ENV_BACKFILL_DEADLINE_MARGIN_MINUTES, BACKFILL_DEADLINE_MARGIN_MINUTES),
        callback=AsyncCallback(deadline_missed, kwargs={"dag_id": dag_id}),
        name="imr_backfill_late",
    )


def dag_alerting(deadline: DeadlineAlert | None = None) -> dict[str, Any]:
    """The DAG arguments every ingestion DAG takes for alerts (a deadline where the DAG has one,
    unless IMR_DEADLINE_ALERTS is "off": imr.config says why `airflow dags test` needs that)."""
    out: dict[str, Any] = {"on_failure_callback": RunFailureNotifier()}
    if deadline is not None and os.environ.get(ENV_DEADLINE_ALERTS, "on") != "off":
        out["deadline"] = deadline
    return out
