"""The letters of the Insights tests (test_insights.py, test_insights_api.py): chosen categories,
decisions, citations and dates, so that every figure is known exactly."""

from __future__ import annotations

from datetime import date

from support.builders import ACOEM, CPMT, CPMT_NSAID, ODG, OPIOID_TX, PT, ingest, item, make, obj, ok

ORTHO, PAIN = "Orthopaedic Surgery", "Pain Management"

RULE, RATIONALE, DEFAULT = "rule", "rationale", "default"
# The requests labelled by default (label_basis), each written twice: the Insights figures group a
# request lower-cased with its spaces folded, so a variant counts with it.
BONE, BONE_VARIANT = "Bone density scan", "  bone   DENSITY scan "
AQUA, AQUA_VARIANT = "Aquatic therapy", "AQUATIC\ttherapy"

# (case number, decision date, application received, priority, specialty, items); the comments give
# the days from application to decision; L5 has no application date. None has an assigned date.
_TABLE = [
    (
        "CM16-0000501",
        date(2016, 1, 15),
        date(2015, 12, 20),  # 26 days
        "Standard",
        ORTHO,
        [
            # one MTUS title twice, then two MTUS titles
            item(1, "Pharmaceuticals", "Opioids", "Upheld", [CPMT, CPMT_NSAID], basis=RULE),
            item(2, "Pharmaceuticals", "Opioids", "Overturned", [CPMT, OPIOID_TX], basis=RULE),
            item(
                3, "Diagnostic Testing", "Imaging/Radiology", "Upheld", [ACOEM], request=BONE, basis=DEFAULT
            ),
        ],
    ),
    (
        "CM16-0000502",
        date(2016, 2, 10),
        date(2016, 1, 1),  # 40 days
        "Standard",
        PAIN,
        [
            item(
                1, "Pharmaceuticals", "Muscle Relaxant", "Upheld", [CPMT], claims=[ODG], basis=RATIONALE
            ),  # claims: not counted
            item(2, "Rehabilitation", PT, "Overturned", [ODG], request=AQUA, basis=DEFAULT),
        ],
    ),
    (
        "CM16-0000503",
        date(2016, 3, 31),
        date(2016, 3, 1),  # 30 days: not over
        "Standard",
        ORTHO,
        [
            item(1, "Surgery", "Spine", "Overturned", [ODG, ACOEM], basis=RULE),
            item(2, "Pharmaceuticals", "NSAID", "Upheld", [], request="Compounded cream", basis=DEFAULT),
        ],
    ),
    (
        "CM16-0000504",
        date(2016, 4, 1),
        date(2016, 3, 29),  # 3 days
        "Expedited",
        PAIN,
        [item(1, "Pharmaceuticals", "Opioids", "Overturned", [OPIOID_TX], basis=RULE)],
    ),
    (
        "CM16-0000505",
        date(2016, 6, 30),
        None,
        "Standard",
        ORTHO,
        [
            item(
                1,
                "Diagnostic Testing",
                "Imaging/Radiology",
                "Overturned",
                [ODG],
                request=BONE_VARIANT,
                basis=DEFAULT,
            ),
            item(2, None, None, "Upheld", []),  # loaded before the enriched fields existed: no basis
        ],
    ),
    (
        "CM17-0000506",
        date(2017, 1, 5),
        date(2016, 9, 1),  # 126 days
        "Standard",
        PAIN,
        [item(1, "Rehabilitation", PT, "Upheld", [CPMT], request=AQUA_VARIANT, basis=DEFAULT)],
    ),
]
LETTERS = [
    make(case, decided, received, None, priority, specialty, items)
    for case, decided, received, priority, specialty, items in _TABLE
]


def load_letters(conn) -> None:
    keys = [f"v/{let.case_number}.pdf" for let in LETTERS]
    counts = ingest(
        conn, "run1", [obj(k) for k in keys], [ok(k, let) for k, let in zip(keys, LETTERS, strict=True)]
    )
    assert counts.loaded == 6 and counts.items_written == 11
