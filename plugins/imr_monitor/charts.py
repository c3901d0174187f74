"""The geometry of the page's two inline-SVG charts (objects per error code; loaded and quarantined
objects per day), as plain data for templates/monitor.html. Pure functions: rows in, numbers out."""

from __future__ import annotations

from math import ceil
from typing import Any, NamedTuple

# Bar chart of objects per error code: one row per code, a label column, then the bar.
COUNTS_ROW_H, COUNTS_LABEL_W, COUNTS_BAR_W = 22, 170, 230
# Daily trend: the SVG's size, the left margin (the y-axis labels) and the bottom margin (day labels).
TREND_W, TREND_H, TREND_LEFT, TREND_BOTTOM, TREND_TOP = 640, 170, 36, 22, 8
# At most about this many day labels under the trend, whatever the number of days.
TREND_LABELS = 8


def counts_chart(counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars, one per {"error_code", "count", "open", "queued", "resolved"}: the widest
    bar is the largest count; every bar is at least 1 unit wide so a small count stays visible."""
    top = max((c["count"] for c in counts), default=0) or 1
    bars = [
        {
            "label": c["error_code"],
            "value": c["count"],
            "y": i * COUNTS_ROW_H,
            "width": max(1.0, round(COUNTS_BAR_W * c["count"] / top, 1)),
            "title": f"{c['error_code']}: {c['count']} object(s)"
            f" ({c['open']} open, {c['queued']} queued, {c['resolved']} resolved)",
        }
        for i, c in enumerate(counts)
    ]
    return {
        "bars": bars,
        "label_w": COUNTS_LABEL_W,
        "height": max(COUNTS_ROW_H, len(bars) * COUNTS_ROW_H),
        "width": COUNTS_LABEL_W + COUNTS_BAR_W + 50,
        "row_h": COUNTS_ROW_H,
    }


class _TrendScale(NamedTuple):
    group: float  # width of one day's slot
    bar: float  # width of one bar
    plot_h: float  # height of the plot area (the largest value's bar)
    top: int  # the largest value
    step: int  # every step-th day is labelled


def _trend_day(i: int, d: dict[str, Any], s: _TrendScale) -> dict[str, Any]:
    """One day's pair of bars (loaded, then quarantined) in the i-th slot."""
    x = TREND_LEFT + i * s.group + s.group * 0.1
    hl = s.plot_h * d["loaded"] / s.top
    hq = s.plot_h * d["quarantined"] / s.top
    return {
        "x_loaded": round(x, 1),
        "x_quarantined": round(x + s.bar, 1),
        "y_loaded": round(TREND_TOP + s.plot_h - hl, 1),
        "y_quarantined": round(TREND_TOP + s.plot_h - hq, 1),
        "h_loaded": round(hl, 1),
        "h_quarantined": round(hq, 1),
        "label": d["day"][5:] if i % s.step == 0 else "",
        "label_x": round(TREND_LEFT + i * s.group + s.group / 2, 1),
        "title": f"{d['day']}: {d['loaded']} loaded, {d['quarantined']} quarantined",
    }


def trend_chart(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Paired vertical bars per {"day": "YYYY-MM-DD", "loaded", "quarantined"}: heights scaled to the
    largest value of either kind, every `ceil(n / 8)`-th day labelled (MM-DD)."""
    plot_h = TREND_H - TREND_BOTTOM - TREND_TOP
    n = max(1, len(days))
    group = (TREND_W - TREND_LEFT) / n
    bar = max(1.0, group * 0.38)
    top = max((max(d["loaded"], d["quarantined"]) for d in days), default=0) or 1
    scale = _TrendScale(group, bar, plot_h, top, ceil(n / TREND_LABELS))
    return {
        "days": [_trend_day(i, d, scale) for i, d in enumerate(days)],
        "bar": round(bar, 1),
        "width": TREND_W,
        "height": TREND_H,
        "left": TREND_LEFT,
        "base_y": TREND_TOP + plot_h,
        "top": top,
    }
