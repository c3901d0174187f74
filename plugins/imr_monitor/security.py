"""Who may do what, and what every response carries: the authorization dependencies (Airflow's own
`requires_access_dag`, and the permission to download any letter), the cross-origin check on the
reprocess POST, the caller's Airflow token for the trigger, and the one middleware that sets the
security headers (CSP included)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.configuration import conf
from fastapi import Depends, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imr.config import DAG_NIGHTLY, DAG_REPROCESS

# --------------------------------------------------------------------------- authorization

# Reading the quarantine = reading the ingestion DAG's task instances (the failures are their
# outcomes and the page links to their logs). The dag id is fixed: the page's own `dag_id` query
# parameter (the run a dag_run view shows) must not choose what is checked.
can_read = Depends(
    requires_access_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE, param_dag_id=DAG_NIGHTLY)
)
# Queueing = triggering a run of imr_reprocess_failures.
can_reprocess = Depends(
    requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN, param_dag_id=DAG_REPROCESS)
)

# Downloading a letter that never failed (a loaded letter: a medical record) is a permission of its
# own, which no built-in role but Admin holds: under the FAB auth manager the custom-view permission
# (can_read, DOWNLOAD_ANY_RESOURCE) an admin adds to a role (docs/monitor.md); the SimpleAuthManager
# has no such permissions (its custom-view check lets every viewer in), so there it is role admin.
DOWNLOAD_ANY_RESOURCE = "IMR Letter Downloads"


def may_download_any(user: GetUserDep) -> bool:
    """Dependency: whether the caller may download any manifest object, not only failed ones.

    :param user: the authenticated caller
    :return: True when the caller holds the download permission (see DOWNLOAD_ANY_RESOURCE)
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    manager = get_auth_manager()
    if isinstance(manager, SimpleAuthManager):
        all_admins = conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False)
        return all_admins or str(getattr(user, "role", None) or "").upper() == "ADMIN"
    return manager.is_authorized_custom_view(method="GET", resource_name=DOWNLOAD_ANY_RESOURCE, user=user)


MayDownloadAny = Annotated[bool, Depends(may_download_any)]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> str | None:
    """scheme://host[:port] of `url`, lower case, the scheme's default port left out; None when
    `url` has no scheme and host (or a port that is not a number)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")


def configured_origin() -> str | None:
    """The origin of Airflow's `[api] base_url` (where users open the UI).

    :return: ``scheme://host[:port]``, or None when base_url is not set
    """
    return _origin(conf.get("api", "base_url", fallback="") or "")


def _has_bearer(request: Request) -> bool:
    auth = request.headers.get("authorization", "")
    return auth[:7].lower() == "bearer " and bool(auth[7:].strip())


def _same_origin(request: Request) -> bool:
    """Whether a state-changing request may act on the caller's session.

    Only the session cookie is an ambient credential: a request with a bearer token is
    authenticated by that header (Airflow's get_user prefers it to the cookie), which no other
    site's page can make a browser send (it is not CORS-safelisted), so it passes. A cookie
    request must come from a page of this deployment: a browser names the relation in
    Sec-Fetch-Site (set by the browser, a page cannot change it) and only `same-origin` passes;
    without it (an older browser) the Origin header must be the origin of the configured
    `[api] base_url`, scheme included. Host and X-Forwarded-Host are never trusted: a client
    chooses them."""
    if _has_bearer(request):
        return True
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() == "same-origin"
    origin = request.headers.get("origin")
    expected = configured_origin()
    return bool(origin and expected) and _origin(origin) == expected


def require_same_origin(request: Request) -> None:
    """Dependency of state-changing routes: 403 for a request from another origin."""
    if not _same_origin(request):
        raise HTTPException(403, "cross-origin request refused")


same_origin = Depends(require_same_origin)


def caller_token(request: Request, user: GetUserDep) -> str:
    """The caller's own Airflow JWT (bearer header, else the UI's session cookie), so the trigger
    runs with their identity and permissions; minted from the authenticated user otherwise."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    if token := request.cookies.get(COOKIE_NAME_JWT_TOKEN):
        return token
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().generate_jwt(user)


CallerToken = Annotated[str, Depends(caller_token)]


def login_url(next_url: str) -> str:
    """The auth manager's login page, coming back to `next_url`."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=next_url)


# --------------------------------------------------------------------------- response headers

# The page runs its own script and style sheet only: nothing inline, nothing from elsewhere.
# frame-ancestors 'self': the Airflow UI (same origin) may show it in its iframe, no other site may.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
# Set on every response unless the route set its own (the download's sandbox CSP, the static files'
# Cache-Control).
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SecurityHeadersMiddleware:
    """Pure ASGI middleware: adds SECURITY_HEADERS to every HTTP response of the app (pages, JSON,
    static files, streamed downloads, errors), keeping any of them a route set itself."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in (headers or SECURITY_HEADERS).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {k.lower() for k, _ in raw}
                raw += [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)
