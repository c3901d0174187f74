"""The monitor's routes, on one APIRouter: the page, the JSON API, the reprocess trigger, the
download and the static files. Each route checks access through security's dependencies and hands
the work to imr.monitor (queries), page, download or airflow_api."""

from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from imr import monitor

from .airflow_api import get_airflow_url, queue_reprocess
from .deps import S3, FilterQueryDep, Filters, Warehouse
from .download import download_response
from .links import RunDags, annotate, get_run_dags
from .page import STATIC, render_page
from .progress_view import WINDOW_S, progress_view
from .security import CallerToken, MayDownloadAny, can_read, can_reprocess, same_origin

MAX_REPROCESS_KEYS = 1000
# The static files may be cached briefly (the middleware's no-store is for everything else).
STATIC_CACHE = "private, max-age=300"

RunDagsDep = Annotated[RunDags, Depends(get_run_dags)]
AirflowUrl = Annotated[str, Depends(get_airflow_url)]

router = APIRouter()


class ReprocessRequest(BaseModel):
    keys: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        min_length=1, max_length=MAX_REPROCESS_KEYS
    )
    bucket: Annotated[str | None, Field(max_length=63)] = None


@router.get("/api/failures", dependencies=[can_read])
def api_failures(filters: Filters, conn: Warehouse, run_dags: RunDagsDep) -> JSONResponse:
    result = monitor.list_failures(conn, filters)
    return JSONResponse({"total": result["total"], "failures": annotate(result["failures"], run_dags)})


@router.get("/api/counts", dependencies=[can_read])
def api_counts(filters: Filters, conn: Warehouse) -> JSONResponse:
    return JSONResponse({"counts": monitor.counts_by_error_code(conn, filters)})


@router.get("/api/trend", dependencies=[can_read])
def api_trend(
    conn: Warehouse,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> JSONResponse:
    try:
        first, last = monitor.trend_window(monitor.parse_bound(since), monitor.parse_bound(until, end=True))
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    days = monitor.daily_trend(conn, first, last)
    return JSONResponse({"first": first.isoformat(), "last": last.isoformat(), "days": days})


@router.get("/api/error-codes", dependencies=[can_read])
def api_error_codes(conn: Warehouse) -> JSONResponse:
    return JSONResponse({"error_codes": monitor.error_codes(conn)})


@router.get("/api/progress", dependencies=[can_read])
def api_progress(
    conn: Warehouse,
    run_dags: RunDagsDep,
    window_s: Annotated[float, Query(ge=10, le=86400, description="rate window (s)")] = WINDOW_S,
    run_id: Annotated[str | None, Query(max_length=250)] = None,
) -> JSONResponse:
    """The active runs (or `run_id`, if active): counts per state, letters/s over the window, ETA."""
    return JSONResponse(progress_view(conn, run_dags, window_s, run_id or None))


@router.post("/api/reprocess", dependencies=[can_read, can_reprocess, same_origin])
def api_reprocess(
    body: ReprocessRequest, user: GetUserDep, token: CallerToken, conn: Warehouse, airflow_url: AirflowUrl
) -> JSONResponse:
    """Triggers imr_reprocess_failures for the keys that are quarantined now (one run per bucket);
    409 when none is."""
    by_bucket = monitor.quarantined(conn, body.keys, body.bucket)
    found = {k for keys in by_bucket.values() for k in keys}
    queued = queue_reprocess(airflow_url, token, by_bucket, user.get_name())
    return JSONResponse(
        {
            "queued": queued,
            "skipped": sorted(set(body.keys) - found),
            "detail": None if queued else "none of the keys is quarantined",
        },
        status_code=200 if queued else 409,
    )


@router.get("/download", dependencies=[can_read])
def download(
    conn: Warehouse,
    s3: S3,
    user: GetUserDep,
    any_object: MayDownloadAny,
    key: Annotated[str, Query(min_length=1, max_length=1024)],
    bucket: Annotated[str | None, Query(max_length=63)] = None,
) -> Response:
    """A quarantined (or once quarantined) letter's PDF; any manifest object with the permission."""
    return download_response(conn, s3, bucket, key, user=user.get_name(), may_download_any=any_object)


def static_file(files: dict[str, tuple[str, bytes]], name: str) -> Response:
    """One of a page's static files (name -> (media type, bytes), read at import); 404 otherwise."""
    if name not in files:
        raise HTTPException(404, "not found")
    media_type, content = files[name]
    return Response(content, media_type=media_type, headers={"Cache-Control": STATIC_CACHE})


@router.get("/static/{name}", dependencies=[can_read])
def static(name: str) -> Response:
    return static_file(STATIC, name)


@router.get("/", dependencies=[can_read], response_class=HTMLResponse)
def page(
    request: Request,
    conn: Warehouse,
    run_dags: RunDagsDep,
    query: FilterQueryDep,
    dag_id: Annotated[str | None, Query(max_length=250)] = None,
) -> HTMLResponse:
    """The HTML page: the filters of the JSON API, plus the DAG whose run tab shows it."""
    prefix = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(render_page(conn, run_dags, query, dag_id, prefix))
