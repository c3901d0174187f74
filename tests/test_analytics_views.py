"""The analytics views (migration 0006) on letters built here with chosen categories, decisions,
citations and dates, loaded by the loader: exact counts and rates (issue 10, Must show 4)."""

from __future__ import annotations

from datetime import date

import pytest

from imr import quality
from support.builders import ACOEM, CPMT, CPMT_NSAID, ODG, OPIOID_TX, PT, ingest, item, make, obj, ok, q, rows

pytestmark = pytest.mark.integration


LETTERS = [
    make(
        "CM16-0000401",
        date(2016, 3, 10),
        date(2016, 2, 1),  # 38 days
        date(2016, 2, 20),  # 19 days
        "Standard",
        "Orthopaedic Surgery",
        [
            item(1, "Pharmaceuticals", "Opioids", "Upheld", [CPMT, CPMT_NSAID]),  # one title twice
            item(2, "Pharmaceuticals", "Opioids", "Overturned", [CPMT, ODG]),
            item(3, "Diagnostic Testing", "Imaging/Radiology", "Overturned", [ODG]),
        ],
    ),
    make(
        "CM16-0000402",
        date(2016, 3, 25),
        date(2016, 3, 5),  # 20 days
        date(2016, 3, 15),  # 10 days
        "Standard",
        "Pain Management",
        [
            item(1, "Pharmaceuticals", "Muscle Relaxant", "Upheld", [CPMT], claims=[ODG]),
            item(2, "Rehabilitation", PT, "Upheld", []),
        ],
    ),
    make(
        "CM17-0000403",
        date(2017, 1, 5),
        date(2016, 12, 31),  # 5 days
        date(2017, 1, 3),  # 2 days
        "Expedited",
        "Pain Management",
        [item(1, "Pharmaceuticals", "Opioids", "Overturned", [OPIOID_TX])],
    ),
    make(
        "CM16-0000404",
        date(2016, 3, 31),
        date(2016, 2, 20),  # 40 days
        date(2016, 2, 25),  # 35 days
        "Standard",
        "Orthopaedic Surgery",
        [item(1, "Diagnostic Testing", "Imaging/Radiology", "Upheld", [ACOEM])],
    ),
]


@pytest.fixture
def loaded(wh_conn):
    keys = [f"v/{let.case_number}.pdf" for let in LETTERS]
    counts = ingest(
        wh_conn, "run1", [obj(k) for k in keys], [ok(k, let) for k, let in zip(keys, LETTERS, strict=True)]
    )
    assert counts.loaded == 4 and counts.items_written == 7
    return wh_conn


def r(x: float) -> float:
    return round(x, 12)


def test_quality_passes_on_the_generated_letters(loaded):
    failed = [c.name for c in quality.run_checks(loaded, "run1") if not c.passed]
    assert failed == []


def test_decisions_by_category(loaded):
    assert rows(
        loaded,
        "SELECT year, category, subcategory, items, upheld, overturned, overturn_rate"
        " FROM imr.decisions_by_category ORDER BY 1, 2, 3",
    ) == [
        (2016, "Diagnostic Testing", "Imaging/Radiology", 2, 1, 1, 0.5),
        (2016, "Pharmaceuticals", "Muscle Relaxant", 1, 1, 0, 0.0),
        (2016, "Pharmaceuticals", "Opioids", 2, 1, 1, 0.5),
        (2016, "Rehabilitation", PT, 1, 1, 0, 0.0),
        (2017, "Pharmaceuticals", "Opioids", 1, 0, 1, 1.0),
    ]


def test_pharmaceutical_and_drug_class_share(loaded):
    assert rows(loaded, "SELECT * FROM imr.pharmaceutical_share") == [(7, 4, r(4 / 7))]
    assert rows(
        loaded,
        "SELECT drug_class, items, pharmaceutical_items, share_of_pharmaceuticals, overturned, overturn_rate"
        " FROM imr.drug_class_share ORDER BY 1",
    ) == [
        ("Muscle Relaxant", 1, 4, 0.25, 0, 0.0),
        ("Opioids", 3, 4, 0.75, 2, r(2 / 3)),
    ]


def test_overturn_by_specialty(loaded):
    assert rows(
        loaded,
        "SELECT reviewer_specialty, letters, items, overturned, overturn_rate"
        " FROM imr.overturn_by_specialty ORDER BY 1",
    ) == [
        ("Orthopaedic Surgery", 2, 4, 2, 0.5),
        ("Pain Management", 2, 3, 1, r(1 / 3)),
    ]


def test_overturn_by_guideline(loaded):
    # Expert reviewer citations only (the claims administrator's ODG on CM16-0000402/1 is not
    # counted); an item citing one MTUS title twice counts once.
    assert rows(
        loaded,
        "SELECT family, title, items, upheld, overturned, overturn_rate"
        " FROM imr.overturn_by_guideline ORDER BY 1, 2",
    ) == [
        ("ACOEM", None, 1, 1, 0, 0.0),
        ("MTUS", "Chronic Pain Medical Treatment", 3, 2, 1, r(1 / 3)),
        ("MTUS", "Opioid Treatment", 1, 0, 1, 1.0),
        ("ODG", None, 2, 0, 2, 1.0),
    ]


def test_letter_timeliness(loaded):
    assert q(
        loaded,
        "SELECT case_number, priority, decision_month, days_from_application, days_from_assignment,"
        " over_30_days_from_application, over_30_days_from_assignment"
        " FROM imr.letter_timeliness ORDER BY 1",
    ) == [
        ("CM16-0000401", "Standard", date(2016, 3, 1), 38, 19, True, False),
        ("CM16-0000402", "Standard", date(2016, 3, 1), 20, 10, False, False),
        ("CM16-0000404", "Standard", date(2016, 3, 1), 40, 35, True, True),
        ("CM17-0000403", "Expedited", date(2017, 1, 1), 5, 2, False, False),
    ]


def test_timeliness_by_month(loaded):
    # March 2016, Standard: from application [20, 38, 40], from assignment [10, 19, 35];
    # p90 (continuous) = x[1] + 0.8 * (x[2] - x[1]).
    assert rows(
        loaded,
        "SELECT decision_month, priority, letters, median_days_from_application, p90_days_from_application,"
        " share_over_30_days_from_application, median_days_from_assignment, p90_days_from_assignment,"
        " share_over_30_days_from_assignment FROM imr.timeliness_by_month ORDER BY 1, 2",
    ) == [
        (date(2016, 3, 1), "Standard", 3, 38.0, 39.6, r(2 / 3), 19.0, 31.8, r(1 / 3)),
        (date(2017, 1, 1), "Expedited", 1, 5.0, 5.0, 0.0, 2.0, 2.0, 0.0),
    ]
