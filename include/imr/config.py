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
