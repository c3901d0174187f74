"""Alerts end to end: real nightly runs (`airflow dags test` on the embedded engines) mail a real SMTP
server on 127.0.0.1 (aiosmtpd) through the `smtp_default` connection, and the message building and
quarantine verdicts of imr.alerts on their own."""

from __future__ import annotations

import json
import random
import socket
from datetime import UTC
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

import imr_synth
from imr import alerts
from imr_synth.badfiles import not_an_imr_letter
from support.airflow_run import run_dag

BASE_URL = "http://airflow.example.test:8080"
RECIPIENTS = ["oncall@example.test", "data@example.test"]


class _Inbox:
    """aiosmtpd handler: every message the server accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, _server, _session, envelope):  # aiosmtpd calls it by this name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 and a free port; yields (port, inbox)."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def statsd_listener():
    """A UDP StatsD listener on 127.0.0.1; yields (port, read) where read() drains what arrived."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    received: list[str] = []

    def read() -> list[str]:
        while True:
            try:
                received.extend(sock.recv(65535).decode().splitlines())
            except TimeoutError:
                return received

    try:
        yield sock.getsockname()[1], read
    finally:
        sock.close()


def _imr_metrics(lines: list[str]) -> dict[str, tuple[float, str]]:
    """{name: (value, type)} of the imr.* StatsD lines ("airflow.imr.lanes:2|g")."""
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name.startswith("airflow.imr."):
            value, _, kind = rest.partition("|")
            out[name.removeprefix("airflow.")] = (float(value), kind.split("|")[0])
    return out


def _alert_env(port: int) -> dict[str, str]:
    """Mail on: smtp_default pointing at the test's server, the recipients Variable set."""
    smtp = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "imr@example.test", "timeout": 10},
    }
    return {
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp),
        "AIRFLOW_VAR_IMR_ALERT_EMAILS": ", ".join(RECIPIENTS),
        "AIRFLOW__API__BASE_URL": BASE_URL,
    }


def _body(message: EmailMessage) -> str:
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")


def _rows(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _assert_lineage(events_file, bucket: str, pg_dsn: str) -> None:
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]

    def task_events(task: str) -> dict[str, dict]:
        return {e["eventType"]: e for e in events if e["job"]["name"] == f"imr_ingest_nightly.{task}"}

    # The DAG run's own job: `airflow dags test` creates the run already running, so only its end
    # is reported there (the scheduler reports its START too).
    dag_run = {e["eventType"]: e for e in events if e["job"]["name"] == "imr_ingest_nightly"}
    assert "COMPLETE" in dag_run, sorted({(e["job"]["name"], e["eventType"]) for e in events})
    lane = task_events("process_lane")
    assert {"START", "COMPLETE"} <= set(lane)
    kv = dict(part.split("=", 1) for part in pg_dsn.split())
    warehouse = f"postgres://{kv['host']}:{kv['port']}"
    done = lane["COMPLETE"]
    # OpenLineage names an S3 prefix without its trailing slash.
    assert [(d["namespace"], d["name"]) for d in done["inputs"]] == [(f"s3://{bucket}", "letters")]
    assert sorted((d["namespace"], d["name"]) for d in done["outputs"]) == [
        (warehouse, f"{kv['dbname']}.imr.{t}") for t in ("item_citations", "items", "letters")
    ]
    # The gates read the run's recorded results (imr.quality.gate_sql), so their input is dq_results.
    gate_events = task_events("gate_table_items")
    assert {"START", "COMPLETE"} <= set(gate_events)
    gate = gate_events["COMPLETE"]
    assert any(d["name"].endswith("imr.dq_results") for d in gate["inputs"]), gate["inputs"]


# The gates judge the rows the run loaded: the bad decision is given, as it is loaded, to the item
# of the letter the run brings.
BAD_ITEM_SQL = """
ALTER TABLE imr.items DROP CONSTRAINT items_decision_check;
CREATE FUNCTION public.bad_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.case_number = %(case)s THEN
        NEW.decision := 'Denied';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bad_item BEFORE INSERT ON imr.items FOR EACH ROW EXECUTE FUNCTION public.bad_item();
"""


@pytest.mark.integration
@pytest.mark.e2e
def test_nightly_alerts_clean_quarantine_and_gate_failure(
    pg_dsn, wh_conn, s3_client, bucket, smtp_server, statsd_listener, tmp_path
):
    """Three nightly runs, mail on: a clean run sends nothing; a run quarantining 6 of 20 objects as
    not_an_imr_letter succeeds and mails the quarantine alert (counts by code, the monitor filtered
    to the run); a run whose gate fails (an item with a bad decision) mails one message naming the
    run, the gate and its observed value, with the failed task's log link. Letter text never."""
    port, inbox = smtp_server
    env = _alert_env(port)
    rng = random.Random("alerts")

    clean = [imr_synth.random_letter(rng, n_items=1) for _ in range(3)]
    for truth, pdf in clean:
        s3_client.put_object(Bucket=bucket, Key=f"letters/clean/{truth.case_number}.pdf", Body=pdf)
    # The clean run also has OpenLineage on, through the file transport.
    events_file = tmp_path / "openlineage.jsonl"
    lineage = {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "imr-test",
    }
    run1 = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, extra_env=env | lineage)
    assert run1.state == "success", run1.log[-3000:]
    assert inbox.messages == []
    _assert_lineage(events_file, bucket, pg_dsn)

    good = [imr_synth.random_letter(rng, n_items=1) for _ in range(14)]
    for truth, pdf in good:
        s3_client.put_object(Bucket=bucket, Key=f"letters/new/{truth.case_number}.pdf", Body=pdf)
    for i in range(6):
        s3_client.put_object(
            Bucket=bucket, Key=f"letters/new/bill-{i}.pdf", Body=not_an_imr_letter(random.Random(f"bill{i}"))
        )
    statsd_port, received = statsd_listener
    statsd = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    run2 = run_dag(
        "imr_ingest_nightly",
        warehouse_dsn=pg_dsn,
        bucket=bucket,
        extra_env=env | statsd,
        conf={"max_lanes": 2, "batch_size": 10},
    )
    assert run2.state == "success", run2.log[-3000:]
    sent = _imr_metrics(received())
    assert sent["imr.letters_loaded"] == (14, "c")
    assert sent["imr.quarantined"] == (6, "c")
    assert sent["imr.quarantined.not_an_imr_letter"] == (6, "c")
    assert sent["imr.duplicates"] == (0, "c")
    assert sent["imr.lanes"] == (2, "g")
    assert sent["imr.run_duration"][1] == "ms" and sent["imr.run_duration"][0] > 0
    assert sent["imr.letters_per_second"][1] == "g" and sent["imr.letters_per_second"][0] > 0
    assert len(inbox.messages) == 1, [m["Subject"] for m in inbox.messages]
    mail = inbox.messages[0]
    body = _body(mail)
    assert "quarantine rate alert" in mail["Subject"] and run2.run_id in mail["Subject"]
    assert sorted(inbox.envelopes[0][1]) == sorted(RECIPIENTS)
    assert "Quarantined: 6 of 20 object(s) processed" in body
    assert "not_an_imr_letter: 6" in body
    assert alerts.monitor_url(BASE_URL, run2.run_id).replace("&", "&amp;") in body
    dq = {
        n: (p, o)
        for n, p, o in _rows(
            wh_conn,
            "SELECT check_name, passed, observed FROM imr.dq_results WHERE run_id = %s",
            (run2.run_id,),
        )
    }
    assert dq[alerts.CHECK_QUARANTINE_SHARE] == (False, "0.3")
    assert dq[alerts.CHECK_PARSER_GAP] == (False, "6")
    assert all(p for n, (p, _) in dq.items() if n not in alerts.ALERT_CHECKS), dq

    # A run with nothing to process maps no lane and so runs no gate: give it one new letter.
    extra, pdf = imr_synth.random_letter(rng, n_items=1)
    with wh_conn, wh_conn.cursor() as cur:
        cur.execute(BAD_ITEM_SQL, {"case": extra.case_number})
    s3_client.put_object(Bucket=bucket, Key=f"letters/more/{extra.case_number}.pdf", Body=pdf)
    run3 = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, extra_env=env)
    assert run3.state == "failed"
    assert len(inbox.messages) == 2, [m["Subject"] for m in inbox.messages]
    mail = inbox.messages[1]
    body = _body(mail)
    assert "data-quality gate failed" in mail["Subject"] and run3.run_id in mail["Subject"]
    assert "items_decision_domain" in mail["Subject"]
    assert "Check failed: items_decision_domain (observed 1)" in body
    assert "Failed task: gate_" in body
    assert f"{BASE_URL}/dags/imr_ingest_nightly/runs/" in body and "/tasks/gate_" in body
    for truth, _ in good + clean:
        assert truth.items[0].decision_rationale[:40] not in body

    sent = _rows(wh_conn, "SELECT run_id, kind, channels FROM imr.alerts_sent ORDER BY id")
    assert sent == [
        (run2.run_id, alerts.KIND_QUARANTINE, ["mail"]),
        (run3.run_id, alerts.KIND_GATE_FAILED, ["mail"]),
    ]
    last = alerts.last_alerts(wh_conn)
    assert [(a.dag_id, a.run_id, a.kind) for a in last] == [
        ("imr_ingest_nightly", run3.run_id, "gate_failed")
    ]


def test_quarantine_thresholds() -> None:
    """One bad file in ten pages nobody; three above 5 % do; a parser gap alerts at a smaller share."""
    limits = alerts.QuarantineThresholds()
    one_in_ten = alerts.quarantine_checks(alerts.QuarantineStats(10, {"not_pdf": 1}), limits)
    assert [r.passed for r in one_in_ten] == [True, True]
    three = alerts.quarantine_checks(alerts.QuarantineStats(50, {"not_pdf": 2, "encrypted": 1}), limits)
    assert [(r.passed, r.observed) for r in three] == [(False, 0.06), (True, 0)]
    gap = alerts.quarantine_checks(alerts.QuarantineStats(200, {"item_structure": 3}), limits)
    assert [(r.passed, r.observed) for r in gap] == [(True, 0.015), (False, 3)]
    assert [r.passed for r in alerts.quarantine_checks(alerts.QuarantineStats(0, {}), limits)] == [True, True]


def test_message_escapes_and_names_everything() -> None:
    alert = alerts.Alert(
        kind=alerts.KIND_GATE_FAILED,
        dag_id="imr_ingest_nightly",
        run_id="manual__<x>",
        task_id="gate_table_items",
        log_url="http://a/dags/imr_ingest_nightly/runs/manual__%3Cx%3E/tasks/gate_table_items",
        checks=[("items_decision_domain", 1)],
    )
    assert (
        alert.subject
        == "[IMR] imr_ingest_nightly data-quality gate failed: items_decision_domain (manual__<x>)"
    )
    assert "Check failed: items_decision_domain (observed 1)" in alert.text
    assert "<x>" not in alert.html and "manual__&lt;x&gt;" in alert.html


def test_deadline_callback_through_the_triggerers_trigger_mails(smtp_server, wh_conn, pg_dsn, monkeypatch):
    """The nightly DAG's deadline callback as the triggerer runs it: Airflow's CallbackTrigger
    imports the AsyncCallback's path from the serialized DAG and awaits it with the simple context
    the scheduler attaches on a miss; one mail reaches the SMTP server and imr.alerts_sent notes it.
    (The miss itself is found by the scheduler's loop, which `airflow dags test` does not run.)"""
    import asyncio

    from airflow.triggers.callback import CallbackTrigger

    from imr_airflow.alerting import nightly_deadline
    from support.airflow_run import dsn_to_uri

    port, inbox = smtp_server
    for k, v in _alert_env(port).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AIRFLOW_CONN_IMR_WAREHOUSE", dsn_to_uri(pg_dsn))
    monkeypatch.setenv("IMR_NIGHTLY_DEADLINE_MINUTES", "0.05")
    deadline = nightly_deadline("imr_ingest_nightly")
    assert deadline.interval.total_seconds() == 3
    run_id = "scheduled__2026-12-03T02:00:00+00:00"
    context = {
        "dag_run": {"dag_id": "imr_ingest_nightly", "dag_run_id": run_id, "state": "running"},
        "deadline": {"id": "d1", "deadline_time": "2026-12-03T06:00:00+00:00"},
    }
    trigger = CallbackTrigger(deadline.callback.path, {**deadline.callback.kwargs, "context": context})

    async def events():
        return [e.payload async for e in trigger.run()]

    states = asyncio.run(events())
    assert [p["state"] for p in states] == ["running", "success"], states
    assert states[-1]["body"] == ["mail"]
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail["Subject"] == f"[IMR] imr_ingest_nightly run missed its deadline ({run_id})"
    assert "Deadline 2026-12-03T06:00:00+00:00 passed; run state running" in _body(mail)
    assert _rows(wh_conn, "SELECT run_id, kind FROM imr.alerts_sent") == [(run_id, alerts.KIND_DEADLINE)]


@pytest.mark.integration
@pytest.mark.e2e
def test_deadline_missed_by_a_real_run_mails_through_scheduler_and_triggerer_code(
    pg_dsn, s3_client, bucket, smtp_server, monkeypatch, services, metadata_orm
):
    """A real nightly run with its deadline on and 1.2 s long (the run takes longer: it fails at
    check_schema on an unmigrated warehouse, after Airflow has parsed and started it). Airflow
    stored the run's Deadline; then this test does what the scheduler's loop and the triggerer do,
    with their code: the scheduler's query for missed deadlines and Deadline.handle_miss, then
    Airflow's CallbackTrigger on the queued callback. The run-failure mail and the deadline mail
    reach the SMTP server. (A failed run keeps its deadline: Airflow prunes it only on success.)"""
    import asyncio
    from datetime import datetime

    from airflow.models import Deadline
    from airflow.triggers.callback import CallbackTrigger
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    port, inbox = smtp_server
    env = _alert_env(port) | {"IMR_DEADLINE_ALERTS": "on", "IMR_NIGHTLY_DEADLINE_MINUTES": "0.02"}
    run = run_dag("imr_ingest_nightly", warehouse_dsn=pg_dsn, bucket=bucket, extra_env=env, migrate=False)
    assert run.state == "failed"
    assert [m["Subject"] for m in inbox.messages] == [f"[IMR] imr_ingest_nightly run failed ({run.run_id})"]

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    metadata_orm()
    with create_session() as session:  # the scheduler's loop, once
        missed = session.scalars(
            select(Deadline)
            .where(Deadline.deadline_time < datetime.now(UTC))
            .where(~Deadline.missed)
            .options(selectinload(Deadline.callback), selectinload(Deadline.dagrun))
        ).all()
        ours = [d for d in missed if d.dagrun.run_id == run.run_id]
        assert len(ours) == 1
        assert (ours[0].deadline_time - ours[0].dagrun.logical_date).total_seconds() == pytest.approx(1.2)
        ours[0].handle_miss(session)
        data = dict(ours[0].callback.data)
    assert data["path"] == "imr_airflow.alerting.deadline_missed"
    trigger = CallbackTrigger(data["path"], dict(data["kwargs"]))  # what the triggerer runs

    async def events():
        return [e.payload async for e in trigger.run()]

    states = [p["state"] for p in asyncio.run(events())]
    assert states == ["running", "success"]
    assert len(inbox.messages) == 2
    mail = inbox.messages[1]
    assert mail["Subject"] == f"[IMR] imr_ingest_nightly run missed its deadline ({run.run_id})"
    assert "passed; run state failed" in _body(mail)
