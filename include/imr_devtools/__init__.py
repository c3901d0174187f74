"""Development tooling: the local engines the tests, the demo and the benchmarks run on.

Installed by `make setup` (the editable install of pyproject.toml) and never by the production image
(.dockerignore keeps this folder out of its build context); `imr` never imports it.

* :mod:`imr_devtools.devservices`: the embedded PostgreSQL cluster (its class ``PgCluster``) and the
  S3 endpoint with persistence (record/replay), started together for development;
* :mod:`imr_devtools.scratch`: scratch databases (created, dropped) on a running server;
* :mod:`imr_devtools.faultproxy`: the TCP proxy that makes S3 misbehave, in-process or as a process;
* :mod:`imr_devtools.airflow_runner`: the one way code runs a DAG (`airflow dags test`);
* :mod:`imr_devtools.stack`: docker-compose.yaml's topology as native processes.

The command lines are thin wrappers in scripts/ (devservices.py, stack.py).
"""
