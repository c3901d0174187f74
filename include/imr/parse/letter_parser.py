"""Reads a Letter record out of an IMR Final Determination letter: `parse_pdf` (bytes -> record, in
this process) and `parse_lines` (positioned text lines -> record, contract v1). The record is as the
letter states it: enrichment and validation are the next stages (`imr.letter.from_pdf` runs them).
The header table's geometry (which label takes which cell) is `imr.parse.header`.

Three letter formats are handled (`letter_format`): the first 2013 notices (module `notice2013`),
2016-17 letters (credentials block with `State(s) of Licensure:` and
`Certification(s)/Specialty:`) and 2013-14 letters (`Board Certified in X and is licensed to
practice in Y`). Layout facts the parser relies on are few and generic: header labels with their
values to the right in the same row (a label may wrap onto a second line), three section headings,
and per item a decision paragraph ending `: Upheld|Overturned` followed by labelled paragraphs.
"""

from __future__ import annotations

import re

from ..errors import LetterError
from ..records import Item, Letter
from .header import header_fields, parse_header
from .limits import DEFAULT_LIMITS, Limits
from .pdftext import Fragment, Line, extract_lines

HEADINGS = {
    "how": re.compile(r"^\s*HOW\s+THE\s+IMR\s+FINAL\s+DETERMINATION\s+WAS\s+MADE\s*$", re.I),
    "summary": re.compile(r"^\s*CLINICAL\s+CASE\s+SUMMARY\s*$", re.I),
    "issues": re.compile(r"^\s*IMR\s+ISSUES\s*,?\s*DECISIONS\s*,?\s*AND\s+RATIONALES?\s*$", re.I),
}
_SUMMARY_INTRO = re.compile(r"^.*?including\s+all\s+medical\s+records\s*:\s*", re.I | re.S)
_ISSUES_INTRO = re.compile(r"set\s+forth\s+below\s*:\s*$", re.I)

_CA = r"Claims\s+Administrator\s+guideline\s*:"
_MAX = r"MAXIMUS\s+guideline\s*:"
_RAT = r"Decision\s+rationale\s*:"
_ITEM_LABEL = re.compile(rf"^\s*(?P<label>{_CA}|{_MAX}|{_RAT})", re.I)
_DECISION_END = re.compile(r":\s*(?P<decision>Upheld|Overturned)\s*\.?\s*$", re.I)
_DECISION_ALONE = re.compile(r"^\s*(?P<decision>Upheld|Overturned)\s*\.?\s*$", re.I)

_AGE_SEX = re.compile(
    r"\b(?P<age>\d{1,3})\s*-?\s*(?:(?:year|yr)s?\s*-?\s*old|y\s*/\s*o|y\.o\.),?\s+(?P<sex>male|female|man|woman|gentleman|lady|"
    r"boy|girl)\b",
    re.I,
)
_SEX_ONLY = re.compile(r"\b(?:a|an)\s+(?P<sex>male|female|man|woman|gentleman|lady)\b", re.I)
_SEX_WORDS = {
    "male": "male",
    "man": "male",
    "gentleman": "male",
    "boy": "male",
    "female": "female",
    "woman": "female",
    "lady": "female",
    "girl": "female",
}

# Values run to the next label or the end of their paragraph (paragraphs are split by blank lines).
_LICENSURE = re.compile(
    r"State\(s\)\s+of\s+Licensure\s*:\s*(?P<v>.*?)\s*(?=Certification\(s\)|\n\n|$)", re.I | re.S
)
_SPECIALTY = re.compile(
    r"Certification\(s\)\s*/\s*Specialty\s*:\s*(?P<v>.*?)\s*(?=State\(s\)\s+of|\n\n|$)", re.I | re.S
)
_BOARD = re.compile(
    r"Board\s+Certified\s+in\s+(?P<spec>.+?)\s+and\s+(?:is\s+)?licensed\s+to\s+practice\s+in\s+(?P<states>.+?)\s*\.",
    re.I | re.S,
)

# Decision paragraph of a partially authorized request (see letter-record.md, `request`).
_ORIGINAL = re.compile(r"^(?P<orig>.+?)\s+was\s+the\s+original\s+request\s*\.\s*(?P<rest>.*)$", re.I | re.S)
_REMAINING = re.compile(
    r"remaining\s+IMR\s+eligible\s+portion\s+of\s+the\s+original\s+request\s*,?\s*(?P<req>.+?)\s*,?(?:\s+is)?\s*$",
    re.I | re.S,
)
# Greedy prefix: the last "original request," names the item (an earlier one says it stays eligible).
_ORIGINAL_ELIGIBLE = re.compile(r".*\boriginal\s+request\s*,\s*(?P<req>.+?)\s*,?(?:\s+is)?\s*$", re.I | re.S)


def normalize(text: str) -> str:
    """The text with runs of white space folded to one space.

    :param text: any text.
    :return: the folded text.
    """
    return " ".join(text.split())


_WORD_HYPHEN_END = re.compile(r"(?<=[A-Za-z])-$")


def join_lines(lines: list[Line]) -> str:
    """Lines into one paragraph; a word hyphenated at a line end is joined without a space."""
    parts: list[str] = []
    for ln in lines:
        text = ln.text.strip()
        if parts and _WORD_HYPHEN_END.search(parts[-1]):
            parts[-1] += text
        else:
            parts.append(text)
    return normalize(" ".join(parts))


def paragraphs_text(lines: list[Line]) -> str:
    """Lines joined with newlines, with a blank line where a new paragraph starts (a gap of more
    than one line's spacing, or a new page)."""
    out: list[str] = []
    for prev, ln in zip([None, *lines], lines, strict=False):
        if prev is not None:
            gap = ln.y - prev.y
            out.append("\n\n" if ln.page != prev.page or gap >= 1.75 * max(ln.size, prev.size) else "\n")
        out.append(ln.text)
    return "".join(out)


# --- sections -------------------------------------------------------------------------------


def _split_sections(lines: list[Line]) -> dict[str, list[Line]]:
    marks: list[tuple[int, str]] = []
    for i, ln in enumerate(lines):
        for name, rx in HEADINGS.items():
            if rx.match(ln.text) and name not in {n for _, n in marks}:
                marks.append((i, name))
    if not marks:
        return {"header": lines}
    sections = {"header": lines[: marks[0][0]]}
    for k, (i, name) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else len(lines)
        sections[name] = lines[i + 1 : end]
    return sections


def _reviewer(text: str) -> tuple[str | None, list[str] | None]:
    spec = states = None
    if m := _LICENSURE.search(text):
        states = _split_states(m.group("v"))
    if m := _SPECIALTY.search(text):
        spec = normalize(m.group("v")) or None
    if (spec is None or states is None) and (m := _BOARD.search(text)):
        spec = spec or normalize(m.group("spec")).rstrip(",;")
        states = states or _split_states(m.group("states"))
    return spec, states


def letter_format(reviewer_text: str) -> str:
    """`final_2016` when the reviewer is named in a credentials block (`State(s) of Licensure:`,
    `Certification(s)/Specialty:`), else `seed_2013` (the 2013-14 letters name the board
    certification in the boilerplate, or not at all).

    :param reviewer_text: the HOW THE IMR FINAL DETERMINATION WAS MADE section's text.
    :return: the record's `letter_format`.
    """
    return (
        "final_2016" if _LICENSURE.search(reviewer_text) or _SPECIALTY.search(reviewer_text) else "seed_2013"
    )


def _split_states(text: str) -> list[str] | None:
    parts = re.split(r"\s*,\s*|\s+and\s+|\s*;\s*", normalize(text).rstrip("."))
    parts = [p.strip() for p in parts if p.strip()]
    return parts or None


def _patient(summary: str) -> tuple[int | None, str | None]:
    body = _SUMMARY_INTRO.sub("", summary, count=1)
    # The age and sex are stated in the opening sentence; later sentences mention other people.
    if m := _AGE_SEX.search(body[:600]):
        return int(m.group("age")), _SEX_WORDS[m.group("sex").lower()]
    first_sentence = re.split(r"(?<=[a-z])\.\s", body, maxsplit=1)[0]
    if m := _SEX_ONLY.search(first_sentence):
        return None, _SEX_WORDS[m.group("sex").lower()]
    return None, None


# --- items ----------------------------------------------------------------------------------


def _same_paragraph(prev: Line, cur: Line) -> bool:
    """Whether `prev` and `cur` are lines of one decision paragraph."""
    # Plain rationale text never runs on into a bold decision line; the reverse happens (the last
    # line of a bold decision paragraph can be mostly regular: "#26 is: Upheld").
    if cur.bold and not prev.bold:
        return False
    if prev.page == cur.page:
        return 0 < cur.y - prev.y < 1.75 * max(cur.size, prev.size)
    # Across a page break spacing says nothing; a finished sentence in plain text ends a paragraph.
    return prev.bold or not prev.text.rstrip().endswith(".")


def _item_spans(lines: list[Line]) -> list[tuple[int, int, str]]:
    """(first line, decision line, decision) of each item's decision paragraph."""
    spans = []
    floor = 0
    for i, ln in enumerate(lines):
        m = _DECISION_END.search(ln.text) or _DECISION_ALONE.match(ln.text)
        if not m:
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if nxt is None or not _ITEM_LABEL.match(nxt.text):
            continue
        # The decision word may wrap onto a line of its own (and in a different font).
        anchor = i
        if _DECISION_ALONE.match(ln.text):
            if i - 1 < floor or not lines[i - 1].text.rstrip().endswith(":"):
                continue
            anchor = i - 1
        start = anchor
        while start - 1 >= floor and _same_paragraph(lines[start - 1], lines[start]):
            if _ITEM_LABEL.match(lines[start - 1].text) or _ISSUES_INTRO.search(lines[start - 1].text):
                break
            start -= 1
        spans.append((start, i, m.group("decision").capitalize()))
        floor = i + 1
    return spans


def _labelled_fields(lines: list[Line]) -> dict[str, str | None]:
    """Splits an item's body lines into its labelled paragraphs (a label starts a line)."""
    fields: dict[str, str | None] = {}
    key, body = None, []

    def close() -> None:
        if key is not None and key not in fields:
            fields[key] = join_lines(body) or None

    for ln in lines:
        m = _ITEM_LABEL.match(ln.text)
        if m:
            close()
            label = m.group("label").lower()
            key = (
                "claims_administrator_guideline"
                if label.startswith("claims")
                else "maximus_guideline"
                if label.startswith("maximus")
                else "decision_rationale"
            )
            rest = ln.text[m.end() :].strip()
            body = [Line(ln.page, ln.y, ln.size, (Fragment(ln.x0, ln.x0, rest, ln.bold),))] if rest else []
        elif key is not None:
            body.append(ln)
    close()
    return fields


_ENUMERATOR = re.compile(r"^\(?\d{1,2}[.)]\s+")


def _request(paragraph: str) -> tuple[str, str | None]:
    # Some letters number their decision lines ("1. MRI of the knee: Upheld"); the number is not
    # part of the item.
    text = _ENUMERATOR.sub("", _DECISION_END.sub("", paragraph).strip())
    m = _ORIGINAL.match(text)
    if not m:
        return text, None
    orig, rest = normalize(m.group("orig")), m.group("rest")
    for rx in (_REMAINING, _ORIGINAL_ELIGIBLE):
        if r := rx.search(rest):
            return normalize(r.group("req")), orig
    return orig, orig


def _items(lines: list[Line]) -> list[Item]:
    intro = next((i for i, ln in enumerate(lines) if _ISSUES_INTRO.search(ln.text)), -1)
    lines = lines[intro + 1 :]
    spans = _item_spans(lines)
    items = []
    for k, (start, dec_line, decision) in enumerate(spans):
        end = spans[k + 1][0] if k + 1 < len(spans) else len(lines)
        request, original = _request(join_lines(lines[start : dec_line + 1]))
        fields = _labelled_fields(lines[dec_line + 1 : end])
        items.append(Item(seq=k + 1, request=request, original_request=original, decision=decision, **fields))
    return items


def _rationale_paragraphs(lines: list[Line]) -> int:
    """How many `Decision rationale:` paragraphs the issues section has (validate's item_structure
    rule compares it with the decision lines found)."""
    return sum(1 for ln in lines if re.match(rf"^\s*{_RAT}", ln.text, re.I))


def parse_lines(lines: list[Line]) -> Letter:
    """Builds the record from a letter's lines.

    :param lines: the letter's positioned text lines (`imr.parse.pdftext.extract_lines`).
    :return: the record, not yet enriched or validated.
    :raises LetterError: ``not_an_imr_letter`` when the IMR section headings are not there.
    """
    # Imported here: the notice grammar builds on this module's header and reviewer readers.
    from .notice2013 import is_notice, parse_notice

    if is_notice(lines):
        return parse_notice(lines)
    sections = _split_sections(lines)
    if "issues" not in sections or ("how" not in sections and "summary" not in sections):
        raise LetterError("not_an_imr_letter", "the IMR section headings were not found")
    header_lines = sections["header"]
    raw = parse_header(header_lines)
    head = header_fields(raw, join_lines(header_lines))
    reviewer_text = paragraphs_text(sections.get("how", []))
    specialty, states = _reviewer(reviewer_text)
    summary = join_lines(sections.get("summary", []))
    age, sex = _patient(summary)
    issue_lines = sections["issues"]
    return Letter(
        **head,
        reviewer_specialty=specialty,
        reviewer_licensure_states=states,
        patient_age=age,
        patient_sex=sex,
        items=_items(issue_lines),
        clinical_case_summary=_SUMMARY_INTRO.sub("", summary, count=1) or None,
        letter_format=letter_format(reviewer_text),
        rationale_paragraphs=_rationale_paragraphs(issue_lines),
    )


def parse_pdf(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Letter:
    """Parses one letter in this process.

    Not safe against hostile input on its own: time and memory bounds are enforced by the
    caller's worker process (imr.parse.workers).

    :param data: the PDF's bytes.
    :param limits: the size and page bounds checked before and while reading.
    :return: the record, not yet enriched or validated.
    :raises LetterError: with the rejection code of a file that yields no record.
    """
    if len(data) > limits.max_bytes:
        raise LetterError("too_large", f"{len(data)} bytes exceeds the {limits.max_bytes}-byte limit")
    return parse_lines(extract_lines(data, max_pages=limits.max_pages))
