"""The HTML page: its template and static files, and the view of the failures it renders (the form
echoing the query, the rows with their download links and times, paging links, the two charts).
Rendered on the server; templates/monitor.html is autoescaped and has no inline script or style."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from imr import alerts, monitor
from imr.config import DAG_IDS, DAG_REPROCESS

from .charts import counts_chart, trend_chart
from .deps import FilterQuery
from .links import RunDags, annotate, dag_url, run_url
from .progress_view import page_section

# Rows per page (the page's own size, whatever `limit` the query carries).
PAGE_SIZE = 200

HERE = Path(__file__).resolve().parent
STATIC = {
    "monitor.js": ("text/javascript; charset=utf-8", (HERE / "static" / "monitor.js").read_bytes()),
    "progress.js": ("text/javascript; charset=utf-8", (HERE / "static" / "progress.js").read_bytes()),
    "monitor.css": ("text/css; charset=utf-8", (HERE / "static" / "monitor.css").read_bytes()),
}
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class _Listing(NamedTuple):
    rows: list[dict[str, Any]]
    total: int
    counts: list[dict[str, Any]]
    window: tuple[date, date]  # the trend's first and last day


def fmt_ts(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _form(query: FilterQuery, dag_id: str | None) -> dict[str, str]:
    """What the filter form shows (and the paging links carry): the query as given."""
    return {
        "error_code": query.error_code or "",
        "since": query.since or "",
        "until": query.until or "",
        "run_id": query.run_id or "",
        "state": query.state or "active",
        "dag_id": dag_id or "",
    }


def _listing(conn, run_dags: RunDags, filters: monitor.Filters, prefix: str) -> _Listing:
    """The page of failures matching `filters`, with the text and links the table shows."""
    result = monitor.list_failures(conn, filters)
    rows = annotate(result["failures"], run_dags)
    for row, raw in zip(rows, result["failures"], strict=True):
        row["first_seen_text"] = fmt_ts(raw["first_seen"])
        row["last_seen_text"] = fmt_ts(raw["last_seen"])
        row["download_url"] = f"{prefix}/download?" + urlencode({"bucket": raw["bucket"], "key": raw["key"]})
    return _Listing(
        rows=rows,
        total=result["total"],
        counts=monitor.counts_by_error_code(conn, filters),
        window=monitor.trend_window(filters.since, filters.until),
    )


def _page_url(prefix: str, form: dict[str, str], offset: int) -> str:
    params = {k: v for k, v in form.items() if v} | ({"offset": offset} if offset else {})
    return f"{prefix}/?{urlencode(params)}" if params else f"{prefix}/"


def render_page(conn, run_dags: RunDags, query: FilterQuery, dag_id: str | None, prefix: str) -> str:
    """The page for `query` (its limit is PAGE_SIZE). A bad filter shows as an error on the page; a
    DAG that is not an ingestion DAG (the run tab of another DAG) shows nothing."""
    query = query.for_page(PAGE_SIZE)
    form = _form(query, dag_id)
    error, filters = None, None
    try:
        filters = query.filters()
    except ValueError as err:
        error = str(err)
    is_imr_dag = dag_id in DAG_IDS if dag_id else True
    if filters is not None and is_imr_dag:
        listing = _listing(conn, run_dags, filters, prefix)
    else:
        listing = _Listing([], 0, [], monitor.trend_window(None, None))
    offset = query.offset
    # A DAG run's tab shows that run's progress only; another DAG's tab shows none.
    progress = page_section(conn, run_dags, prefix, query.run_id if dag_id else None) if is_imr_dag else None
    return TEMPLATES.get_template("monitor.html").render(
        prefix=prefix,
        form=form,
        error=error,
        rows=listing.rows,
        total=listing.total,
        offset=offset,
        limit=PAGE_SIZE,
        prev_url=_page_url(prefix, form, max(0, offset - PAGE_SIZE)) if offset else None,
        next_url=(
            _page_url(prefix, form, offset + PAGE_SIZE)
            if offset + len(listing.rows) < listing.total
            else None
        ),
        counts=counts_chart(listing.counts),
        trend=trend_chart(monitor.daily_trend(conn, *listing.window)),
        trend_first=listing.window[0].isoformat(),
        trend_last=listing.window[1].isoformat(),
        error_codes=monitor.error_codes(conn),
        runs=monitor.recent_runs(conn),
        states=list(monitor.STATE_FILTERS),
        dag_run_url=run_url(dag_id, query.run_id) if dag_id and query.run_id else None,
        is_imr_dag=is_imr_dag,
        progress=progress,
        reprocess_dag=DAG_REPROCESS,
        reprocess_dag_url=dag_url(DAG_REPROCESS),
        last_alerts=_last_alerts(conn, prefix),
    )


def _last_alerts(conn, prefix: str) -> list[dict]:
    """The last alert sent per DAG (imr.alerts_sent), with a link to the run's failures here."""
    return [
        {
            "dag_id": a.dag_id,
            "kind": a.kind,
            "run_id": a.run_id,
            "sent_at": a.sent_at.isoformat(timespec="seconds"),
            "channels": ", ".join(a.channels),
            "run_link": f"{prefix}/?{urlencode({'run_id': a.run_id, 'state': 'all'})}",
        }
        for a in alerts.last_alerts(conn)
    ]
