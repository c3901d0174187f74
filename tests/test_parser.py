"""Parser unit tests on letters our own generator makes (known ground truth) and on hand-built lines."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

import imr_synth
from imr.errors import LetterError
from imr.letter import from_pdf
from imr.parse.header import parse_date, parse_header
from imr.parse.letter_parser import _request
from imr.parse.pdftext import Fragment, Line, extract_lines
from imr.records import Item, Letter
from imr.validate import rationale_polarity, validate
from support.helpers import score_pairs

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED = SHARED / "seed-letter-2013-era.txt"


def _line(y: float, *cells: tuple[float, str], page: int = 0, bold: bool = False) -> Line:
    return Line(page, y, 11.0, tuple(Fragment(x, x + 6 * len(t), t, bold) for x, t in cells))


# --- header table ---------------------------------------------------------------------------


def test_header_two_column_table_with_wrapped_label() -> None:
    lines = [
        _line(100, (72, "Case Number:"), (179, "CM16-0230651")),
        _line(
            113, (72, "Date Assigned:"), (179, "12/07/2016"), (329, "Date of Injury:"), (427, "10/13/2016")
        ),
        _line(127, (72, "Decision Date:"), (179, "01/09/2017"), (329, "UR Denial Date: 11/22/2016")),
        _line(140, (72, "Priority:"), (179, "Standard"), (329, "Application"), (427, "11/29/2016")),
        _line(152, (329, "Received:")),
    ]
    raw = parse_header(lines)
    assert raw == {
        "case_number": "CM16-0230651",
        "date_assigned": "12/07/2016",
        "date_of_injury": "10/13/2016",
        "decision_date": "01/09/2017",
        "ur_denial_date": "11/22/2016",
        "application_received": "11/29/2016",
        "priority": "Standard",
    }


def test_header_row_in_one_run_and_stacked_value_and_alias() -> None:
    lines = [
        _line(90, (72, "Dated: 12/27/2013")),
        _line(100, (72, "IMR Case Number: CM13-0017437 Date of Injury: 04/22/2010")),
        _line(113, (72, "Priority: STANDARD Application Received: 09/03/2013")),
        _line(126, (72, "UR Denial Date:")),
        _line(139, (72, "08/23/2013")),
    ]
    raw = parse_header(lines)
    assert raw["case_number"] == "CM13-0017437"
    assert raw["date_of_injury"] == "04/22/2010"
    assert raw["application_received"] == "09/03/2013"
    assert raw["ur_denial_date"] == "08/23/2013"
    assert raw["decision_date"] == "12/27/2013"  # "Dated:" stands in when "Decision Date:" is absent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11/03/2016", date(2016, 11, 3)),
        ("1/5/17", date(2017, 1, 5)),
        ("2017-02-01", date(2017, 2, 1)),
        ("January 5, 2017", date(2017, 1, 5)),
        ("13/45/2016", None),
        ("", None),
    ],
)
def test_parse_date(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


# --- decision lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paragraph", "expected_request", "original"),
    [
        ("MRI of the right shoulder: Upheld", "MRI of the right shoulder", None),
        ("1. MRI of the right shoulder: Upheld", "MRI of the right shoulder", None),
        (
            "Norco 10/325mg #60 was the original request. Norco 10/325mg #25 was authorized by the Claims "
            "Administrator. The remaining IMR eligible portion of the original request, "
            "Norco 10/325mg #35 is: Upheld",
            "Norco 10/325mg #35",
            "Norco 10/325mg #60",
        ),
        (
            "Baclofen 100mg #30 was the original request. Baclofen 100mg #27 was authorized by the Claims "
            "Administrator. The remaining IMR eligible portion of the original request, "
            "Baclofen 100mg #3: Upheld",
            "Baclofen 100mg #3",
            "Baclofen 100mg #30",
        ),
        (
            "Purchase of a bath/shower chair was the original request. The Claims Administrator authorized a "
            "bath/shower chair for 1 month, leaving the original request IMR eligible. The original request, "
            "purchase of a bath/shower chair is: Overturned",
            "purchase of a bath/shower chair",
            "Purchase of a bath/shower chair",
        ),
    ],
)
def test_request_and_partial_authorizations(
    paragraph: str, expected_request: str, original: str | None
) -> None:
    assert _request(paragraph) == (expected_request, original)


# --- generated letters ----------------------------------------------------------------------


@pytest.mark.parametrize("style", ["2016", "2013"])
def test_generated_letters_parse_exactly(style: str, tmp_path: Path) -> None:
    """Letters of 1-25 items, items and rationales crossing page breaks, running headers and
    `Page N of M` footers, justified text, partial authorizations, some encrypted (empty password)."""
    pairs = []
    for seed in range(25):
        truth, pdf = imr_synth.random_letter(random.Random(f"{style}-{seed}"), style=style)
        pairs.append((truth.to_dict(), from_pdf(pdf).to_dict()))
    score = score_pairs(tmp_path, pairs)
    assert score["field_accuracy"] == 1.0, score["mismatches"][:3]
    assert score["letters_all_correct"] == len(pairs)


def test_long_letter_crosses_pages_and_drops_footers() -> None:
    truth, pdf = imr_synth.random_letter(random.Random(7), n_items=20)
    lines = extract_lines(pdf)
    assert max(ln.page for ln in lines) >= 3
    assert not any(ln.text.strip().lower().startswith("page ") and " of " in ln.text for ln in lines)
    got = from_pdf(pdf)
    assert [i.request for i in got.items] == [i.request for i in truth.items]
    assert [i.decision for i in got.items] == [i.decision for i in truth.items]


def test_encrypted_with_empty_password_opens() -> None:
    truth, _ = imr_synth.random_letter(random.Random(11), n_items=3)
    pdf = imr_synth.render_letter(truth, encrypt_empty_password=True)
    assert b"/Encrypt" in pdf
    assert from_pdf(pdf).case_number == truth.case_number


def test_seed_letter_2013_style(tmp_path: Path) -> None:
    if not SEED.exists():
        pytest.skip(f"seed letter not found at {SEED}")
    truth, pdf = imr_synth.seed_letter_pdf(SEED)
    got = from_pdf(pdf)
    assert got.reviewer_specialty == "Anesthesiology"
    assert got.reviewer_licensure_states == ["California"]
    assert (got.patient_age, got.patient_sex) == (50, "male")
    assert [(i.request, i.decision) for i in got.items] == [
        ("Hot/cold contrast system with deep vein thrombosis/compression unit", "Upheld")
    ]
    assert got.outcome == "Uphold"
    item = got.items[0]
    assert (
        item.claims_administrator_guideline
        == "The Claims Administrator did not cite any medical evidence for its decision."
    )
    assert item.maximus_guideline.startswith("The Expert Reviewer did not base their decision on the MTUS.")
    assert item.maximus_guideline.endswith("Low Back Chapter, Cold/Heat packs")
    assert item.decision_rationale.startswith(
        "ACOEM Guidelines discuss application of cold in the acute phase"
    )
    assert item.decision_rationale.endswith("is not medically necessary.")
    score = score_pairs(tmp_path, [(truth.to_dict(), got.to_dict())])
    assert score["field_accuracy"] == 1.0, score["mismatches"]


# --- rejections and warnings ----------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "not_pdf",
        "encrypted",
        "no_text_layer",
        "not_an_imr_letter",
        "header_missing_field",
        "item_structure",
        "too_large",
    ],
)
def test_bad_files_are_classified(code: str) -> None:
    with pytest.raises(LetterError) as exc:
        from_pdf(imr_synth.bad_files()[code])
    assert exc.value.code == code
    assert exc.value.message


def test_date_order_and_age_warnings() -> None:
    letter = Letter(
        case_number="CM16-0000001",
        date_of_injury=date(2016, 5, 1),
        ur_denial_date=date(2016, 4, 1),
        decision_date=date(2016, 6, 1),
        patient_age=7,
        items=[Item(1, "MRI", "Upheld", decision_rationale="It is not medically necessary.")],
    )
    codes = [w.code for w in validate(letter).warnings]
    assert codes.count("date_order") == 1
    assert "unusual_age" in codes
    assert "rationale_polarity" not in codes


@pytest.mark.parametrize(
    ("rationale", "polarity"),
    [
        ("Therefore the request is determined to not be medically necessary.", "negative"),
        ("The requested Diclofenac is not seen as medically necessary.", "negative"),
        (
            "Guidelines do not support it. However, in this case the request is medically necessary.",
            "positive",
        ),
        ("The notes were reviewed.", None),
    ],
)
def test_rationale_polarity(rationale: str, polarity: str | None) -> None:
    assert rationale_polarity(rationale) == polarity


def test_reviewer_values_stop_at_the_paragraph_end() -> None:
    from imr.parse.letter_parser import _reviewer, paragraphs_text

    lines = [
        _line(300, (72, "The Expert Reviewer has the following credentials:")),
        _line(314, (72, "State(s) of Licensure: California, Nevada and Arizona")),
        _line(328, (72, "Certification(s)/Specialty: Physical Medicine & Rehabilitation,")),
        _line(342, (72, "Pain Management")),
        _line(380, (72, "This determination is final and binding.")),
    ]
    assert _reviewer(paragraphs_text(lines)) == (
        "Physical Medicine & Rehabilitation, Pain Management",
        ["California", "Nevada", "Arizona"],
    )
    older = [
        _line(100, (72, "The physician reviewer is Board Certified in Anesthesiology and Pain Management")),
        _line(114, (72, "and is licensed to practice in California and Nevada. He/she has been in practice")),
    ]
    assert _reviewer(paragraphs_text(older)) == (
        "Anesthesiology and Pain Management",
        ["California", "Nevada"],
    )


def test_glyphs_drawn_twice_for_fake_bold_are_read_once() -> None:
    from imr.parse.pdftext import _make_line

    glyphs = []
    x = 72.0
    for ch in "Upheld":
        glyphs += [(700.0, x, x + 6, 12.0, ch, False), (700.0, x + 0.4, x + 6.4, 12.0, ch, False)]
        x += 6
    assert _make_line(glyphs, 0, 792.0).text == "Upheld"


def test_header_labels_the_parser_does_not_use_are_not_values() -> None:
    lines = [
        _line(90, (72, "Dated:"), (179, "12/31/2013")),
        _line(100, (72, "IMR Case Number:"), (300, "Date of Injury:"), (420, "06/21/2011")),
        _line(113, (72, "Claims Number:"), (179, "4455-A"), (300, "UR Denial Date:"), (420, "09/04/2013")),
        _line(126, (72, "Priority:"), (179, "STANDARD"), (300, "Application Received:"), (420, "09/16/2013")),
        _line(139, (72, "Employee Name:"), (179, "Redacted")),
    ]
    raw = parse_header(lines)
    assert "case_number" not in raw  # its cell is empty: no neighbour's label or value is taken
    assert raw["ur_denial_date"] == "09/04/2013"
    assert raw["priority"] == "STANDARD"
    assert raw["decision_date"] == "12/31/2013"
