"""The PostgreSQL warehouse (no Airflow here): `db` (connections, the one transaction helper, COPY),
`migrate` (schema versions), `insights_months` (the Insights page's monthly aggregates),
`manifest` (the S3 object state machine and claimed batches), `load`
(loading parsed letters: `results` the types in and out, `rows` the staged rows, `merge` the
SQL steps). The summary counts are read by `imr.read.report`.

Every function takes an open psycopg2 connection and runs its own transaction(s) with
`db.transaction`: uncommitted work the caller has on the connection is committed with it. The
public names are re-exported here, so callers write `from imr import warehouse; warehouse.upgrade(conn)`.
"""

from .db import connect, copy_rows, transaction
from .insights_months import Refresh
from .insights_months import rebuild as rebuild_insights
from .insights_months import refresh as refresh_insights
from .load import load_batch
from .manifest import (
    DEFAULT_LEASE,
    STATUSES,
    Batch,
    LeaseLost,
    ObjectRef,
    claim_batches,
    claim_next_batch,
    get_batch,
    mark_for_reparse,
    register_counted,
    register_events,
    register_objects,
    release_claims,
    release_leases,
    renew_lease,
    requeue_failures,
)
from .migrate import SchemaOutOfDate, applied_migrations, check_schema, migrations, upgrade
from .results import BatchLoad, Failed, ObjectResult, Parsed

__all__ = [
    "DEFAULT_LEASE",
    "STATUSES",
    "Batch",
    "BatchLoad",
    "Failed",
    "LeaseLost",
    "ObjectRef",
    "ObjectResult",
    "Parsed",
    "Refresh",
    "SchemaOutOfDate",
    "applied_migrations",
    "check_schema",
    "claim_batches",
    "claim_next_batch",
    "connect",
    "copy_rows",
    "get_batch",
    "load_batch",
    "mark_for_reparse",
    "migrations",
    "rebuild_insights",
    "refresh_insights",
    "register_counted",
    "register_events",
    "register_objects",
    "release_claims",
    "release_leases",
    "renew_lease",
    "requeue_failures",
    "transaction",
    "upgrade",
]
