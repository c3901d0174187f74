"""Names shared by the DAGs, the deployment (docker-compose.yaml) and the tests.

Plain constants, no Airflow import. docker-compose.yaml must agree with them:
``AIRFLOW_CONN_<CONN_ID upper>`` and ``AIRFLOW_VAR_<VAR upper>`` environment variables, and the
pool created by airflow-init, the auth manager and the users script (tests/test_compose.py checks
this).
"""

CONN_AWS = "aws_default"
CONN_WAREHOUSE = "imr_warehouse"
VAR_BUCKET = "imr_bucket"
VAR_PREFIX = "imr_prefix"
POOL_WAREHOUSE = "imr_warehouse"

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
