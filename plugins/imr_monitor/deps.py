"""The request dependencies the routes share: the warehouse and S3 clients (from
imr_airflow.connections, closed after the request) and the failure filters, whose query parameters
are declared here once for the JSON API and the page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query

from imr import monitor
from imr.config import ui_statement_timeout_ms


def set_statement_timeout(conn, timeout_ms: int) -> None:
    """Bound every later statement of the session on `conn` (committed, so it outlives the
    transaction that set it; a read that trips it raises psycopg2's QueryCanceled).

    :param conn: an open psycopg2 connection
    :param timeout_ms: the timeout in milliseconds
    """
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('statement_timeout', %s, false)", (f"{int(timeout_ms)}ms",))
    conn.commit()


def get_warehouse() -> Iterator[Any]:
    """A psycopg2 connection from the Airflow connection `imr_warehouse` with the UI's statement
    timeout (imr.config.ui_statement_timeout_ms), closed after the request."""
    from imr_airflow.connections import warehouse_connection

    with warehouse_connection() as conn:
        set_statement_timeout(conn, ui_statement_timeout_ms())
        yield conn


def get_s3() -> Iterator[Any]:
    """A boto3 S3 client from the Airflow connection `aws_default`, closed after the response (a
    download streams from it)."""
    from imr_airflow.connections import s3_client

    with s3_client() as s3:
        yield s3


Warehouse = Annotated[Any, Depends(get_warehouse)]
S3 = Annotated[Any, Depends(get_s3)]


@dataclass(frozen=True)
class FilterQuery:
    """The filters' query parameters, declared once (FastAPI reads these fields as the query string
    of every route that depends on this class), as given: strings, unvalidated, what the page's form
    echoes. `filters()` turns them into monitor.Filters."""

    error_code: Annotated[str | None, Query(max_length=100)] = None
    since: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD or ISO 8601")] = None
    until: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD (inclusive) or ISO 8601")] = (
        None
    )
    run_id: Annotated[str | None, Query(max_length=250)] = None
    bucket: Annotated[str | None, Query(max_length=63)] = None
    state: Annotated[str, Query(max_length=10)] = "active"
    limit: Annotated[int, Query(ge=1, le=monitor.MAX_LIMIT)] = 500
    offset: Annotated[int, Query(ge=0, le=monitor.MAX_OFFSET)] = 0

    def filters(self) -> monitor.Filters:
        """The query's filters; raises ValueError for a bad date, state or range."""
        return monitor.Filters(
            error_code=self.error_code or None,
            since=monitor.parse_bound(self.since),
            until=monitor.parse_bound(self.until, end=True),
            run_id=self.run_id or None,
            bucket=self.bucket or None,
            state=self.state or "active",
            limit=self.limit,
            offset=self.offset,
        )

    def for_page(self, limit: int) -> FilterQuery:
        """The page's view of the query: its own page size, every bucket (its form has no bucket)."""
        return replace(self, bucket=None, limit=limit)


FilterQueryDep = Annotated[FilterQuery, Depends()]


def query_filters(query: FilterQueryDep) -> monitor.Filters:
    """The JSON API's filters: a bad value is a 422."""
    try:
        return query.filters()
    except ValueError as err:
        raise HTTPException(422, str(err)) from err


Filters = Annotated[monitor.Filters, Depends(query_filters)]
