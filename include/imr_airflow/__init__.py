"""Airflow adapters around `imr` (which never imports Airflow): `connections` (warehouse and S3
clients from Airflow connections), `tasks` (the @task callables), `wiring` (how the DAGs chain them,
quality gates included) and `params` (the DAG params). The DAG files in dags/ only call these."""
