"""Airflow adapters: tasks that take clients from the provider hooks and call `imr` (which never
imports Airflow). The DAG files in dags/ only wire these together."""
