"""The failed-parse monitor: a FastAPI app that the Airflow api-server mounts under /imr-monitor
(registered by plugins/imr_monitor_plugin.py) and the Airflow UI shows as the "IMR Ingestion" page.

The queries live in `imr.read.monitor` (no Airflow) and the warehouse and S3 clients in
`imr_airflow.connections`; this package adds Airflow's authentication and authorization
(`security`), the routes (`routes`, assembled by `app`), the HTML page (`page`, `charts`), the
download and the trigger of imr_reprocess_failures through Airflow's REST API (`airflow_api`).
The same app serves the "IMR Insights" page (`insights`, `insights_charts`; queries in `imr.read.insights`).
See docs/monitor.md.
"""
