"""The synthetic letter generator: its ground truth must be exactly what the PDFs show, and its bad files
must really be bad in the way their rejection code says."""

from __future__ import annotations

import io
import json
import random
import re
import signal
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from pdfminer.high_level import extract_pages, extract_text
from pdfminer.layout import LTChar, LTImage
from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser

import imr_synth
from imr.errors import REJECTION_CODES
from imr.records import DATE_FIELDS, DECISIONS, ITEM_FIELDS, LETTER_FIELDS, Letter, derive_outcome
from imr_synth import badfiles

SEED_TEXT = Path(__file__).resolve().parents[2] / "shared" / "seed-letter-2013-era.txt"
FOOTER = re.compile(r"Page (\d+) of (\d+)")


pytestmark = pytest.mark.usefixtures("quiet_pdfminer")


def norm(s: str) -> str:
    """The scorer's normalisation (score_records.py): collapse whitespace, join words split at a hyphen."""
    s = re.sub(r"\s+", " ", s).strip()
    return re.sub(r"(?<=\S)- (?=\S)", "-", s)


def _chars(obj):
    if isinstance(obj, LTChar):
        yield obj
    elif hasattr(obj, "__iter__"):
        for child in obj:
            yield from _chars(child)


def page_lines(pdf: bytes) -> list[list[str]]:
    """Lines per page from character positions. extract_text's layout analysis is not used on purpose:
    it splits justified lines with wide word gaps into separate boxes and reorders them."""
    pages = []
    for page in extract_pages(io.BytesIO(pdf), laparams=None):
        rows: dict[int, list[LTChar]] = defaultdict(list)
        for c in _chars(page):
            rows[round(c.y0)].append(c)
        pages.append(
            [
                "".join(c.get_text() for c in sorted(rows[y], key=lambda c: c.x0))
                for y in sorted(rows, reverse=True)
            ]
        )
    return pages


def body_text(pdf: bytes, running_header: str | None = None) -> str:
    """The letter's text in reading order without the page furniture, normalised."""
    lines = [
        line
        for n, page in enumerate(page_lines(pdf), 1)
        for line in page
        if not FOOTER.fullmatch(line.strip()) and not (n > 1 and line.strip() == running_header)
    ]
    return norm("\n".join(lines))


def assert_truth_is_rendered(letter: Letter, text: str) -> None:
    for item in letter.items:
        for f in ("request", "original_request", "claims_administrator_guideline", "maximus_guideline",
                  "decision_rationale"):  # fmt: skip
            value = getattr(item, f)
            if value is not None:
                assert norm(value) in text, (letter.case_number, item.seq, f, value[:80])
    if letter.clinical_case_summary:
        assert norm(letter.clinical_case_summary) in text


def check_contract(row: dict) -> None:
    for f in LETTER_FIELDS:
        assert f in row, f
    assert re.fullmatch(r"CM\d{2}-\d{7}", row["case_number"])
    dates = [
        date.fromisoformat(row[f]) for f in DATE_FIELDS
    ]  # injury, UR denial, received, assigned, decision
    assert dates == sorted(dates), row["case_number"]
    assert row["priority"] in ("Standard", "Expedited")
    assert isinstance(row["reviewer_specialty"], str) and row["reviewer_specialty"]
    assert row["reviewer_licensure_states"] and all(
        isinstance(s, str) for s in row["reviewer_licensure_states"]
    )
    assert row["patient_age"] is None or 18 <= row["patient_age"] <= 90
    assert row["patient_sex"] in ("male", "female")
    assert 1 <= len(row["items"]) <= 25
    assert row["outcome"] == derive_outcome([i["decision"] for i in row["items"]])
    for seq, item in enumerate(row["items"], 1):
        assert set(ITEM_FIELDS) <= set(item)
        assert item["seq"] == seq
        assert item["decision"] in DECISIONS
        assert item["original_request"] is None or isinstance(item["original_request"], str)
        for f in ("request", "claims_administrator_guideline", "maximus_guideline", "decision_rationale"):
            assert isinstance(item[f], str) and item[f] == norm(item[f]) and item[f], f
        assert not re.search(r"\b(Upheld|Overturned)\b", item["decision_rationale"])


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("sample")
    return out, imr_synth.write_sample_set(out, count=16, seed=11)


@pytest.fixture(scope="module")
def bad() -> dict[str, bytes]:
    return imr_synth.bad_files()


def test_same_seed_same_letter_and_bytes() -> None:
    a_letter, a_pdf = imr_synth.random_letter(random.Random(5), style="2013")
    b_letter, b_pdf = imr_synth.random_letter(random.Random(5), style="2013")
    assert a_letter.to_dict() == b_letter.to_dict()
    assert a_pdf == b_pdf
    c_letter, _ = imr_synth.random_letter(random.Random(6), style="2013")
    assert c_letter.to_dict() != a_letter.to_dict()


def test_sample_set_is_deterministic(sample: tuple[Path, list[dict]], tmp_path: Path) -> None:
    out, _ = sample
    imr_synth.write_sample_set(tmp_path, count=16, seed=11, include_bad=False)
    assert (tmp_path / "expected.jsonl").read_bytes() == (out / "expected.jsonl").read_bytes()
    for pdf in (out / "letters").iterdir():
        assert (tmp_path / "letters" / pdf.name).read_bytes() == pdf.read_bytes()


def test_sample_set_files_and_contract(sample: tuple[Path, list[dict]]) -> None:
    out, rows = sample
    expected = [json.loads(line) for line in (out / "expected.jsonl").read_text().splitlines()]
    bad_rows = [json.loads(line) for line in (out / "bad.jsonl").read_text().splitlines()]
    assert len(expected) == 16
    assert len({r["case_number"] for r in expected}) == 16
    assert {r["file"] for r in expected} == {p.name for p in (out / "letters").iterdir()}
    assert {r["file"] for r in bad_rows} == {p.name for p in (out / "bad").iterdir()}
    assert {r["error_code"] for r in bad_rows} <= set(REJECTION_CODES)
    assert len(rows) == len(expected) + len(bad_rows)
    for row in expected:
        assert row["file"] == f"{row['case_number']}.pdf"
        check_contract(row)
        assert Letter.from_dict(row).to_dict() == {k: v for k, v in row.items() if k != "file"}


def test_sample_pdfs_open_and_show_the_decisions(sample: tuple[Path, list[dict]]) -> None:
    out, rows = sample
    letters = [r for r in rows if "error_code" not in r]
    assert any(r["encrypted"] for r in letters) and not all(r["encrypted"] for r in letters)
    for row in letters:
        pdf = (out / row["path"]).read_bytes()
        text = extract_text(io.BytesIO(pdf))
        n_pages = len(list(PDFPage.get_pages(io.BytesIO(pdf))))
        assert f"Page 1 of {n_pages}" in text
        assert [int(m.group(1)) for m in FOOTER.finditer(text)] == list(range(1, n_pages + 1))
        words = set(text.split())
        for item in row["items"]:
            decision_line = f"{item['request']}: {item['decision']}"
            assert set(norm(decision_line).replace(":", "").split()) <= {w.rstrip(":") for w in words}


def test_ground_truth_is_exactly_the_rendered_text() -> None:
    # The contract's perfect parser: every truth text appears verbatim once page furniture is removed.
    for i in range(12):
        rng = random.Random(f"exact:{i}")
        spec = imr_synth.random_spec(rng, style="2013" if i % 3 == 0 else "2016")
        text = body_text(imr_synth.render_spec(spec), spec.running_header)
        assert_truth_is_rendered(spec.letter, text)
        header = text[: text.index(imr_synth.HEADING_HOW)]
        letter = spec.letter
        pairs = [
            ("Case Number:", letter.case_number),
            ("Date Assigned:", f"{letter.date_assigned:%m/%d/%Y}"),
            ("Decision Date:", f"{letter.decision_date:%m/%d/%Y}"),
            ("Date of Injury:", f"{letter.date_of_injury:%m/%d/%Y}"),
            ("UR Denial Date:", f"{letter.ur_denial_date:%m/%d/%Y}"),
            ("Application", f"{letter.application_received:%m/%d/%Y}"),
            ("Priority:", letter.priority),
        ]
        for label, value in pairs:
            assert re.search(re.escape(label) + r"\s*" + re.escape(value), header), (label, header)
        if spec.style == "2016":
            assert f"Certification(s)/Specialty: {letter.reviewer_specialty}" in text
        else:
            assert f"Board Certified in {letter.reviewer_specialty} and is licensed to practice in" in text


def test_layout_variety() -> None:
    """Over a modest batch the generator produces the hard cases a parser must handle."""
    seen: set[str] = set()
    for i in range(40):
        rng = random.Random(f"variety:{i}")
        spec = imr_synth.random_spec(rng, style="2013" if i % 4 == 0 else "2016")
        log: list = []
        imr_synth.render_pdf(spec, log=log)
        pages: dict[tuple, list[int]] = defaultdict(list)
        for tag, page in log:
            pages[tag].append(page)
        if max(p for _, p in log) >= 3:
            seen.add("3+ pages")
        for s in spec.items:
            seq = s.item.seq
            seen.add(f"kind {s.kind}")
            if pages[("decision", seq)][-1] != pages[("ca", seq)][0]:
                seen.add("break between decision line and guideline")
            if any(len(pages[("rationale", seq, k)]) > 1 for k in range(len(s.rationale_paragraphs))):
                seen.add("break inside a rationale")
            if len(s.rationale_paragraphs) > 1:
                seen.add("multi-paragraph rationale")
            if len(s.item.request) > 150:
                seen.add("request wrapping over 2+ lines")
            if ":" in s.item.request:
                seen.add("colon inside a request")
        if spec.style == "2013":
            seen.add("style 2013")
        if spec.running_header:
            seen.add("running header")
    assert seen >= {
        "3+ pages", "kind plain", "kind remaining", "kind eligible", "style 2013", "running header",
        "break between decision line and guideline", "break inside a rationale", "multi-paragraph rationale",
        "request wrapping over 2+ lines", "colon inside a request",
    }  # fmt: skip


def test_long_letters_and_hyphenated_line_ends() -> None:
    spec = imr_synth.random_spec(random.Random("long"), n_items=25)
    pdf = imr_synth.render_spec(spec)
    pages = page_lines(pdf)
    assert len(pages) >= 4
    lines = [line.rstrip() for page in pages for line in page]
    assert any(re.search(r"[a-z]-$", line) for line in lines)  # a line broken at an embedded hyphen
    assert_truth_is_rendered(spec.letter, body_text(pdf, spec.running_header))


def test_render_letter_renders_any_record() -> None:
    truth, _ = imr_synth.random_letter(random.Random(21), n_items=4)
    for style in ("2016", "2013"):
        pdf = imr_synth.render_letter(truth, style=style)
        assert_truth_is_rendered(truth, body_text(pdf))
    custom = imr_synth.BOILERPLATE_2013.format(specialty="Neurology", states="California")
    pdf = imr_synth.render_letter(truth, style="2013", boilerplate_2013=custom)
    assert "Board Certified in Neurology and is licensed to practice in California." in body_text(pdf)


def test_empty_password_letters_open_and_the_encrypted_bad_file_does_not(bad: dict[str, bytes]) -> None:
    truth, _ = imr_synth.random_letter(random.Random(3))
    pdf = imr_synth.render_letter(truth, encrypt_empty_password=True)
    doc = PDFDocument(PDFParser(io.BytesIO(pdf)))
    assert doc.encryption is not None
    assert truth.case_number in extract_text(io.BytesIO(pdf))
    with pytest.raises(PDFPasswordIncorrect):
        extract_text(io.BytesIO(bad["encrypted"]))


@pytest.mark.skipif(not SEED_TEXT.exists(), reason="needs ../shared/seed-letter-2013-era.txt")
def test_seed_letter() -> None:
    truth, pdf = imr_synth.seed_letter_pdf(SEED_TEXT)
    assert truth.reviewer_specialty == "Anesthesiology"
    assert truth.reviewer_licensure_states == ["California"]
    assert (truth.patient_age, truth.patient_sex) == (50, "male")
    assert [(i.request, i.decision) for i in truth.items] == [
        ("Hot/cold contrast system with deep vein thrombosis/compression unit", "Upheld")
    ]
    item = truth.items[0]
    assert (
        item.claims_administrator_guideline
        == "The Claims Administrator did not cite any medical evidence for its decision."
    )
    assert item.maximus_guideline.startswith(
        "The Expert Reviewer did not base their decision on the MTUS. Decision"
    )
    assert item.decision_rationale.endswith("compression unit is not medically necessary.")
    assert truth.date_of_injury == date(2012, 9, 20)
    check_contract(truth.to_dict())
    assert_truth_is_rendered(truth, body_text(pdf))


def test_bad_files_have_every_code(bad: dict[str, bytes]) -> None:
    assert set(bad) == set(imr_synth.BAD_FILE_CODES)
    assert set(imr_synth.BAD_FILE_CODES.values()) <= set(REJECTION_CODES)
    assert not bad["not_pdf"].startswith(b"%PDF")
    for key, data in bad.items():
        if key != "not_pdf":
            assert data.startswith(b"%PDF"), key
        assert len(data) < 10_000_000, key


def test_no_text_layer_has_an_image_and_no_text(bad: dict[str, bytes]) -> None:
    assert extract_text(io.BytesIO(bad["no_text_layer"])).strip() == ""
    (page,) = extract_pages(io.BytesIO(bad["no_text_layer"]))
    assert any(isinstance(o, LTImage) for o in _walk(page))


def _walk(obj):
    yield obj
    if hasattr(obj, "__iter__"):
        for child in obj:
            yield from _walk(child)


def test_other_documents_and_broken_letters(bad: dict[str, bytes]) -> None:
    invoice = extract_text(io.BytesIO(bad["not_an_imr_letter"]))
    assert "INVOICE" in invoice and "Case Number" not in invoice and imr_synth.HEADING_ISSUES not in invoice

    no_case = extract_text(io.BytesIO(bad["header_missing_field"]))
    assert "Case Number" not in no_case and not re.search(r"CM\d\d-\d{7}", no_case)
    assert "Date Assigned:" in no_case and imr_synth.HEADING_ISSUES in no_case

    no_items = norm(extract_text(io.BytesIO(bad["item_structure"])))
    assert imr_synth.HEADING_ISSUES in no_items and "Decision rationale:" in no_items
    assert not re.search(r"(Upheld|Overturned)", no_items)

    with pytest.raises(Exception):  # noqa: B017, PT011 - any pdfminer failure is the point
        extract_text(io.BytesIO(bad["truncated"]))


def test_too_large_has_more_pages_than_the_limit(bad: dict[str, bytes]) -> None:
    n = len(list(PDFPage.get_pages(io.BytesIO(bad["too_large"]))))
    assert n > imr_synth.PAGE_LIMIT
    assert len(bad["too_large"]) < 1_000_000


class _Slow(Exception):
    pass


def test_timeout_file_is_slow_for_pdfminer() -> None:
    started = time.perf_counter()
    data = badfiles.timeout()
    assert time.perf_counter() - started < 5
    assert len(data) < 10_000_000

    def give_up(*_):
        raise _Slow

    # Stop after 2.5 s instead of timing the whole parse (tens of seconds): still-running proves "> 2 s".
    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, 2.5)
    try:
        with pytest.raises(_Slow):
            extract_text(io.BytesIO(data))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_decided_in_puts_every_decision_in_the_window_and_keeps_the_date_order(tmp_path: Path) -> None:
    """A night's letters (bench-archive's nightly part): decisions in the given days, and the other
    dates moved with them, so the parser's date checks still hold."""
    from imr.letter import from_pdf

    window = (date(2026, 12, 2), date(2026, 12, 31))
    rows = imr_synth.write_sample_set(tmp_path, count=12, seed=5, include_bad=False, decided_in=window)
    decided = [date.fromisoformat(r["decision_date"]) for r in rows]
    assert all(window[0] <= d <= window[1] for d in decided), decided
    assert len(set(decided)) > 1  # spread over the window, not one day
    for r in rows:
        chain = [r["date_of_injury"], r["ur_denial_date"], r["application_received"], r["date_assigned"]]
        assert [c for c in chain if c] == sorted(c for c in chain if c) and max(chain) <= r["decision_date"]
    first = rows[0]
    letter = from_pdf((tmp_path / first["path"]).read_bytes())
    assert letter.decision_date.isoformat() == first["decision_date"]
    assert letter.case_number == first["case_number"]
