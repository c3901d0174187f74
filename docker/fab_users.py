"""The users of the FAB auth manager, created or brought up to date from the environment, in one
process (run by docker/airflow-users.sh, which checks the environment and the auth manager first).

Passwords never appear on a command line: `airflow users create --password X` would show them to
anyone who can list processes, and a value beginning with `-` would be read as an option (issue 15,
findings 6 and 9). Here they are read from the environment and handed to FAB's security manager,
the same calls `airflow users create` / `reset-password` / `add-role` make.

    _AIRFLOW_WWW_USER_USERNAME / _AIRFLOW_WWW_USER_PASSWORD   the admin, role Admin
    IMR_VIEWER_USERNAME / IMR_VIEWER_PASSWORD                 the viewer, role Viewer
    optional: _AIRFLOW_WWW_USER_EMAIL, IMR_VIEWER_EMAIL (default <username>@example.invalid),
              _AIRFLOW_WWW_USER_FIRSTNAME / _LASTNAME

Per user: missing -> created with its role; present -> password set from the environment (so a
changed password is rotated) and its roles made exactly its one role.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class WantedUser:
    username: str
    password: str
    role: str
    email: str
    first: str
    last: str


def wanted_users(env: dict[str, str]) -> list[WantedUser]:
    """The admin and the viewer as the environment describes them.

    :param env: the environment (os.environ)
    :return: [admin, viewer]
    """
    admin = env["_AIRFLOW_WWW_USER_USERNAME"]
    viewer = env["IMR_VIEWER_USERNAME"]
    return [
        WantedUser(
            admin,
            env["_AIRFLOW_WWW_USER_PASSWORD"],
            "Admin",
            env.get("_AIRFLOW_WWW_USER_EMAIL") or f"{admin}@example.invalid",
            env.get("_AIRFLOW_WWW_USER_FIRSTNAME") or "Airflow",
            env.get("_AIRFLOW_WWW_USER_LASTNAME") or "Admin",
        ),
        WantedUser(
            viewer,
            env["IMR_VIEWER_PASSWORD"],
            "Viewer",
            env.get("IMR_VIEWER_EMAIL") or f"{viewer}@example.invalid",
            "IMR",
            "Viewer",
        ),
    ]


def ensure_user(sm, wanted: WantedUser) -> str:
    """Creates or updates one user through FAB's security manager.

    :param sm: the FAB security manager (appbuilder.sm)
    :param wanted: the user as it must be
    :return: what was done, for the log (never the password)
    """
    role = sm.find_role(wanted.role)
    if role is None:
        raise SystemExit(f"fab_users: role {wanted.role} does not exist")
    user = sm.find_user(username=wanted.username)
    if user is None:
        if not sm.add_user(wanted.username, wanted.first, wanted.last, wanted.email, role, wanted.password):
            raise SystemExit(f"fab_users: could not create user {wanted.username}")
        return f"User {wanted.username}: created (role {wanted.role})"
    if not sm.reset_password(user.id, wanted.password):
        raise SystemExit(f"fab_users: could not set the password of {wanted.username}")
    user = sm.find_user(username=wanted.username)
    removed = sorted(r.name for r in user.roles if r.name != wanted.role)
    if [r.name for r in user.roles] != [wanted.role]:
        user.roles = [role]
        sm.update_user(user)
    extra = f"; removed roles {', '.join(removed)}" if removed else ""
    return f"User {wanted.username}: exists; password from the environment, role {wanted.role}{extra}"


def main() -> int:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    @providers_configuration_loaded
    def run() -> None:
        with get_application_builder() as appbuilder:
            for wanted in wanted_users(dict(os.environ)):
                print(f"== {ensure_user(appbuilder.sm, wanted)}", flush=True)

    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
