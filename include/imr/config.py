"""Names shared by the DAGs, the deployment (docker-compose.yaml) and the tests.

Plain constants, no Airflow import. docker-compose.yaml must agree with them:
``AIRFLOW_CONN_<CONN_ID upper>`` and ``AIRFLOW_VAR_<VAR upper>`` environment variables, and the
pool created by airflow-init, the auth manager and the users script (tests/test_compose.py checks
this).
"""

import os

CONN_AWS = "aws_default"
CONN_WAREHOUSE = "imr_warehouse"
VAR_BUCKET = "imr_bucket"
VAR_PREFIX = "imr_prefix"
# The SQS queue URL the bucket's ObjectCreated notifications go to (docs/discovery.md); unset or
# empty: the nightly discovery lists the prefix.
VAR_EVENTS_QUEUE_URL = "imr_events_queue_url"
POOL_WAREHOUSE = "imr_warehouse"
DAG_NIGHTLY = "imr_ingest_nightly"
DAG_BACKFILL = "imr_backfill"
DAG_REPROCESS = "imr_reprocess_failures"
DAG_RELABEL = "imr_relabel"
DAG_SWEEP = "imr_quality_sweep"
DAG_IDS = (DAG_NIGHTLY, DAG_BACKFILL, DAG_REPROCESS, DAG_RELABEL, DAG_SWEEP)
# Seconds without a task heartbeat before the scheduler fails (and retries) a task whose worker died.
TASK_HEARTBEAT_TIMEOUT_S = 60
# Seconds a task may sit `queued` before the scheduler re-queues it: a broker that lost its messages
# (Redis killed before it wrote them to its append-only file) costs this long, not a stuck run.
TASK_QUEUED_TIMEOUT_S = 120
# The task supervisor's select timeout ([workers] min_heartbeat_interval, default 5 s). When a task
# process's sockets reach EOF a moment before the process can be reaped, the supervisor sleeps this
# long before it sees the exit, holding the executor slot: measured, about every other short task
# (quality gates, publish) ended 5 s late. 1 s (the least the integer setting takes; 0 would spin
# and heartbeat every 10 ms) bounds that at the price of a heartbeat a second per running task (a
# one-row UPDATE through the API server). Measured on the backfill (issue 18): at 2 s the second lane
# started 1.3 s after the first and a skipped task reported its state 2 s after it ended.
WORKER_MIN_HEARTBEAT_INTERVAL_S = 1
# botocore retries in the aws_default connection's extra (the amazon provider hands `config_kwargs`
# to botocore.config.Config). Standard mode retries 503 SlowDown/5xx, throttling and connection
# errors (reset, closed, timeouts) with jittered backoff; 10 attempts make a task fail on an S3 fault
# only when ten tries in a row fail. docker-compose.yaml sets the same (tests/test_compose.py).
S3_RETRY_EXTRA = {"config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10}}}

# --------------------------------------------------------------------------- authentication
# Production (docker-compose.yaml, the native stack): the Flask-AppBuilder auth manager of
# apache-airflow-providers-fab, users in Airflow's metadata database, created by
# docker/airflow-users.sh (the admin from the _AIRFLOW_WWW_USER_* variables, the viewer from IMR_VIEWER_*).
# `make standalone` keeps SimpleAuthManager (scripts/standalone.sh sets it explicitly).
AUTH_MANAGER_FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
AUTH_MANAGER_SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# FAB's built-in roles: Admin may trigger imr_reprocess_failures; Viewer reads the monitor only.
ROLE_ADMIN = "Admin"
ROLE_VIEWER = "Viewer"
# The one script that creates/updates those users (compose's airflow-init and the native stack).
USERS_SCRIPT = "docker/airflow-users.sh"
ENV_ADMIN_USERNAME = "_AIRFLOW_WWW_USER_USERNAME"
ENV_ADMIN_PASSWORD = "_AIRFLOW_WWW_USER_PASSWORD"
ENV_VIEWER_USERNAME = "IMR_VIEWER_USERNAME"
ENV_VIEWER_PASSWORD = "IMR_VIEWER_PASSWORD"
# The api-server's token endpoint under FAB: POST {"username", "password"} -> 201 {"access_token"}.
TOKEN_PATH = "/auth/token"

# --------------------------------------------------------------------------- alerts (imr_airflow.alerting)
# Mail goes through this Airflow connection (the smtp provider's default) to the comma-separated
# addresses of the Variable; no Variable (or no connection): mail is off. The sender is the
# connection's `from_email` extra.
CONN_SMTP = "smtp_default"
VAR_ALERT_EMAILS = "imr_alert_emails"
# Slack: an incoming-webhook connection (apache-airflow-providers-slack, conn type slackwebhook) of
# this id; absent: Slack is off.
CONN_SLACK = "imr_slack_alerts"
# The nightly run's deadline: it must have finished this long after its logical date (02:00 UTC),
# or a "deadline missed" alert goes out. A setting (environment) because it is read when the DAG
# file is parsed.
ENV_NIGHTLY_DEADLINE_MINUTES = "IMR_NIGHTLY_DEADLINE_MINUTES"
NIGHTLY_DEADLINE_MINUTES = 240
# "off" leaves the deadlines out of the DAGs. scripts/airflow_runner.py sets it for `airflow dags test`:
# in Airflow 3.3.2 a run of a DAG with a deadline that *succeeds* under `dags test` crashes the
# command (DagRun.update_state looks the alerts up by id, but dags test's DAG carries the alert
# definitions: "can't adapt type 'dict'"). The scheduler is not affected.
ENV_DEADLINE_ALERTS = "IMR_DEADLINE_ALERTS"
# The backfill's deadline: its last runs' average runtime plus this margin.
ENV_BACKFILL_DEADLINE_MARGIN_MINUTES = "IMR_BACKFILL_DEADLINE_MARGIN_MINUTES"
BACKFILL_DEADLINE_MARGIN_MINUTES = 60

# --------------------------------------------------------------------------- the UI's warehouse reads
# Every request of the monitor and Insights pages reads the warehouse on its own connection with this
# statement timeout (milliseconds), so a slow query or a lock held by a load cannot pin an api-server
# worker: the read is cancelled and the route answers 503. IMR_UI_STATEMENT_TIMEOUT_MS overrides it.
UI_STATEMENT_TIMEOUT_MS = 5000
ENV_UI_STATEMENT_TIMEOUT_MS = "IMR_UI_STATEMENT_TIMEOUT_MS"


def ui_statement_timeout_ms() -> int:
    """The UI's statement timeout in milliseconds: $IMR_UI_STATEMENT_TIMEOUT_MS, else
    UI_STATEMENT_TIMEOUT_MS; a value below 1 (which PostgreSQL reads as "no timeout") is refused.

    :return: the timeout, at least 1 ms
    """
    raw = os.environ.get(ENV_UI_STATEMENT_TIMEOUT_MS, "").strip()
    value = int(raw) if raw else UI_STATEMENT_TIMEOUT_MS
    if value < 1:
        raise ValueError(f"{ENV_UI_STATEMENT_TIMEOUT_MS} must be at least 1 (ms), not {value}")
    return value
