"""The chart geometry of the monitor page (plugins/imr_monitor/charts.py): pure functions, no Airflow,
no services. Each test states numbers worked out by hand from the chart's constants."""

from __future__ import annotations

import pytest
from imr_monitor import charts  # plugins/ (pytest's pythonpath, pyproject.toml)


def code(error_code: str, count: int, open_: int = 0, queued: int = 0, resolved: int = 0) -> dict:
    return {"error_code": error_code, "count": count, "open": open_, "queued": queued, "resolved": resolved}


def day(iso: str, loaded: int, quarantined: int) -> dict:
    return {"day": iso, "loaded": loaded, "quarantined": quarantined}


# --------------------------------------------------------------------------- objects per error code


def test_counts_chart_scales_bars_to_the_largest_count():
    chart = charts.counts_chart([code("not_pdf", 40, 30, 10), code("timeout", 10, 10), code("encrypted", 1)])
    bars = chart["bars"]
    assert [b["label"] for b in bars] == ["not_pdf", "timeout", "encrypted"]
    assert [b["value"] for b in bars] == [40, 10, 1]
    # 230 units for the largest; 230 * 10 / 40 = 57.5; 230 / 40 = 5.75 -> 5.8 (one decimal).
    assert [b["width"] for b in bars] == [230, 57.5, 5.8]
    # One 22-unit row per code.
    assert [b["y"] for b in bars] == [0, 22, 44]
    assert chart["height"] == 66 and chart["width"] == 170 + 230 + 50
    assert (chart["label_w"], chart["row_h"]) == (170, 22)


def test_counts_chart_keeps_tiny_bars_visible():
    chart = charts.counts_chart([code("big", 10_000), code("tiny", 1), code("none", 0)])
    # 230 / 10000 = 0.023 and 0 would vanish: every bar is at least 1 unit wide.
    assert [b["width"] for b in chart["bars"]] == [230, 1.0, 1.0]


def test_counts_chart_titles_break_the_count_down_by_state():
    [bar] = charts.counts_chart([code("pdf_error", 6, 3, 2, 1)])["bars"]
    assert bar["title"] == "pdf_error: 6 object(s) (3 open, 2 queued, 1 resolved)"


def test_counts_chart_without_failures():
    chart = charts.counts_chart([])
    assert chart["bars"] == []
    # The SVG keeps one row's height rather than collapsing to zero.
    assert chart["height"] == 22


# --------------------------------------------------------------------------- loaded / quarantined per day


def test_trend_chart_bar_heights_and_positions():
    chart = charts.trend_chart([day("2026-01-10", 10, 5), day("2026-01-11", 0, 20)])
    # Plot area: 170 high minus 22 (labels) minus 8 (top margin) = 140; its base at y = 148.
    assert chart["base_y"] == 148 and chart["top"] == 20
    # Two days over 640 - 36 = 604 units: 302 per day, bars 0.38 of that.
    assert chart["bar"] == round(302 * 0.38, 1)
    first, second = chart["days"]
    # Heights scale to the largest value of either kind (20): 10 -> 70, 5 -> 35, 20 -> 140.
    assert (first["h_loaded"], first["h_quarantined"]) == (70, 35)
    assert (second["h_loaded"], second["h_quarantined"]) == (0, 140)
    # Every bar stands on the base line.
    for d in chart["days"]:
        assert d["y_loaded"] + d["h_loaded"] == pytest.approx(148)
        assert d["y_quarantined"] + d["h_quarantined"] == pytest.approx(148)
    # Loaded first, quarantined right next to it; the day's slot starts 10% in.
    assert first["x_loaded"] == round(36 + 302 * 0.1, 1)
    assert first["x_quarantined"] == round(36 + 302 * 0.1 + 302 * 0.38, 1)
    assert second["x_loaded"] == round(36 + 302 + 302 * 0.1, 1)
    assert (first["label_x"], second["label_x"]) == (36 + 151, 36 + 302 + 151)
    assert first["title"] == "2026-01-10: 10 loaded, 5 quarantined"


def test_trend_chart_labels_at_most_about_eight_days():
    days = [day(f"2026-01-{d:02d}", d, 0) for d in range(1, 15)]  # 14 days: every 2nd labelled
    labels = [d["label"] for d in charts.trend_chart(days)["days"]]
    assert labels[::2] == ["01-01", "01-03", "01-05", "01-07", "01-09", "01-11", "01-13"]
    assert labels[1::2] == [""] * 7
    few = charts.trend_chart([day("2026-02-01", 1, 1), day("2026-02-02", 1, 1)])["days"]
    assert [d["label"] for d in few] == ["02-01", "02-02"]  # up to 8 days: every day
    year = charts.trend_chart([day(f"2026-01-{d % 28 + 1:02d}", 0, 0) for d in range(366)])["days"]
    assert sum(1 for d in year if d["label"]) == 8  # ceil(366 / 8) = 46: days 0, 46, ..., 322


def test_trend_chart_with_nothing_to_show():
    quiet = charts.trend_chart([day("2026-01-10", 0, 0), day("2026-01-11", 0, 0)])
    # No division by zero: the scale's top is 1 and every bar is flat on the base line.
    assert quiet["top"] == 1
    assert all(d["h_loaded"] == d["h_quarantined"] == 0 for d in quiet["days"])
    assert all(d["y_loaded"] == d["y_quarantined"] == 148 for d in quiet["days"])
    empty = charts.trend_chart([])
    assert empty["days"] == [] and empty["top"] == 1 and empty["bar"] == round(604 * 0.38, 1)


def test_trend_bars_stay_visible_when_days_are_many():
    chart = charts.trend_chart([day("2026-01-01", 1, 1)] * 5000)
    # 604 / 5000 * 0.38 is a fraction of a unit: bars are at least 1 unit wide.
    assert chart["bar"] == 1.0
