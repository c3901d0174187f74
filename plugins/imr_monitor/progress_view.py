"""The "Runs in progress" section of the page and GET /api/progress: imr.read.progress's active runs with
their DAG and a link to the run, the texts the section shows and the geometry of its progress bar.
The page renders the section on the server; static/progress.js polls the same view as JSON and
writes its texts and bar into the section, so the two never disagree on how a number reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from imr.read import progress

from .links import RunDags, run_url

# The page's rate window: "letters/s over the last 5 minutes".
WINDOW_S = 300.0
BAR_WIDTH = 600
# Left to right: what is done, then what remains (being worked by a lane, waiting for one).
BAR_SEGMENTS = ("loaded", "duplicate", "quarantined", "pending", "in_lanes", "waiting")
SEGMENT_TITLES = {
    "loaded": "loaded",
    "duplicate": "duplicate",
    "quarantined": "quarantined",
    "pending": "back to pending",
    "in_lanes": "processing, in a lane now",
    "waiting": "processing, waiting for a lane",
}


def _fmt_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    return value.astimezone(UTC).strftime(fmt) if value else ""


def _window_text(p: progress.RunProgress, window_s: float) -> str:
    if p.window_s < window_s:
        return f"since the start ({progress.format_duration(p.window_s)})"
    if window_s % 60 == 0:
        return f"last {window_s / 60:g} min"
    return f"last {progress.format_duration(window_s)}"


def _num(value: float) -> float | int:
    """An SVG coordinate: two decimals, no ".0"."""
    value = round(value, 2)
    return int(value) if value.is_integer() else value


def bar(p: progress.RunProgress, width: int = BAR_WIDTH) -> list[dict[str, Any]]:
    """The stacked bar: one segment per BAR_SEGMENTS (width 0 when empty), proportional to the
    run's keys, with what each holds as its title."""
    sizes = dict(p.counts)
    sizes["in_lanes"] = p.in_lanes
    sizes["waiting"] = p.counts["processing"] - p.in_lanes
    x = 0.0
    out = []
    for state in BAR_SEGMENTS:
        w = width * sizes[state] / p.total if p.total else 0.0
        out.append(
            {
                "state": state,
                "x": _num(x),
                "width": _num(w),
                "title": f"{SEGMENT_TITLES[state]}: {sizes[state]:,}",
            }
        )
        x += w
    return out


def _texts(p: progress.RunProgress, dag_id: str | None, window_s: float) -> dict[str, str]:
    """Every text of the section for one run, keyed by the data-field names of the template."""
    texts = {state: f"{n:,}" for state, n in p.counts.items()}
    eta_at = p.eta_at
    texts.update(
        {
            "run_id": p.run_id,
            "dag_id": dag_id or "",
            "started": _fmt_time(p.started_at),
            "percent": f"{p.fraction:.1%}",
            "done": f"{p.done:,} of {p.total:,}",
            "total": f"{p.total:,}",
            "in_lanes": f"{p.in_lanes:,}",
            "batches": (
                f"{p.batches['finished']:,} of {p.batches['total']:,} batches finished, "
                f"{p.batches['in_lanes']:,} in lanes, {p.batches['waiting']:,} waiting"
            ),
            "rate": progress.format_rate(p.rate_per_s),
            "window": _window_text(p, window_s),
            "eta": progress.format_duration(p.eta_s) if p.eta_s is not None else "no letter finished lately",
            "eta_at": f"around {_fmt_time(eta_at, '%H:%M UTC')}" if eta_at else "",
            "as_of": _fmt_time(p.as_of),
        }
    )
    return texts


def progress_view(
    conn, run_dags: RunDags, window_s: float = WINDOW_S, run_id: str | None = None
) -> dict[str, Any]:
    """{"as_of", "window_s", "runs": [RunProgress.as_dict() + dag_id, run_url, text, bar]}: the
    JSON of GET /api/progress and what the page's section renders."""
    runs = progress.active_runs_progress(conn, window_s, run_id=run_id)
    dags = run_dags(p.run_id for p in runs) if runs else {}
    out = []
    for p in runs:
        dag_id = dags.get(p.run_id)
        row = p.as_dict()
        row["dag_id"] = dag_id
        row["run_url"] = run_url(dag_id, p.run_id) if dag_id else None
        row["text"] = _texts(p, dag_id, window_s)
        row["bar"] = bar(p)
        out.append(row)
    as_of = runs[0].as_of if runs else datetime.now(UTC)
    return {"as_of": as_of.isoformat(), "as_of_text": _fmt_time(as_of), "window_s": window_s, "runs": out}


def _blank_run() -> dict[str, Any]:
    """A run with empty texts and an empty bar: the <template> static/progress.js clones for a run
    that starts while the page is open."""
    return {
        "run_id": "",
        "run_url": None,
        "text": {},
        "bar": [{"state": s, "x": 0, "width": 0, "title": SEGMENT_TITLES[s]} for s in BAR_SEGMENTS],
    }


def page_section(conn, run_dags: RunDags, prefix: str, run_id: str | None = None) -> dict[str, Any]:
    """What templates/progress.html renders: the view, plus the URL the script polls (the same
    run filter: a DAG run's tab shows that run only) and the template's blank run."""
    view = progress_view(conn, run_dags, WINDOW_S, run_id)
    query = "?" + urlencode({"run_id": run_id}) if run_id else ""
    return view | {"url": f"{prefix}/api/progress{query}", "blank": _blank_run(), "bar_width": BAR_WIDTH}
