"""OpenLineage for the ingestion DAGs (apache-airflow-providers-openlineage; off unless its transport
is configured). The lanes read and write through boto3 and psycopg2 directly, so no hook reports
their datasets: each lane tells Airflow's hook-lineage collector that it read the S3 prefix and
wrote imr.letters, imr.items and imr.item_citations, and the OpenLineage listener puts them in the
lane's COMPLETE event. The gates (common-sql check operators) report the table they read and their
results as a data-quality assertions facet themselves. Without the provider (or with it off) the
collector is a no-op."""

from __future__ import annotations

from typing import Any

# The tables a lane writes, as the gates name them (schema.table; the database is the connection's).
TABLES_WRITTEN = ("imr.letters", "imr.items", "imr.item_citations")


def s3_uri(bucket: str, prefix: str) -> str:
    """The lanes' input: the prefix under the bucket (the whole bucket when the prefix is empty)."""
    return f"s3://{bucket}/{prefix.lstrip('/')}"


def warehouse_uri(host: str, port: int | str, database: str, table: str) -> str:
    """An imr table as a postgres asset URI; OpenLineage turns it into namespace postgres://host:port
    and name database.schema.table, the names the gates' own events use."""
    schema, name = table.split(".", 1)
    return f"postgres://{host}:{port}/{database}/{schema}/{name}"


def report_lane(conn: Any, s3: Any, bucket: str, prefix: str) -> None:
    """A lane's datasets to the hook-lineage collector: the S3 prefix in, the three tables out.

    :param conn: the lane's psycopg2 connection (its host, port and database name the tables)
    :param s3: the lane's S3 client (the collector's context for the input)
    :param bucket: the run's bucket
    :param prefix: the run's key prefix
    """
    from airflow.sdk.lineage import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    collector.add_input_asset(context=s3, uri=s3_uri(bucket, prefix))
    info = conn.info
    for table in TABLES_WRITTEN:
        collector.add_output_asset(context=conn, uri=warehouse_uri(info.host, info.port, info.dbname, table))
