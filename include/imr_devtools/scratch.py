"""Scratch databases on a running PostgreSQL server: the one place a database is created or dropped
for development, the tests and the benchmarks (the embedded services' `imr` and `airflow`, a test's
fresh warehouse, a browser test's Airflow metadata, a benchmark's warehouse).

    with scratch_database(admin_dsn, prefix="imr_test", migrate=True) as dsn:
        ...  # a brand-new database (with the warehouse schema), dropped afterwards
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg2
from psycopg2 import errors, sql
from psycopg2.extensions import make_dsn, parse_dsn


def dsn_for(admin_dsn: str, dbname: str) -> str:
    """The DSN `admin_dsn` (any database on the server) names, pointed at database `dbname`.

    :param admin_dsn: a libpq key/value DSN or URI of a role that may create databases
    :param dbname: the database the returned DSN connects to
    :return: a key/value DSN with the same host, port, user and password
    """
    return make_dsn(**{**parse_dsn(admin_dsn), "dbname": dbname})


@contextlib.contextmanager
def _admin(admin_dsn: str) -> Iterator[psycopg2.extensions.cursor]:
    conn = psycopg2.connect(dsn_for(admin_dsn, "postgres"))
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def create_database(admin_dsn: str, name: str, *, exist_ok: bool = False, fresh: bool = False) -> str:
    """Create database `name` on the server of `admin_dsn`.

    :param admin_dsn: a DSN of a role that may create databases (its own database does not matter)
    :param name: the new database's name (quoted as an identifier)
    :param exist_ok: leave an existing database as it is instead of failing; a concurrent creator of
        the same name counts as existing
    :param fresh: drop a database of that name first (a benchmark's fixed name from an earlier run)
    :return: the DSN of the database
    """
    if fresh:
        drop_database(admin_dsn, name)
    with _admin(admin_dsn) as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None or not exist_ok:
            try:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:
                if not exist_ok:
                    raise
    return dsn_for(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database `name` if it exists, closing its connections (WITH FORCE).

    :param admin_dsn: a DSN of a role that may drop the database
    :param name: the database to drop
    """
    with _admin(admin_dsn) as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(dsn: str) -> None:
    """Apply the warehouse schema (imr.warehouse.upgrade) to the database of `dsn`.

    :param dsn: the database to migrate
    """
    from imr import warehouse

    conn = psycopg2.connect(dsn)
    try:
        warehouse.upgrade(conn)
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_database(
    admin_dsn: str, prefix: str = "imr_test", *, name: str | None = None, migrate_schema: bool = False
) -> Iterator[str]:
    """A brand-new database for the length of a `with` block, dropped afterwards.

    :param admin_dsn: a DSN of a role that may create and drop databases
    :param prefix: the start of the generated name (`<prefix>_<12 hex digits>`)
    :param name: a fixed name instead (dropped first if an earlier run left it)
    :param migrate_schema: apply the warehouse schema before yielding
    :return: (yields) the new database's DSN
    """
    name = name or f"{prefix}_{uuid.uuid4().hex[:12]}"
    dsn = create_database(admin_dsn, name, fresh=True)
    try:
        if migrate_schema:
            migrate(dsn)
        yield dsn
    finally:
        drop_database(admin_dsn, name)
