"""The Insights queries (imr.read.insights) on letters built here with chosen categories, decisions,
citations and dates, loaded by the loader: exact counts and rates, with and without a
decision-date range, and the same figures as the analytics views (0006) when the range is open.

The letters are tests/support/insights_letters.py's, shared with test_insights_api.py."""

from __future__ import annotations

from datetime import date

import pytest

from imr.read.insights import (
    DEFAULT_REQUESTS_MAX,
    DecisionRange,
    guideline_use,
    label_basis,
    overturn_by_category,
    pharmaceutical_mix,
    timeliness,
    totals,
)
from support.builders import rows
from support.insights_letters import load_letters

pytestmark = pytest.mark.integration

ORTHO, PAIN = "Orthopaedic Surgery", "Pain Management"

# Decided 2016-02-10 .. 2016-04-01, both bounds on a letter's date: CM16-0000502, -503, -504.
SPRING = DecisionRange(date(2016, 2, 10), date(2016, 4, 1))
MTUS_CPMT = "Chronic Pain Medical Treatment"


@pytest.fixture
def loaded(wh_conn):
    load_letters(wh_conn)
    return wh_conn


def cat(category, items, upheld, overturned) -> dict:
    return {
        "category": category,
        "items": items,
        "upheld": upheld,
        "overturned": overturned,
        "overturn_rate": overturned / items,
    }


def drug(drug_class, items, pharma, overturned) -> dict:
    return {
        "drug_class": drug_class,
        "opioid": drug_class == "Opioids",
        "items": items,
        "share_of_pharmaceuticals": items / pharma,
        "overturned": overturned,
        "overturn_rate": overturned / items,
    }


def cited(n, of, upheld, overturned, family, title=None) -> dict:
    row = {
        "family": family,
        "items": n,
        "share_of_items": n / of,
        "upheld": upheld,
        "overturned": overturned,
        "overturn_rate": overturned / n,
    }
    return row if title is False else row | {"title": title}


# --------------------------------------------------------------------------- every letter


def test_totals(loaded):
    assert totals(loaded, DecisionRange()) == {"letters": 6, "items": 11}
    assert totals(loaded, SPRING) == {"letters": 3, "items": 5}


def test_overturn_by_category(loaded):
    # The most disputed first; ties by name, the unclassified items last.
    assert overturn_by_category(loaded, DecisionRange()) == [
        cat("Pharmaceuticals", 5, 3, 2),
        cat("Diagnostic Testing", 2, 1, 1),
        cat("Rehabilitation", 2, 1, 1),
        cat("Surgery", 1, 0, 1),
        cat(None, 1, 1, 0),
    ]


def test_pharmaceutical_mix(loaded):
    assert pharmaceutical_mix(loaded, DecisionRange()) == {
        "items": 11,
        "pharmaceutical_items": 5,
        "pharmaceutical_share": 5 / 11,
        "opioid_items": 3,
        "opioid_share_of_pharmaceuticals": 3 / 5,
        "drug_classes": [drug("Opioids", 3, 5, 2), drug("Muscle Relaxant", 1, 5, 0), drug("NSAID", 1, 5, 0)],
    }


def test_guideline_use(loaded):
    # Expert reviewer only (the claims administrator's ODG on CM16-0000502/1 does not count); an
    # item citing one MTUS title twice counts once for it, one citing two titles once for MTUS.
    assert guideline_use(loaded, DecisionRange()) == {
        "items": 11,
        "items_citing": 9,
        "families": [
            cited(5, 11, 3, 2, "MTUS", title=False),
            cited(3, 11, 0, 3, "ODG", title=False),
            cited(2, 11, 1, 1, "ACOEM", title=False),
        ],
        "guidelines": [
            cited(4, 11, 3, 1, "MTUS", MTUS_CPMT),
            cited(3, 11, 0, 3, "ODG"),
            cited(2, 11, 1, 1, "ACOEM"),
            cited(2, 11, 0, 2, "MTUS", "Opioid Treatment"),
        ],
    }


def bins(counts: dict[int, tuple[int, int]]) -> list[tuple[str, int, int]]:
    """The 19 bins' (label, letters, expedited), zero except for `counts` {index: (letters, expedited)}."""
    labels = ["<= 5", *(f"{5 * i + 1}-{5 * i + 5}" for i in range(1, 18)), "> 90"]
    return [(label, *counts.get(i, (0, 0))) for i, label in enumerate(labels)]


def test_timeliness(loaded):
    t = timeliness(loaded, DecisionRange())
    assert (t["bin_days"], t["limit_days"]) == (5, 30)
    # 3 days (expedited) -> "<= 5"; 26 and 30 -> "26-30"; 40 -> "36-40"; 126 -> "> 90".
    assert [(b["label"], b["letters"], b["expedited"]) for b in t["bins"]] == bins(
        {0: (1, 1), 5: (2, 0), 7: (1, 0), 18: (1, 0)}
    )
    assert (t["bins"][5]["first_day"], t["bins"][5]["last_day"]) == (26, 30)
    assert (t["bins"][0]["first_day"], t["bins"][18]["last_day"]) == (None, None)
    # All: [3, 26, 30, 40, 126]; p90 (continuous) = 40 + 0.6 * 86. Standard: [26, 30, 40, 126].
    assert t["all"] == {
        "letters": 6,
        "letters_with_dates": 5,
        "median_days": 30.0,
        "p90_days": pytest.approx(91.6),
        "over_30_days": 2,
        "share_over_30_days": 2 / 5,
    }
    assert t["by_priority"] == [
        {
            "priority": "Expedited",
            "letters": 1,
            "letters_with_dates": 1,
            "median_days": 3.0,
            "p90_days": 3.0,
            "over_30_days": 0,
            "share_over_30_days": 0.0,
        },
        {
            "priority": "Standard",
            "letters": 5,
            "letters_with_dates": 4,
            "median_days": 35.0,
            "p90_days": pytest.approx(100.2),
            "over_30_days": 2,
            "share_over_30_days": 2 / 4,
        },
    ]


# --------------------------------------------------------------------------- a decision-date range


def test_range_excludes_letters_decided_outside_it(loaded):
    assert overturn_by_category(loaded, SPRING) == [
        cat("Pharmaceuticals", 3, 2, 1),
        cat("Rehabilitation", 1, 0, 1),
        cat("Surgery", 1, 0, 1),
    ]
    mix = pharmaceutical_mix(loaded, SPRING)
    assert (mix["items"], mix["pharmaceutical_items"], mix["opioid_items"]) == (5, 3, 1)
    assert (mix["pharmaceutical_share"], mix["opioid_share_of_pharmaceuticals"]) == (3 / 5, 1 / 3)
    assert mix["drug_classes"] == [
        drug("Muscle Relaxant", 1, 3, 0),
        drug("NSAID", 1, 3, 0),
        drug("Opioids", 1, 3, 1),
    ]
    use = guideline_use(loaded, SPRING)
    assert (use["items"], use["items_citing"]) == (5, 4)
    assert use["families"] == [
        cited(2, 5, 1, 1, "MTUS", title=False),
        cited(2, 5, 0, 2, "ODG", title=False),
        cited(1, 5, 0, 1, "ACOEM", title=False),
    ]
    assert use["guidelines"] == [
        cited(2, 5, 0, 2, "ODG"),
        cited(1, 5, 0, 1, "ACOEM"),
        cited(1, 5, 1, 0, "MTUS", MTUS_CPMT),
        cited(1, 5, 0, 1, "MTUS", "Opioid Treatment"),
    ]
    t = timeliness(loaded, SPRING)
    # [3 (expedited), 30, 40]: p90 = 30 + 0.8 * 10.
    assert [(b["label"], b["letters"], b["expedited"]) for b in t["bins"]] == bins(
        {0: (1, 1), 5: (1, 0), 7: (1, 0)}
    )
    assert t["all"] == {
        "letters": 3,
        "letters_with_dates": 3,
        "median_days": 30.0,
        "p90_days": pytest.approx(38.0),
        "over_30_days": 1,
        "share_over_30_days": 1 / 3,
    }


def test_open_sided_ranges(loaded):
    since_2017 = DecisionRange(first=date(2017, 1, 1))
    assert totals(loaded, since_2017) == {"letters": 1, "items": 1}
    assert overturn_by_category(loaded, since_2017) == [cat("Rehabilitation", 1, 1, 0)]
    until_jan = DecisionRange(last=date(2016, 1, 15))
    assert totals(loaded, until_jan) == {"letters": 1, "items": 3}
    assert pharmaceutical_mix(loaded, until_jan)["drug_classes"] == [drug("Opioids", 2, 2, 1)]
    # One day, the bound itself.
    assert totals(loaded, DecisionRange(date(2016, 6, 30), date(2016, 6, 30))) == {"letters": 1, "items": 2}


def test_empty_range(loaded):
    none = DecisionRange(date(2015, 1, 1), date(2015, 12, 31))
    assert totals(loaded, none) == {"letters": 0, "items": 0}
    assert overturn_by_category(loaded, none) == []
    assert pharmaceutical_mix(loaded, none) == {
        "items": 0,
        "pharmaceutical_items": 0,
        "pharmaceutical_share": None,
        "opioid_items": 0,
        "opioid_share_of_pharmaceuticals": None,
        "drug_classes": [],
    }
    assert guideline_use(loaded, none) == {"items": 0, "items_citing": 0, "families": [], "guidelines": []}
    t = timeliness(loaded, none)
    assert all(b["letters"] == 0 for b in t["bins"]) and t["by_priority"] == []
    assert t["all"] == {
        "letters": 0,
        "letters_with_dates": 0,
        "median_days": None,
        "p90_days": None,
        "over_30_days": 0,
        "share_over_30_days": None,
    }


def test_empty_warehouse(wh_conn):
    assert totals(wh_conn, DecisionRange()) == {"letters": 0, "items": 0}
    assert timeliness(wh_conn, DecisionRange())["all"]["letters"] == 0


# --------------------------------------------------------------------------- agreement with the views


def test_open_range_agrees_with_the_analytics_views(loaded):
    everything = DecisionRange()
    by_category = rows(
        loaded,
        "SELECT category, sum(items), sum(upheld), sum(overturned), sum(overturned)::numeric / sum(items)"
        " FROM imr.decisions_by_category GROUP BY category ORDER BY sum(items) DESC, category NULLS LAST",
    )
    assert [
        (c["category"], c["items"], c["upheld"], c["overturned"], round(c["overturn_rate"], 12))
        for c in overturn_by_category(loaded, everything)
    ] == by_category
    mix = pharmaceutical_mix(loaded, everything)
    [share] = rows(
        loaded, "SELECT items, pharmaceutical_items, pharmaceutical_share FROM imr.pharmaceutical_share"
    )
    assert (mix["items"], mix["pharmaceutical_items"], round(mix["pharmaceutical_share"], 12)) == share
    assert sorted(
        (c["drug_class"], c["items"], round(c["share_of_pharmaceuticals"], 12), c["overturned"])
        for c in mix["drug_classes"]
    ) == rows(
        loaded,
        "SELECT drug_class, items, share_of_pharmaceuticals, overturned FROM imr.drug_class_share ORDER BY 1",
    )
    assert sorted(
        (g["family"], g["title"] or "", g["items"], g["upheld"], g["overturned"])
        for g in guideline_use(loaded, everything)["guidelines"]
    ) == rows(
        loaded,
        "SELECT family, coalesce(title, ''), items, upheld, overturned"
        " FROM imr.overturn_by_guideline ORDER BY 1, 2",
    )
    [(median, over)] = rows(
        loaded,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY days_from_application),"
        " count(*) FILTER (WHERE over_30_days_from_application) FROM imr.letter_timeliness",
    )
    t = timeliness(loaded, everything)["all"]
    assert (t["median_days"], t["over_30_days"]) == (median, over)


# --------------------------------------------------------------------------- label basis (issue 19)

# Decided 2016-01-15 .. 2016-03-31 (CM16-0000501..503) and 2016-04-01 .. 2017-01-05 (504..506).
Q1 = DecisionRange(date(2016, 1, 1), date(2016, 3, 31))
LATER = DecisionRange(date(2016, 4, 1), date(2017, 12, 31))
AQUATIC = ("aquatic therapy", "Rehabilitation", "Physical Therapy/Occupational Therapy (PT/OT)")
BONE = ("bone density scan", "Diagnostic Testing", "Imaging/Radiology")
CREAM = ("compounded cream", "Pharmaceuticals", "NSAID")


def basis_rows(figures: dict) -> list[tuple]:
    return [(b["basis"], b["items"], b["share"]) for b in figures["bases"]]


def request_rows(figures: dict) -> list[tuple]:
    return [(r["request"], r["category"], r["subcategory"], r["items"]) for r in figures["default_requests"]]


def test_label_basis_all_dates(loaded):
    figures = label_basis(loaded)
    assert (figures["items"], figures["default_items"], figures["default_share"]) == (11, 5, 5 / 11)
    # Every basis in LABEL_BASES' order, then the item loaded before label_basis existed.
    assert basis_rows(figures) == [
        ("rule", 4, 4 / 11),
        ("rationale", 1, 1 / 11),
        ("default", 5, 5 / 11),
        (None, 1, 1 / 11),
    ]
    # "  bone   DENSITY scan " and "AQUATIC\ttherapy" count with their plainly written twins.
    assert request_rows(figures) == [(*AQUATIC, 2), (*BONE, 2), (*CREAM, 1)]


def test_label_basis_in_two_date_ranges(loaded):
    first = label_basis(loaded, Q1)
    assert (first["items"], first["default_items"], first["default_share"]) == (7, 3, 3 / 7)
    assert basis_rows(first) == [("rule", 3, 3 / 7), ("rationale", 1, 1 / 7), ("default", 3, 3 / 7)]
    assert request_rows(first) == [(*AQUATIC, 1), (*BONE, 1), (*CREAM, 1)]

    later = label_basis(loaded, LATER)
    assert (later["items"], later["default_items"], later["default_share"]) == (4, 2, 2 / 4)
    assert basis_rows(later) == [
        ("rule", 1, 1 / 4),
        ("rationale", 0, 0.0),
        ("default", 2, 2 / 4),
        (None, 1, 1 / 4),
    ]
    assert request_rows(later) == [(*AQUATIC, 1), (*BONE, 1)]


def test_label_basis_top_is_clamped(loaded):
    one = label_basis(loaded, top=1)
    assert one["top"] == 1 and request_rows(one) == [(*AQUATIC, 2)]
    assert label_basis(loaded, top=0)["top"] == 1
    assert label_basis(loaded, top=10**6)["top"] == DEFAULT_REQUESTS_MAX


def test_label_basis_without_items(wh_conn):
    figures = label_basis(wh_conn)
    assert (figures["items"], figures["default_share"], figures["default_requests"]) == (0, None, [])
    assert basis_rows(figures) == [("rule", 0, None), ("rationale", 0, None), ("default", 0, None)]


def test_label_basis_open_range_agrees_with_the_0013_views(loaded):
    figures = label_basis(loaded, top=DEFAULT_REQUESTS_MAX)
    assert sorted(
        (b["basis"] or "", b["items"], round(b["share"], 12)) for b in figures["bases"] if b["items"]
    ) == rows(loaded, "SELECT coalesce(label_basis, ''), items, share FROM imr.label_basis_share ORDER BY 1")
    assert sorted(request_rows(figures)) == rows(
        loaded,
        "SELECT request, category, subcategory, items FROM imr.default_label_requests ORDER BY 1, 2, 3",
    )


# --------------------------------------------------------------------------- the range itself


def test_range_parsing():
    assert DecisionRange.parse("2016-02-10", "2016-04-01") == SPRING
    assert DecisionRange.parse(None, "") == DecisionRange()
    assert DecisionRange.parse(" 2016-02-10 ", None).as_json() == {"from": "2016-02-10", "to": None}
    with pytest.raises(ValueError, match="'from' must be a date"):
        DecisionRange.parse("2016-02-10' OR '1'='1", None)
    with pytest.raises(ValueError, match="'to' must be a date"):
        DecisionRange.parse(None, "yesterday")
    with pytest.raises(ValueError, match="must not be after"):
        DecisionRange.parse("2016-04-02", "2016-04-01")
