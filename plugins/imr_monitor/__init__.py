"""The failed-parse monitor: a FastAPI app that the Airflow api-server mounts under /imr-monitor
(registered by plugins/imr_monitor_plugin.py) and the Airflow UI shows as the "IMR Ingestion" page.

The queries live in `imr.monitor` (no Airflow); this package adds Airflow's authentication and
authorization, the warehouse and S3 connections from Airflow connections, the HTML page and the
trigger of imr_reprocess_failures through Airflow's REST API. See docs/monitor.md.
"""
