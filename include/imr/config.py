"""Names shared by the DAGs, the deployment (docker-compose.yaml) and the tests.

Plain constants, no Airflow import. docker-compose.yaml must agree with them:
``AIRFLOW_CONN_<CONN_ID upper>`` and ``AIRFLOW_VAR_<VAR upper>`` environment variables, and the
pool created by airflow-init (tests/test_compose.py checks this).
"""

CONN_AWS = "aws_default"
CONN_WAREHOUSE = "imr_warehouse"
VAR_BUCKET = "imr_bucket"
VAR_PREFIX = "imr_prefix"
POOL_WAREHOUSE = "imr_warehouse"
DAG_NIGHTLY = "imr_ingest_nightly"
DAG_BACKFILL = "imr_backfill"
DAG_REPROCESS = "imr_reprocess_failures"
DAG_IDS = (DAG_NIGHTLY, DAG_BACKFILL, DAG_REPROCESS)

# Production auth (compose and the native stack): Flask-AppBuilder roles; `make standalone` keeps
# Airflow's SimpleAuthManager.
AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
# Seconds without a task heartbeat before the scheduler fails (and retries) a task whose worker died.
TASK_HEARTBEAT_TIMEOUT_S = 60
# botocore retries in the aws_default connection's extra (the amazon provider hands `config_kwargs`
# to botocore.config.Config). Standard mode retries 503 SlowDown/5xx, throttling and connection
# errors (reset, closed, timeouts) with jittered backoff; 10 attempts make a task fail on an S3 fault
# only when ten tries in a row fail. docker-compose.yaml sets the same (tests/test_compose.py).
S3_RETRY_EXTRA = {"config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10}}}
