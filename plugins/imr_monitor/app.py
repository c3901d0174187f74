"""The monitor's FastAPI app, mounted by the Airflow api-server under URL_PREFIX: it assembles the
routes (routes.py), the security-header middleware and the error handlers.

Routes (relative to the mount point; every one needs an authenticated Airflow user):

    GET  /                      the HTML page (filters: error_code, since, until, run_id, state, dag_id)
    GET  /api/failures          one row per object with a failure matching the filters
    GET  /api/counts            those objects per error code
    GET  /api/trend             loaded / quarantined objects per day
    GET  /api/error-codes       the codes the error-code filter offers
    POST /api/reprocess         {"keys": [...], "bucket": optional} -> triggers imr_reprocess_failures
    GET  /download?bucket=&key= a quarantined (or once quarantined) letter's bytes from S3 (download.py)
    GET  /static/<file>         the page's script and style sheet
    GET  /insights/, /api/insights/...   the "IMR Insights" page and its JSON API (insights.py)

Authorization goes through Airflow's auth manager with the dependencies the core REST API uses
(security.py): reading needs GET on the task instances of imr_ingest_nightly, queueing needs POST
on the runs of imr_reprocess_failures; the run is then triggered through Airflow's own REST API
with the caller's token (airflow_api.py), so Airflow checks again. A warehouse read cancelled by the
UI's statement timeout (deps.get_warehouse) answers 503.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from psycopg2.errors import QueryCanceled
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import insights
from .links import get_run_dags, ui_root
from .routes import router
from .security import SecurityHeadersMiddleware, login_url

log = logging.getLogger(__name__)

URL_PREFIX = "/imr-monitor"
# How long a client should wait before asking again after a warehouse read timed out (s).
RETRY_AFTER_S = 30
# The HTML pages, relative to URL_PREFIX: a browser without a session is sent to the login.
PAGES = ("", "/insights")

# What the plugin registration and the tests use (get_run_dags: the dependency they override).
__all__ = ["URL_PREFIX", "app", "create_app", "get_run_dags", "ui_root"]


def _wants_login(request: Request, exc: StarletteHTTPException) -> bool:
    """A page itself, opened by a browser outside the UI without a session."""
    root = request.scope.get("root_path", "").rstrip("/")
    return (
        exc.status_code == 401
        and request.method == "GET"
        and request.url.path.rstrip("/") in {root + page for page in PAGES}
        and "text/html" in request.headers.get("accept", "")
    )


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """{"detail": ...} with the status; a browser without a session is sent to the login instead."""
    if _wants_login(request, exc):
        return RedirectResponse(login_url(next_url=str(request.url)), 303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
    """422 with where and what, without echoing the input back."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


async def warehouse_timeout(request: Request, _exc: QueryCanceled) -> Response:
    """503 for a warehouse read cancelled by the UI's statement timeout (deps.get_warehouse)."""
    log.warning("warehouse read cancelled by the statement timeout: %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "the warehouse did not answer in time; try again later or narrow the filters"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def create_app() -> FastAPI:
    app = FastAPI(
        title="IMR ingestion monitor",
        description="Quarantined letters of the IMR ingestion, and their reprocessing.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(QueryCanceled, warehouse_timeout)
    app.include_router(router)
    app.include_router(insights.router)
    return app


app = create_app()
