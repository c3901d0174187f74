"""The "IMR Insights" page and its JSON API, on their own APIRouter (included by app.py): figures of
the analytics views (imr.read.insights) for the letters decided in a date range.

    GET /insights/                       the HTML page (query: from, to)
    GET /insights/static/insights.css    its style sheet (the monitor's is shared)
    GET /api/insights/categories         overturn rate by request category, and the totals
    GET /api/insights/pharmaceuticals    pharmaceutical share, drug class mix, opioids apart
    GET /api/insights/guidelines         the expert reviewers' guidelines with their overturn rate
    GET /api/insights/timeliness         days application -> decision: histogram, median, p90
    GET /api/insights/labels             items per label basis, the requests most often labelled
                                         by default (query: top, 1..100)

`from` and `to` (YYYY-MM-DD, both inclusive, either may be left out) bound the letters'
decision_date; a bad value is a 422 from the API and a message on the page. Every route needs what
the monitor's reading needs (security.can_read). The page is rendered on the server with inline SVG
and needs no script.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from imr.read import insights

from .deps import Warehouse
from .insights_charts import (
    UNCLASSIFIED,
    category_chart,
    days,
    drug_class_chart,
    guideline_chart,
    guideline_label,
    histogram_chart,
    pct,
)
from .page import TEMPLATES
from .routes import static_file
from .security import can_read

HERE = Path(__file__).resolve().parent
STATIC = {"insights.css": ("text/css; charset=utf-8", (HERE / "static" / "insights.css").read_bytes())}

router = APIRouter()


@dataclass(frozen=True)
class RangeQuery:
    """The decision-date filter's query parameters, as given (the page's form echoes them)."""

    decided_from: Annotated[
        str | None, Query(alias="from", max_length=40, description="YYYY-MM-DD, inclusive")
    ] = None
    decided_to: Annotated[
        str | None, Query(alias="to", max_length=40, description="YYYY-MM-DD, inclusive")
    ] = None

    def decision_range(self) -> insights.DecisionRange:
        """Raises ValueError for a value that is not a date or a range that ends before it starts."""
        return insights.DecisionRange.parse(self.decided_from, self.decided_to)


RangeQueryDep = Annotated[RangeQuery, Depends()]


def api_range(query: RangeQueryDep) -> insights.DecisionRange:
    """The JSON API's range: a bad value is a 422."""
    try:
        return query.decision_range()
    except ValueError as err:
        raise HTTPException(422, str(err)) from err


Range = Annotated[insights.DecisionRange, Depends(api_range)]


@router.get("/api/insights/categories", dependencies=[can_read])
def api_categories(rng: Range, conn: Warehouse) -> JSONResponse:
    """GET /api/insights/categories: totals and overturn rate per category."""
    return JSONResponse(
        {
            **rng.as_json(),
            **insights.totals(conn, rng),
            "categories": insights.overturn_by_category(conn, rng),
        }
    )


@router.get("/api/insights/pharmaceuticals", dependencies=[can_read])
def api_pharmaceuticals(rng: Range, conn: Warehouse) -> JSONResponse:
    """GET /api/insights/pharmaceuticals: the pharmaceutical mix."""
    return JSONResponse({**rng.as_json(), **insights.pharmaceutical_mix(conn, rng)})


@router.get("/api/insights/guidelines", dependencies=[can_read])
def api_guidelines(rng: Range, conn: Warehouse) -> JSONResponse:
    """GET /api/insights/guidelines: the guidelines the reviewers cited."""
    return JSONResponse({**rng.as_json(), **insights.guideline_use(conn, rng)})


@router.get("/api/insights/timeliness", dependencies=[can_read])
def api_timeliness(rng: Range, conn: Warehouse) -> JSONResponse:
    """GET /api/insights/timeliness: days from application to decision."""
    return JSONResponse({**rng.as_json(), **insights.timeliness(conn, rng)})


@router.get("/api/insights/labels", dependencies=[can_read])
def api_labels(
    rng: Range,
    conn: Warehouse,
    top: Annotated[
        int,
        Query(ge=1, le=insights.DEFAULT_REQUESTS_MAX, description="how many default-labelled requests"),
    ] = insights.DEFAULT_REQUESTS_TOP,
) -> JSONResponse:
    """GET /api/insights/labels: the share of items per label basis and the requests the classifier
    labelled by default, the most frequent first."""
    return JSONResponse({**rng.as_json(), **insights.label_basis(conn, rng, top)})


@router.get("/insights/static/{name}", dependencies=[can_read])
def insights_static(name: str) -> Response:
    """GET /insights/static/NAME: the page's own static files."""
    return static_file(STATIC, name)


def _guideline_rows(use: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows: each family, and under MTUS its titles (indented)."""
    rows = []
    for family in use["families"]:
        rows.append({**family, "label": family["family"], "css": "family"})
        rows += [
            {**g, "label": g["title"], "css": "title"}
            for g in use["guidelines"]
            if g["family"] == family["family"] and g["title"]
        ]
    return rows


def insights_view(conn, rng: insights.DecisionRange) -> dict[str, Any]:
    """Everything the page shows for the range: the figures, the charts' geometry, the table rows."""
    mix = insights.pharmaceutical_mix(conn, rng)
    use = insights.guideline_use(conn, rng)
    timing = insights.timeliness(conn, rng)
    categories = insights.overturn_by_category(conn, rng)
    return {
        "totals": insights.totals(conn, rng),
        "categories": categories,
        "category_chart": category_chart(categories),
        "mix": mix,
        "drug_class_chart": drug_class_chart(mix),
        "use": use,
        "guideline_rows": _guideline_rows(use),
        "guideline_chart": guideline_chart(use),
        "timing": timing,
        "histogram": histogram_chart(timing),
        "labels": insights.label_basis(conn, rng),
    }


def render_insights(conn, query: RangeQuery, prefix: str) -> str:
    """The page for the query's range; a bad range shows as an error and no figures."""
    error, view = None, None
    try:
        view = insights_view(conn, query.decision_range())
    except ValueError as err:
        error = str(err)
    return TEMPLATES.get_template("insights.html").render(
        prefix=prefix,
        form={"from": query.decided_from or "", "to": query.decided_to or ""},
        error=error,
        view=view,
        unclassified=UNCLASSIFIED,
        pct=pct,
        days=days,
        guideline_label=guideline_label,
    )


@router.get("/insights/", dependencies=[can_read], response_class=HTMLResponse)
def insights_page(request: Request, conn: Warehouse, query: RangeQueryDep) -> HTMLResponse:
    """GET /insights: the Insights page for the requested range."""
    prefix = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(render_insights(conn, query, prefix))
