"""The clients every Airflow-side caller (the tasks and the monitor plugin) gets from Airflow
connections: the warehouse (`imr_warehouse`, psycopg2) and S3 (`aws_default`, boto3), each as a
context manager that closes it. No task code here, so the api-server can import it cheaply."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2

from imr.config import CONN_AWS, CONN_WAREHOUSE

# The libpq settings of the connection's extra that reach psycopg2.connect (anything else is ignored).
_LIBPQ_EXTRAS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "options",
    "connect_timeout",
    "application_name",
)


def _connect_warehouse():
    """A psycopg2 connection built from the `imr_warehouse` Airflow connection.

    PostgresHook.get_conn() hands out psycopg 3 whenever psycopg is installed (provider 7.x), but the
    loader uses psycopg2's copy_expert and transaction semantics; credentials still come only from
    the `imr_warehouse` connection."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    c = PostgresHook(postgres_conn_id=CONN_WAREHOUSE).get_connection(CONN_WAREHOUSE)
    extra = {k: v for k, v in c.extra_dejson.items() if k in _LIBPQ_EXTRAS}
    return psycopg2.connect(
        host=c.host, port=c.port or 5432, user=c.login, password=c.password, dbname=c.schema or "imr", **extra
    )


@contextmanager
def warehouse_connection() -> Iterator[Any]:
    """`with warehouse_connection() as conn:` a psycopg2 connection, closed on the way out (an open
    transaction is rolled back by the close; callers commit their own)."""
    conn = _connect_warehouse()
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def s3_client() -> Iterator[Any]:
    """`with s3_client() as s3:` a boto3 S3 client from `aws_default` (S3Hook), its connection pool
    closed on the way out."""
    # Imported here: the amazon provider (boto3) costs ~0.4 s, paid by every task process that
    # parses the DAG files, and only the tasks that touch S3 need it.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=CONN_AWS).get_conn()
    try:
        yield client
    finally:
        client.close()


@contextmanager
def sqs_client() -> Iterator[Any]:
    """`with sqs_client() as sqs:` a boto3 SQS client from `aws_default` (SqsHook: the same
    credentials, region and endpoint as S3), its connection pool closed on the way out."""
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    client = SqsHook(aws_conn_id=CONN_AWS).get_conn()
    try:
        yield client
    finally:
        client.close()
