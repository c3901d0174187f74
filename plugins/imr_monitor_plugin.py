"""Registers the failed-parse monitor (package imr_monitor, next to this file) with Airflow 3:

* fastapi_apps: the api-server mounts the monitor's FastAPI app under /imr-monitor;
* external_views: "IMR Ingestion" in the UI's navigation shows that page in the UI's iframe, and
  a "Parse failures" tab on every DAG run shows it filtered to the run. The UI substitutes
  {DAG_ID} and {RUN_ID} (URL-encoded) in a non-nav view's href. "IMR Insights" (the same app's
  /insights/ page) is a second navigation entry.

imr_monitor/.airflowignore keeps Airflow from loading the package's modules as plugin files.
"""

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin
from imr_monitor.app import URL_PREFIX, app, ui_root

# Path-absolute hrefs: the iframe resolves them against the api-server, under [api] base_url's path.
_BASE = ui_root().rstrip("/") + URL_PREFIX


class ImrMonitorPlugin(AirflowPlugin):
    """Registers the monitor's FastAPI app and its UI entries with Airflow."""

    name = "imr_monitor"
    fastapi_apps: ClassVar[list[dict]] = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "IMR ingestion monitor"}
    ]
    external_views: ClassVar[list[dict]] = [
        {
            "name": "IMR Ingestion",
            "href": f"{_BASE}/",
            "destination": "nav",
            "url_route": "imr-ingestion",
        },
        {
            "name": "IMR Insights",
            "href": f"{_BASE}/insights/",
            "destination": "nav",
            "url_route": "imr-insights",
            # The UI folds two or more nav views that are not top level into one "Plugins" menu;
            # top level, this one leaves "IMR Ingestion" where it was and sits beside it.
            "nav_top_level": True,
        },
        {
            "name": "Parse failures",
            "href": f"{_BASE}/?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&state=all",
            "destination": "dag_run",
            "url_route": "imr-run-failures",
        },
    ]
