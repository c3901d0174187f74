"""The monitor's FastAPI app, mounted by the Airflow api-server under URL_PREFIX.

Routes (relative to the mount point; every one needs an authenticated Airflow user):

    GET  /                      the HTML page (filters: error_code, since, until, run_id, state, dag_id)
    GET  /api/failures          one row per object with a failure matching the filters
    GET  /api/counts            those objects per error code
    GET  /api/trend             loaded / quarantined objects per day
    GET  /api/error-codes       the codes the error-code filter offers
    POST /api/reprocess         {"keys": [...], "bucket": optional} -> triggers imr_reprocess_failures
    GET  /download?bucket=&key= the object's bytes from S3, only for keys in imr.s3_objects
    GET  /static/<file>         the page's script and style sheet

Authorization goes through Airflow's auth manager with the dependencies the core REST API uses
(airflow.api_fastapi.core_api.security.requires_access_dag): reading needs GET on the task
instances of imr_ingest_nightly, queueing needs POST on the runs of imr_reprocess_failures; the run
is then triggered through Airflow's own REST API with the caller's token, so Airflow checks again.
"""

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from math import ceil
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.configuration import conf
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from imr import monitor

URL_PREFIX = "/imr-monitor"
DAG_NIGHTLY = "imr_ingest_nightly"
DAG_REPROCESS = "imr_reprocess_failures"
# The DAGs whose runs log parse failures; a failure's run id is looked up among these for its links.
IMR_DAGS = (DAG_NIGHTLY, "imr_backfill", DAG_REPROCESS)
AIRFLOW_URL_ENV = "IMR_MONITOR_AIRFLOW_URL"
DEFAULT_AIRFLOW_URL = "http://localhost:8080"
MAX_REPROCESS_KEYS = 1000

HERE = Path(__file__).resolve().parent
STATIC = {
    "monitor.js": ("text/javascript; charset=utf-8", (HERE / "static" / "monitor.js").read_bytes()),
    "monitor.css": ("text/css; charset=utf-8", (HERE / "static" / "monitor.css").read_bytes()),
}
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# The page runs its own script and style sheet only: nothing inline, nothing from elsewhere.
# frame-ancestors 'self': the Airflow UI (same origin) may show it in its iframe, no other site may.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)

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

# --------------------------------------------------------------------------- dependencies


def get_warehouse() -> Iterator[Any]:
    """A psycopg2 connection from the Airflow connection `imr_warehouse`, closed after the request."""
    from imr_airflow.tasks import warehouse_conn

    conn = warehouse_conn()
    try:
        yield conn
    finally:
        conn.close()


def get_s3() -> Any:
    """A boto3 S3 client from the Airflow connection `aws_default` (S3Hook)."""
    from imr_airflow.tasks import s3_client

    return s3_client()


RunDags = Callable[[Iterable[str]], dict[str, str]]


def run_dags_from_metadata(run_ids: Iterable[str]) -> dict[str, str]:
    """{run_id: dag_id} for the runs of the ingestion DAGs among `run_ids` (Airflow's metadata DB;
    imr.parse_failures stores the run id only). A run id two DAGs share maps to the first in IMR_DAGS."""
    run_ids = sorted({r for r in run_ids if r})
    if not run_ids:
        return {}
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_id, DagRun.dag_id).where(
                DagRun.run_id.in_(run_ids), DagRun.dag_id.in_(IMR_DAGS)
            )
        ).all()
    found: dict[str, str] = {}
    for run_id, dag_id in sorted(rows, key=lambda r: IMR_DAGS.index(r[1]), reverse=True):
        found[run_id] = dag_id
    return found


def get_run_dags() -> RunDags:
    return run_dags_from_metadata


def get_airflow_url() -> str:
    """Where this process reaches Airflow's REST API (the api-server itself, by default)."""
    return (os.environ.get(AIRFLOW_URL_ENV) or DEFAULT_AIRFLOW_URL).rstrip("/")


Warehouse = Annotated[Any, Depends(get_warehouse)]


def ui_root() -> str:
    """Path of the Airflow UI's root ([api] base_url's path), ending in '/'."""
    path = urlsplit(conf.get("api", "base_url", fallback="") or "/").path or "/"
    return path if path.endswith("/") else path + "/"


def _q(value: str) -> str:
    return quote(str(value), safe="")


def run_url(dag_id: str, run_id: str) -> str:
    return f"{ui_root()}dags/{_q(dag_id)}/runs/{_q(run_id)}"


def task_instance_url(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """The task instance's page in the Airflow 3 UI; its default tab is the log."""
    url = f"{run_url(dag_id, run_id)}/tasks/{_q(task_id)}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{int(map_index)}"
    return url


# --------------------------------------------------------------------------- filters


def _filters(
    error_code: str | None,
    since: str | None,
    until: str | None,
    run_id: str | None,
    bucket: str | None,
    state: str,
    limit: int,
    offset: int,
) -> monitor.Filters:
    """Raises ValueError for a bad date, state or range."""
    return monitor.Filters(
        error_code=error_code or None,
        since=monitor.parse_bound(since),
        until=monitor.parse_bound(until, end=True),
        run_id=run_id or None,
        bucket=bucket or None,
        state=state or "active",
        limit=limit,
        offset=offset,
    )


def query_filters(
    error_code: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD or ISO 8601")] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="YYYY-MM-DD (inclusive) or ISO 8601")
    ] = None,
    run_id: Annotated[str | None, Query(max_length=250)] = None,
    bucket: Annotated[str | None, Query(max_length=63)] = None,
    state: Annotated[str, Query(max_length=10)] = "active",
    limit: Annotated[int, Query(ge=1, le=monitor.MAX_LIMIT)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> monitor.Filters:
    try:
        return _filters(error_code, since, until, run_id, bucket, state, limit, offset)
    except ValueError as err:
        raise HTTPException(422, str(err)) from err


Filters = Annotated[monitor.Filters, Depends(query_filters)]


# --------------------------------------------------------------------------- serialization


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _annotate(rows: list[dict[str, Any]], run_dags: RunDags) -> list[dict[str, Any]]:
    """JSON-ready rows with the links the page shows: the run and task instance in the Airflow UI
    (when the run is found among the ingestion DAGs' runs) and the download."""
    dags = run_dags(r["run_id"] for r in rows)
    out = []
    for r in rows:
        row = {k: _iso(v) for k, v in r.items()}
        dag_id = dags.get(r["run_id"])
        row["dag_id"] = dag_id
        row["run_url"] = run_url(dag_id, r["run_id"]) if dag_id else None
        row["log_url"] = (
            task_instance_url(dag_id, r["run_id"], r["task_id"], r["map_index"])
            if dag_id and r["task_id"]
            else None
        )
        out.append(row)
    return out


# --------------------------------------------------------------------------- charts


def _fmt_ts(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def counts_chart(counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometry of the horizontal bar chart of objects per error code (inline SVG)."""
    row_h, label_w, bar_w = 22, 170, 230
    top = max((c["count"] for c in counts), default=0) or 1
    bars = [
        {
            "label": c["error_code"],
            "value": c["count"],
            "y": i * row_h,
            "width": max(1.0, round(bar_w * c["count"] / top, 1)),
            "title": f"{c['error_code']}: {c['count']} object(s)"
            f" ({c['open']} open, {c['queued']} queued, {c['resolved']} resolved)",
        }
        for i, c in enumerate(counts)
    ]
    return {
        "bars": bars,
        "label_w": label_w,
        "height": max(row_h, len(bars) * row_h),
        "width": label_w + bar_w + 50,
        "row_h": row_h,
    }


def trend_chart(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometry of the daily loaded / quarantined bar chart (inline SVG)."""
    width, height, left, bottom = 640, 170, 36, 22
    plot_h = height - bottom - 8
    n = max(1, len(days))
    group = (width - left) / n
    bar = max(1.0, group * 0.38)
    top = max((max(d["loaded"], d["quarantined"]) for d in days), default=0) or 1
    step = ceil(n / 8)
    out = []
    for i, d in enumerate(days):
        x = left + i * group + group * 0.1
        hl = plot_h * d["loaded"] / top
        hq = plot_h * d["quarantined"] / top
        out.append(
            {
                "x_loaded": round(x, 1),
                "x_quarantined": round(x + bar, 1),
                "y_loaded": round(8 + plot_h - hl, 1),
                "y_quarantined": round(8 + plot_h - hq, 1),
                "h_loaded": round(hl, 1),
                "h_quarantined": round(hq, 1),
                "label": d["day"][5:] if i % step == 0 else "",
                "label_x": round(left + i * group + group / 2, 1),
                "title": f"{d['day']}: {d['loaded']} loaded, {d['quarantined']} quarantined",
            }
        )
    return {
        "days": out,
        "bar": round(bar, 1),
        "width": width,
        "height": height,
        "left": left,
        "base_y": 8 + plot_h,
        "top": top,
    }


# --------------------------------------------------------------------------- the app


def _security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


class ReprocessRequest(BaseModel):
    keys: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        min_length=1, max_length=MAX_REPROCESS_KEYS
    )
    bucket: Annotated[str | None, Field(max_length=63)] = None


def _caller_token(request: Request, user: Any) -> str:
    """The caller's own Airflow JWT (bearer header, else the UI's session cookie), so the trigger
    runs with their identity and permissions; minted from the authenticated user otherwise."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    if token := request.cookies.get(COOKIE_NAME_JWT_TOKEN):
        return token
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().generate_jwt(user)


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


def trigger_reprocess(airflow_url: str, token: str, bucket: str, keys: list[str], who: str) -> dict:
    """POST /api/v2/dags/imr_reprocess_failures/dagRuns; raises HTTPException with Airflow's status."""
    body = {
        "logical_date": None,
        "conf": {"bucket": bucket, "keys": keys},
        "note": f"Queued from the IMR monitor by {who}: {len(keys)} object(s) in {bucket}",
    }
    try:
        r = httpx.post(
            f"{airflow_url}/api/v2/dags/{DAG_REPROCESS}/dagRuns",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as err:
        raise HTTPException(502, f"could not reach Airflow at {airflow_url}: {err}") from err
    if r.status_code in (401, 403):
        raise HTTPException(r.status_code, f"Airflow refused to trigger {DAG_REPROCESS}")
    if r.status_code >= 300:
        raise HTTPException(502, f"Airflow answered {r.status_code} to the trigger: {r.text[:300]}")
    return r.json()


def create_app() -> FastAPI:
    app = FastAPI(
        title="IMR ingestion monitor",
        description="Quarantined letters of the IMR ingestion, and their reprocessing.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # The page itself, opened outside the UI without a session: send the browser to the login.
        if (
            exc.status_code == 401
            and request.method == "GET"
            and request.url.path.rstrip("/") == request.scope.get("root_path", "").rstrip("/")
            and "text/html" in request.headers.get("accept", "")
        ):
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), 303)
        return _security_headers(
            JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return _security_headers(JSONResponse({"detail": errors}, status_code=422))

    @app.get("/api/failures", dependencies=[can_read])
    def api_failures(
        filters: Filters, conn: Warehouse, run_dags: Annotated[RunDags, Depends(get_run_dags)]
    ) -> JSONResponse:
        result = monitor.list_failures(conn, filters)
        return _security_headers(
            JSONResponse({"total": result["total"], "failures": _annotate(result["failures"], run_dags)})
        )

    @app.get("/api/counts", dependencies=[can_read])
    def api_counts(filters: Filters, conn: Warehouse) -> JSONResponse:
        return _security_headers(JSONResponse({"counts": monitor.counts_by_error_code(conn, filters)}))

    @app.get("/api/trend", dependencies=[can_read])
    def api_trend(
        conn: Warehouse,
        since: Annotated[str | None, Query(max_length=40)] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
    ) -> JSONResponse:
        try:
            first, last = monitor.trend_window(
                monitor.parse_bound(since), monitor.parse_bound(until, end=True)
            )
        except ValueError as err:
            raise HTTPException(422, str(err)) from err
        days = monitor.daily_trend(conn, first, last)
        return _security_headers(
            JSONResponse({"first": first.isoformat(), "last": last.isoformat(), "days": days})
        )

    @app.get("/api/error-codes", dependencies=[can_read])
    def api_error_codes(conn: Warehouse) -> JSONResponse:
        return _security_headers(JSONResponse({"error_codes": monitor.error_codes(conn)}))

    @app.post("/api/reprocess", dependencies=[can_read, can_reprocess])
    def api_reprocess(
        body: ReprocessRequest,
        request: Request,
        user: GetUserDep,
        conn: Warehouse,
        airflow_url: Annotated[str, Depends(get_airflow_url)],
    ) -> JSONResponse:
        if not _same_origin(request):
            raise HTTPException(403, "cross-origin request refused")
        by_bucket = monitor.quarantined(conn, body.keys, body.bucket)
        found = {k for keys in by_bucket.values() for k in keys}
        token = _caller_token(request, user)
        who = user.get_name()
        queued = []
        for bucket, keys in by_bucket.items():
            run = trigger_reprocess(airflow_url, token, bucket, keys, who)
            run_id = run.get("dag_run_id")
            queued.append(
                {
                    "bucket": bucket,
                    "keys": keys,
                    "dag_id": DAG_REPROCESS,
                    "dag_run_id": run_id,
                    "state": run.get("state"),
                    "run_url": run_url(DAG_REPROCESS, run_id) if run_id else None,
                }
            )
        skipped = sorted(set(body.keys) - found)
        status = 200 if queued else 409
        return _security_headers(
            JSONResponse(
                {
                    "queued": queued,
                    "skipped": skipped,
                    "detail": None if queued else "none of the keys is quarantined",
                },
                status_code=status,
            )
        )

    @app.get("/download", dependencies=[can_read])
    def download(
        conn: Warehouse,
        s3: Annotated[Any, Depends(get_s3)],
        key: Annotated[str, Query(min_length=1, max_length=1024)],
        bucket: Annotated[str | None, Query(max_length=63)] = None,
    ):
        obj = monitor.manifest_object(conn, bucket, key)
        if obj is None:
            raise HTTPException(404, "no such object in the manifest")
        try:
            got = s3.get_object(Bucket=obj["bucket"], Key=obj["key"])
        except Exception as err:
            code = getattr(err, "response", {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise HTTPException(404, "the object is no longer in S3") from err
            raise HTTPException(502, "could not read the object from S3") from err
        name = obj["key"].rsplit("/", 1)[-1] or "letter.pdf"
        ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:150] or "letter.pdf"
        headers = {
            # An attachment, typed as a PDF whatever the bytes are, never sniffed nor rendered here.
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{_q(name)}",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        }
        if got.get("ContentLength") is not None:
            headers["Content-Length"] = str(got["ContentLength"])
        body = got["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size=64 * 1024)
            finally:
                body.close()

        return _security_headers(StreamingResponse(chunks(), media_type="application/pdf", headers=headers))

    @app.get("/static/{name}", dependencies=[can_read])
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "not found")
        media_type, content = STATIC[name]
        response = Response(content, media_type=media_type)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, max-age=300"
        return response

    @app.get("/", dependencies=[can_read], response_class=HTMLResponse)
    def page(
        request: Request,
        conn: Warehouse,
        run_dags: Annotated[RunDags, Depends(get_run_dags)],
        error_code: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[str | None, Query(max_length=40)] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        run_id: Annotated[str | None, Query(max_length=250)] = None,
        state: Annotated[str, Query(max_length=10)] = "active",
        dag_id: Annotated[str | None, Query(max_length=250)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> HTMLResponse:
        prefix = request.scope.get("root_path", "").rstrip("/")
        form = {
            "error_code": error_code or "",
            "since": since or "",
            "until": until or "",
            "run_id": run_id or "",
            "state": state or "active",
            "dag_id": dag_id or "",
        }
        error = None
        try:
            filters = _filters(error_code, since, until, run_id, None, state, 200, offset)
        except ValueError as err:
            error, filters = str(err), None
        rows: list[dict[str, Any]] = []
        total, counts, first_last = 0, [], monitor.trend_window(None, None)
        is_imr_dag = dag_id in IMR_DAGS if dag_id else True
        if filters is not None and is_imr_dag:
            result = monitor.list_failures(conn, filters)
            total = result["total"]
            rows = _annotate(result["failures"], run_dags)
            for row, raw in zip(rows, result["failures"], strict=True):
                row["first_seen_text"] = _fmt_ts(raw["first_seen"])
                row["last_seen_text"] = _fmt_ts(raw["last_seen"])
                row["download_url"] = f"{prefix}/download?" + urlencode(
                    {"bucket": raw["bucket"], "key": raw["key"]}
                )
            counts = monitor.counts_by_error_code(conn, filters)
            first_last = monitor.trend_window(filters.since, filters.until)
        trend = monitor.daily_trend(conn, *first_last)

        def page_url(new_offset: int) -> str:
            params = {k: v for k, v in form.items() if v} | ({"offset": new_offset} if new_offset else {})
            return f"{prefix}/?{urlencode(params)}" if params else f"{prefix}/"

        html = TEMPLATES.get_template("monitor.html").render(
            prefix=prefix,
            form=form,
            error=error,
            rows=rows,
            total=total,
            offset=offset,
            limit=filters.limit if filters else 200,
            prev_url=page_url(max(0, offset - 200)) if offset else None,
            next_url=page_url(offset + 200) if filters and offset + len(rows) < total else None,
            counts=counts_chart(counts),
            trend=trend_chart(trend),
            trend_first=first_last[0].isoformat(),
            trend_last=first_last[1].isoformat(),
            error_codes=monitor.error_codes(conn),
            runs=monitor.recent_runs(conn),
            states=list(monitor.STATE_FILTERS),
            dag_run_url=run_url(dag_id, run_id) if dag_id and run_id else None,
            is_imr_dag=is_imr_dag,
            reprocess_dag=DAG_REPROCESS,
            reprocess_dag_url=f"{ui_root()}dags/{DAG_REPROCESS}",
        )
        response = HTMLResponse(html)
        response.headers["Content-Security-Policy"] = CSP
        return _security_headers(response)

    return app


app = create_app()
