"""The geometry of the Insights page's inline-SVG charts (templates/insights.html), as plain data.
Pure functions: the dicts of imr.read.insights in, coordinates and texts out.

Three charts are horizontal bars, one row per category / drug class / guideline, drawn by one
template macro from `hbar_chart`; the fourth is the histogram of days to decision with the
30-day line."""

from __future__ import annotations

from typing import Any, NamedTuple

# Horizontal bars: a label column, the bar area, then the value text.
ROW_H, LABEL_W, BAR_W, VALUE_W = 22, 260, 240, 190
# Labels longer than this are cut (the full text is the bar's tooltip and is in the table); the
# longest MTUS title, "MTUS: Forearm, Wrist, and Hand Complaints", fits.
LABEL_CHARS = 42
# Histogram: the SVG's size and margins (left: the y-axis labels; bottom: the day ticks).
HIST_W, HIST_H, HIST_LEFT, HIST_RIGHT, HIST_TOP, HIST_BOTTOM = 680, 210, 40, 12, 22, 34
# Every n-th bin edge carries its day number.
HIST_TICK_EVERY = 2

UNCLASSIFIED = "(not classified)"


def pct(value: float | None) -> str:
    """A rate 0..1 as the page writes it: one decimal, "n/a" without a denominator."""
    return "n/a" if value is None else f"{value:.1%}"


def days(value: float | None) -> str:
    """Days as the page writes them (percentiles may be fractional)."""
    return "n/a" if value is None else f"{value:g}"


def _fit(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + "\u2026"


class Segment(NamedTuple):
    """One part of a stacked bar: its width share and CSS class."""

    fraction: float  # of the full bar width, 0..1
    css: str


class HBar(NamedTuple):
    """A horizontal bar: its label, segments and the value shown right of it."""

    label: str
    segments: list[Segment]
    value: str  # the text right of the bar
    title: str  # the tooltip
    css: str = ""  # extra class of the row (a highlighted drug class)


def hbar_chart(rows: list[HBar], *, track: bool = False) -> dict[str, Any]:
    """One row per HBar: its segments side by side from the left edge of the bar area (a segment
    that is not empty is at least 1 unit wide, so a small count stays visible). `track` draws the
    full bar width behind (for rates, whose scale is 0..100%)."""
    bars = []
    for i, row in enumerate(rows):
        x = float(LABEL_W)
        segments = []
        for seg in row.segments:
            width = max(1.0, round(BAR_W * seg.fraction, 1)) if seg.fraction > 0 else 0.0
            segments.append({"x": round(x, 1), "width": width, "css": seg.css})
            x += width
        bars.append(
            {
                "label": _fit(row.label),
                "y": i * ROW_H,
                "segments": segments,
                "value": row.value,
                "value_x": round(x + 6, 1),
                "title": row.title,
                "css": row.css,
            }
        )
    return {
        "bars": bars,
        "track": track,
        "label_w": LABEL_W,
        "bar_w": BAR_W,
        "row_h": ROW_H,
        "width": LABEL_W + BAR_W + VALUE_W,
        "height": max(ROW_H, len(bars) * ROW_H),
    }


def category_chart(categories: list[dict[str, Any]]) -> dict[str, Any]:
    """Overturn rate per category, on a 0..100% scale."""
    rows = []
    for c in categories:
        name = c["category"] or UNCLASSIFIED
        rate = c["overturn_rate"] or 0.0
        text = f"{pct(c['overturn_rate'])} ({c['overturned']} of {c['items']})"
        rows.append(HBar(name, [Segment(rate, "bar-overturned")], text, f"{name}: {text} overturned"))
    return hbar_chart(rows, track=True)


def drug_class_chart(mix: dict[str, Any]) -> dict[str, Any]:
    """Each drug class's share of the pharmaceutical items, the largest share the full width; the
    opioids drawn in their own colour."""
    classes = mix["drug_classes"]
    top = max((c["share_of_pharmaceuticals"] or 0.0 for c in classes), default=0.0) or 1.0
    rows = []
    for c in classes:
        name = c["drug_class"] or UNCLASSIFIED
        share = c["share_of_pharmaceuticals"] or 0.0
        css = "opioid" if c["opioid"] else ""
        text = f"{pct(c['share_of_pharmaceuticals'])} ({c['items']})"
        title = (
            f"{name}: {c['items']} item(s), {pct(share)} of pharmaceuticals,"
            f" {pct(c['overturn_rate'])} overturned"
        )
        rows.append(
            HBar(name, [Segment(share / top, "bar-opioid" if css else "bar-pharma")], text, title, css)
        )
    return hbar_chart(rows)


def guideline_label(row: dict[str, Any]) -> str:
    """A guideline's label: the family, and the title for MTUS.

    :param row: a guideline row of `imr.read.insights.guideline_use`.
    :return: the label.
    """
    return f"{row['family']}: {row['title']}" if row.get("title") else row["family"]


def guideline_chart(use: dict[str, Any]) -> dict[str, Any]:
    """Items citing each guideline (family, or MTUS title), split into upheld and overturned; the
    most cited the full width."""
    guidelines = use["guidelines"]
    top = max((g["items"] for g in guidelines), default=0) or 1
    rows = []
    for g in guidelines:
        name = guideline_label(g)
        text = f"{g['items']} item{'' if g['items'] == 1 else 's'}, {pct(g['overturn_rate'])} overturned"
        segments = [
            Segment(g["upheld"] / top, "bar-upheld"),
            Segment(g["overturned"] / top, "bar-overturned"),
        ]
        rows.append(HBar(name, segments, text, f"{name}: {g['upheld']} upheld, {g['overturned']} overturned"))
    return hbar_chart(rows)


def histogram_chart(timeliness: dict[str, Any]) -> dict[str, Any]:
    """Letters per bin of days application -> decision, expedited ones stacked on top of the
    others; a dashed line where the days pass `limit_days` (the bins' edges fall on it)."""
    bins = timeliness["bins"]
    width, limit = timeliness["bin_days"], timeliness["limit_days"]
    plot_w, plot_h = HIST_W - HIST_LEFT - HIST_RIGHT, HIST_H - HIST_TOP - HIST_BOTTOM
    group = plot_w / max(1, len(bins))
    top = max((b["letters"] for b in bins), default=0) or 1
    base = HIST_TOP + plot_h
    out = []
    for i, b in enumerate(bins):
        h_all = plot_h * b["letters"] / top
        h_exp = plot_h * b["expedited"] / top
        out.append(
            {
                "x": round(HIST_LEFT + i * group + 1, 1),
                "width": round(max(1.0, group - 2), 1),
                "y": round(base - h_all, 1),
                "height": round(h_all - h_exp, 1),
                "y_expedited": round(base - h_exp, 1),
                "h_expedited": round(h_exp, 1),
                "title": f"{b['label']} days: {b['letters']} letter(s), {b['expedited']} expedited",
            }
        )
    # Bin i ends on day (i + 1) * width; the edge after it is at x = left + (i + 1) * group.
    ticks = [
        {"x": round(HIST_LEFT + (i + 1) * group, 1), "label": str((i + 1) * width)}
        for i in range(len(bins) - 1)
        if (i + 1) % HIST_TICK_EVERY == 0
    ]
    return {
        "bars": out,
        "ticks": ticks,
        "limit_x": round(HIST_LEFT + (limit // width) * group, 1),
        "limit": limit,
        "width": HIST_W,
        "height": HIST_H,
        "left": HIST_LEFT,
        "right": HIST_W - HIST_RIGHT,
        "top_y": HIST_TOP,
        "base_y": base,
        "top": top,
    }
