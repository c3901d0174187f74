"""Warehouse schema versions: the SQL migrations in include/imr/migrations, applied by the owner
(`upgrade`, serialized by an advisory lock) and checked read-only by DAG runs (`check_schema`)."""

from __future__ import annotations

import re
from importlib import resources

from .db import transaction

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_xact_lock key: only one session migrates a database at a time.
MIGRATION_LOCK = 0x494D52_0001


def migrations() -> list[tuple[str, str]]:
    """(version, sql) for every include/imr/migrations/NNNN_name.sql, in order."""
    folder = resources.files("imr") / "migrations"
    files = sorted(f.name for f in folder.iterdir() if MIGRATION_NAME.match(f.name))
    return [(name.removesuffix(".sql"), (folder / name).read_text(encoding="utf-8")) for name in files]


def upgrade(conn) -> list[str]:
    """Apply pending migrations in one transaction; return the versions applied (empty if none).

    The advisory lock makes concurrent callers (two DAG runs starting together) queue up: the second
    one then sees the first one's versions in imr.schema_migrations and applies nothing."""
    applied: list[str] = []
    with transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        cur.execute("CREATE SCHEMA IF NOT EXISTS imr")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS imr.schema_migrations"
            " (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT version FROM imr.schema_migrations")
        done = {r[0] for r in cur.fetchall()}
        for version, sql in migrations():
            if version not in done:
                cur.execute(sql)  # no parameters: psycopg2 leaves % in the SQL alone
                cur.execute("INSERT INTO imr.schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
    return applied


class SchemaOutOfDate(RuntimeError):
    """The warehouse's applied migrations differ from this package's: DAG runs never change the
    schema (their login has no DDL rights), so the owner must run `imr db upgrade` first."""


def applied_migrations(conn) -> list[str]:
    """Versions recorded in imr.schema_migrations, read-only (empty when the schema is missing)."""
    with transaction(conn) as cur:
        cur.execute("SELECT to_regclass('imr.schema_migrations') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute("SELECT version FROM imr.schema_migrations ORDER BY version")
        return [r[0] for r in cur.fetchall()]


def check_schema(conn) -> list[str]:
    """Raise SchemaOutOfDate unless the applied migrations are exactly this package's; needs only
    SELECT, so a loader login can run it. Returns the versions."""
    applied, expected = applied_migrations(conn), [v for v, _ in migrations()]
    if applied == expected:
        return applied
    missing = [v for v in expected if v not in applied]
    unknown = [v for v in applied if v not in expected]
    detail = []
    if missing:
        detail.append(f"not applied: {', '.join(missing)}")
    if unknown:
        detail.append(f"applied but unknown to this package (a newer deployment?): {', '.join(unknown)}")
    raise SchemaOutOfDate(
        f"warehouse schema is not at this package's version ({'; '.join(detail)}). DAG runs do not "
        "migrate: run `imr db upgrade` as the warehouse owner (compose: airflow-init; native stack: "
        "make stack-start), then re-run."
    )
