"""Least-privilege logins for the role tests: a LOGIN role whose only privileges come from one group
role of the migrations (imr_loader, imr_reader), as compose's imr_app and imr_ui are."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg2
from psycopg2.extensions import make_dsn, parse_dsn

from imr_devtools.scratch import drop_database


@contextlib.contextmanager
def member_login(admin_dsn: str, database_dsn: str, group: str, prefix: str) -> Iterator[str]:
    """A new LOGIN role, member of `group` only, for the length of a `with` block.

    :param admin_dsn: a superuser's DSN (creates and drops the role)
    :param database_dsn: the migrated database the login is for; dropped afterwards, since its grants
        name the role
    :param group: the group role whose privileges the login inherits
    :param prefix: the start of the role's generated name
    :return: (yields) the DSN of `database_dsn` as the new role
    """
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(admin_dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT")
            cur.execute(f"GRANT {group} TO {name}")
        yield make_dsn(database_dsn, user=name)
        drop_database(admin_dsn, parse_dsn(database_dsn)["dbname"])
        with admin.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {name}")
    finally:
        admin.close()
