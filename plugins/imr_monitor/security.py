"""Who may do what, and what every response carries: the authorization dependencies (Airflow's own
`requires_access_dag`), the cross-origin check on the reprocess POST, the caller's Airflow token
for the trigger, and the one middleware that sets the security headers (CSP included)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
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


def _same_origin(request: Request) -> bool:
    """A browser's cross-site POST carries an Origin header naming the other site: refuse it."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    # Behind a proxy that rewrites Host, the browser's host is in X-Forwarded-Host.
    hosts = {request.headers.get("host", "")} | {
        h.strip() for h in request.headers.get("x-forwarded-host", "").split(",") if h.strip()
    }
    return urlsplit(origin).netloc in hosts


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
        """Add the security headers to every HTTP response."""
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
