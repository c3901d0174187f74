"""The chart geometry of the Insights page (plugins/imr_monitor/insights_charts.py): pure functions,
no Airflow, no services. The numbers are worked out by hand from the module's constants."""

from __future__ import annotations

from imr_monitor import insights_charts as ic  # plugins/ (pytest's pythonpath, pyproject.toml)


def test_formats():
    assert (ic.pct(None), ic.pct(0.0), ic.pct(1 / 3), ic.pct(1.0)) == ("n/a", "0.0%", "33.3%", "100.0%")
    assert (ic.days(None), ic.days(30.0), ic.days(91.6)) == ("n/a", "30", "91.6")


def test_hbar_segments_side_by_side_small_ones_visible():
    chart = ic.hbar_chart(
        [
            ic.HBar("a", [ic.Segment(0.5, "x"), ic.Segment(0.25, "y")], "v", "t"),
            ic.HBar("b", [ic.Segment(0.001, "x"), ic.Segment(0.0, "y")], "w", "u", "opioid"),
        ],
        track=True,
    )
    a, b = chart["bars"]
    # 240 units of bar after a 260-unit label column.
    assert a["segments"] == [
        {"x": 260.0, "width": 120.0, "css": "x"},
        {"x": 380.0, "width": 60.0, "css": "y"},
    ]
    assert a["value_x"] == 260 + 120 + 60 + 6
    # 0.24 units is drawn 1 unit wide; an empty segment stays empty.
    assert b["segments"] == [{"x": 260.0, "width": 1.0, "css": "x"}, {"x": 261.0, "width": 0.0, "css": "y"}]
    assert (a["y"], b["y"], b["css"], chart["track"]) == (0, 22, "opioid", True)
    assert (chart["width"], chart["height"]) == (260 + 240 + 190, 44)
    assert ic.hbar_chart([])["height"] == 22


def test_long_labels_are_cut():
    longest_title = "MTUS: Forearm, Wrist, and Hand Complaints"
    assert ic.hbar_chart([ic.HBar(longest_title, [], "", "")])["bars"][0]["label"] == longest_title
    label = "Physical Therapy/Occupational Therapy (PT/OT)"
    [bar] = ic.hbar_chart([ic.HBar(label, [], "", label)])["bars"]
    assert len(bar["label"]) == 42 and bar["label"].endswith("\u2026") and bar["title"] == label


def cat(category, items, overturned):
    return {
        "category": category,
        "items": items,
        "overturned": overturned,
        "overturn_rate": overturned / items,
    }


def test_category_chart_is_a_rate_on_a_full_scale():
    chart = ic.category_chart([cat("Surgery", 12, 4), cat(None, 2, 0)])
    surgery, unclassified = chart["bars"]
    assert surgery["segments"][0]["width"] == round(240 * 4 / 12, 1)
    assert surgery["value"] == "33.3% (4 of 12)" and chart["track"] is True
    assert unclassified["label"] == "(not classified)" and unclassified["segments"][0]["width"] == 0.0


def test_drug_class_chart_scales_to_the_largest_share_and_marks_opioids():
    mix = {
        "drug_classes": [
            {"drug_class": "Opioids", "opioid": True, "items": 6, "share_of_pharmaceuticals": 0.6,
             "overturned": 1, "overturn_rate": 1 / 6},
            {"drug_class": "NSAID", "opioid": False, "items": 3, "share_of_pharmaceuticals": 0.3,
             "overturned": 0, "overturn_rate": 0.0},
        ]
    }  # fmt: skip
    opioids, nsaid = ic.drug_class_chart(mix)["bars"]
    assert (opioids["segments"][0], opioids["css"]) == (
        {"x": 260.0, "width": 240.0, "css": "bar-opioid"},
        "opioid",
    )
    assert (nsaid["segments"][0]["width"], nsaid["segments"][0]["css"], nsaid["css"]) == (
        120.0,
        "bar-pharma",
        "",
    )
    assert opioids["value"] == "60.0% (6)"


def test_guideline_chart_splits_upheld_and_overturned():
    use = {
        "guidelines": [
            {"family": "MTUS", "title": "Chronic Pain Medical Treatment", "items": 8, "upheld": 6,
             "overturned": 2, "overturn_rate": 0.25},
            {"family": "ODG", "title": None, "items": 2, "upheld": 0, "overturned": 2, "overturn_rate": 1.0},
        ]
    }  # fmt: skip
    mtus, odg = ic.guideline_chart(use)["bars"]
    assert mtus["label"] == "MTUS: Chronic Pain Medical Treatment"
    assert [s["width"] for s in mtus["segments"]] == [180.0, 60.0]
    assert [s["width"] for s in odg["segments"]] == [0.0, 60.0] and odg["label"] == "ODG"
    assert mtus["value"] == "8 items, 25.0% overturned"
    one = {"family": "ACOEM", "title": None, "items": 1, "upheld": 1, "overturned": 0, "overturn_rate": 0.0}
    assert ic.guideline_chart({"guidelines": [one]})["bars"][0]["value"] == "1 item, 0.0% overturned"


def test_histogram_stacks_expedited_and_draws_the_30_day_line_on_a_bin_edge():
    bins = [{"label": str(i), "letters": 0, "expedited": 0} for i in range(19)]
    bins[0] = {"label": "<= 5", "letters": 4, "expedited": 1}
    bins[6] = {"label": "31-35", "letters": 2, "expedited": 0}
    chart = ic.histogram_chart({"bins": bins, "bin_days": 5, "limit_days": 30})
    # Plot area: 680 - 40 - 12 = 628 wide, 210 - 22 - 34 = 154 high, baseline at 176.
    group = 628 / 19
    first = chart["bars"][0]
    assert (first["h_expedited"], first["height"]) == (38.5, 115.5)  # 154 / 4 and 3 * 154 / 4
    assert (first["y_expedited"], first["y"]) == (137.5, 22.0)
    assert chart["bars"][6]["height"] == 77.0 and chart["bars"][6]["x"] == round(40 + 6 * group + 1, 1)
    # 30 days: the edge after bin 5 ("26-30"), i.e. before bin 6.
    assert chart["limit_x"] == round(40 + 6 * group, 1) and chart["limit"] == 30
    assert [t["label"] for t in chart["ticks"]] == [str(d) for d in range(10, 91, 10)]
    assert (chart["top"], chart["base_y"]) == (4, 176)
