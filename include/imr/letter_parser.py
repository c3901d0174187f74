"""Reads a Letter record out of an IMR Final Determination letter: `parse_pdf` (bytes -> validated
record, in this process) and `parse_lines` (positioned text lines -> record, contract v1).

Three letter formats are handled (`letter_format`): the first 2013 notices (module `notice2013`),
2016-17 letters (credentials block with `State(s) of Licensure:` and
`Certification(s)/Specialty:`) and 2013-14 letters (`Board Certified in X and is licensed to
practice in Y`). Layout facts the parser relies on are few and generic: header labels with their
values to the right in the same row (a label may wrap onto a second line), three section headings,
and per item a decision paragraph ending `: Upheld|Overturned` followed by labelled paragraphs.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date

from .errors import LetterError
from .limits import DEFAULT_LIMITS, Limits
from .pdftext import Fragment, Line, extract_lines
from .records import Item, Letter
from .validate import validate

# Header labels per field, preferred first ("Dated:" is the 2013-14 letters' decision date).
HEADER_LABELS = {
    "case_number": ("Case Number", "IMR Case Number"),
    "date_assigned": ("Date Assigned",),
    "date_of_injury": ("Date of Injury",),
    "decision_date": ("Decision Date", "Dated"),
    "ur_denial_date": ("UR Denial Date",),
    "application_received": ("Application Received",),
    "priority": ("Priority",),
}
# A loadable letter must say which case it decides and when.
REQUIRED_HEADER = ("case_number", "decision_date")


def _label_pattern(label: str) -> str:
    return r"\s+".join(map(re.escape, label.split()))


_LABELS = sorted(((lab, f) for f, labs in HEADER_LABELS.items() for lab in labs), key=lambda x: -len(x[0]))
# Any label with its colon, anywhere in a cell (some producers put a whole header row in one run).
_ANY_LABEL = re.compile(
    r"(?<![A-Za-z])(?:"
    + "|".join(f"(?P<l{i}>{_label_pattern(lab)})" for i, (lab, _) in enumerate(_LABELS))
    + r")\s*:",
    re.I,
)
_LABEL_WORDS = [lab.lower().split() for lab, _ in _LABELS]
_OTHER_LABEL = re.compile(r"^\s*[A-Za-z][A-Za-z()/'&\s-]{1,40}:")
_CASE_RE = re.compile(r"\b(CM\d{2}-\d{7})\b")
_DATE_RE = re.compile(r"\b(\d{1,2})\s*[/-]\s*(\d{1,2})\s*[/-]\s*(\d{4}|\d{2})\b")
_ISO_DATE_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        1,
    )
}
_LONG_DATE_RE = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4})\b")

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


# --- header ---------------------------------------------------------------------------------


@dataclass
class _Cell:
    x0: float
    x1: float
    top: float
    bottom: float
    text: str


def _header_cells(lines: list[Line]) -> list[_Cell]:
    return [_Cell(f.x0, f.x1, ln.y, ln.y, f.text) for ln in lines for f in ln.fragments]


def _label_of(text: str) -> tuple[str, str, int] | None:
    """(field, label text, end) when `text` starts with a header label and its colon."""
    m = _ANY_LABEL.match(text.strip())
    if not m:
        return None
    idx = int(next(k for k, v in m.groupdict().items() if v is not None)[1:])
    return _LABELS[idx][1], _LABELS[idx][0], m.end()


def _split_cells(cells: list[_Cell]) -> list[_Cell]:
    """Cuts a cell holding several "Label: value" pairs into one cell per pair; x positions are
    interpolated by character offset, which is close enough to keep the left-to-right order."""
    out = []
    for c in cells:
        starts = [m.start() for m in _ANY_LABEL.finditer(c.text)]
        if not starts or starts == [0]:
            out.append(c)
            continue
        bounds = [0, *[s for s in starts if s > 0], len(c.text)]
        width = (c.x1 - c.x0) / max(len(c.text), 1)
        for a, b in itertools.pairwise(bounds):
            piece = c.text[a:b].strip()
            if piece and piece.upper() != "IMR":  # "IMR Case Number:" split before "Case Number"
                out.append(_Cell(c.x0 + a * width, c.x0 + b * width, c.top, c.bottom, piece))
    return out


def _merge_wrapped_labels(cells: list[_Cell]) -> list[_Cell]:
    """Joins a label cut over two lines ("Application" / "Received:") into one cell spanning both."""
    out = list(cells)
    for a in cells:
        if a not in out or _label_of(a.text) or a.text.endswith(":"):
            continue
        words = a.text.lower().split()
        if not any(w[: len(words)] == words for w in _LABEL_WORDS):
            continue
        below = [b for b in out if b is not a and 0 < b.top - a.top < 30 and abs(b.x0 - a.x0) < 6]
        for b in sorted(below, key=lambda c: c.top):
            joined = f"{a.text} {b.text}"
            if _label_of(joined):
                out.remove(b)
                out[out.index(a)] = _Cell(a.x0, max(a.x1, b.x1), a.top, b.top, joined)
                break
    return out


def _value_for(cell: _Cell, labels: list[_Cell], values: list[_Cell]) -> str | None:
    """The nearest non-label cell to the right in the label's rows, with no other label in between;
    failing that, the cell right below the label (stacked layouts)."""
    tol = 4.0
    in_rows = [v for v in values if v.x0 >= cell.x1 - 2 and cell.top - tol <= v.top <= cell.bottom + tol]
    fences = [
        c.x0
        for c in labels
        if c is not cell and c.x0 > cell.x1 - 2 and cell.top - tol <= c.top <= cell.bottom + tol
    ]
    limit = min(fences, default=float("inf"))
    right = [v for v in in_rows if v.x0 < limit]
    if right:
        return min(right, key=lambda v: (v.x0, abs(v.top - cell.top))).text
    below = [v for v in values if 0 < v.top - cell.bottom < 20 and v.x0 < cell.x1 and v.x1 > cell.x0]
    if below:
        return min(below, key=lambda v: v.top).text
    return None


def _parse_header(lines: list[Line]) -> dict[str, str | None]:
    cells = _merge_wrapped_labels(_split_cells(_header_cells(lines)))
    labelled = [(c, lab) for c in cells if (lab := _label_of(c.text))]
    label_cells = [c for c, _ in labelled]
    # Labels this parser does not use ("Claims Number:", "Employee Name:") are no one's value, and
    # they end the row segment of the label to their left like any label.
    other_labels = [c for c in cells if c not in label_cells and _OTHER_LABEL.match(c.text)]
    values = [c for c in cells if c not in label_cells and c not in other_labels]
    fences = label_cells + other_labels
    # Preferred labels first, so an alias ("Dated:") only fills a field its main label did not.
    raw: dict[str, str | None] = {}
    for cell, (field, _label, end) in sorted(labelled, key=lambda x: HEADER_LABELS[x[1][0]].index(x[1][1])):
        inline = cell.text.strip()[end:].strip()
        value = inline or _value_for(cell, fences, values)
        if value and field not in raw:
            raw[field] = value
    return raw


def parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        if m := _ISO_DATE_RE.search(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DATE_RE.search(text):
            year = int(m[3])
            year += 2000 if year < 100 else 0
            return date(year, int(m[1]), int(m[2]))
        if (m := _LONG_DATE_RE.search(text)) and m[1].lower() in _MONTHS:
            return date(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    except ValueError:
        return None
    return None


def _header_fields(raw: dict[str, str | None], header_text: str) -> dict:
    out: dict = {}
    case = raw.get("case_number") or ""
    m = _CASE_RE.search(case.replace(" ", "")) or _CASE_RE.search(header_text)
    out["case_number"] = m.group(1) if m else None
    for field in (
        "date_assigned",
        "date_of_injury",
        "decision_date",
        "ur_denial_date",
        "application_received",
    ):
        out[field] = parse_date(raw.get(field))
    prio = (raw.get("priority") or "").strip()
    pm = re.match(r"(standard|expedited|urgent)\b", prio, re.I)
    out["priority"] = pm.group(1).capitalize() if pm else (prio or None)
    return out


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


def _check_items(lines: list[Line], items: list[Item]) -> None:
    labels = sum(1 for ln in lines if re.match(rf"^\s*{_RAT}", ln.text, re.I))
    if not items:
        raise LetterError("item_structure", "no decision line (`<item>: Upheld|Overturned`) was found")
    if labels != len(items) or any(i.decision_rationale is None for i in items):
        raise LetterError(
            "item_structure", f"{len(items)} decision line(s) but {labels} `Decision rationale:` paragraph(s)"
        )
    if any(not i.request for i in items):
        raise LetterError("item_structure", "a decision line names no item")


def parse_lines(lines: list[Line]) -> Letter:
    """Builds the record; raises LetterError when the text is not a loadable IMR letter."""
    # Imported here: the notice grammar builds on this module's header and reviewer readers.
    from .notice2013 import is_notice, parse_notice

    if is_notice(lines):
        return parse_notice(lines)
    sections = _split_sections(lines)
    if "issues" not in sections or ("how" not in sections and "summary" not in sections):
        raise LetterError("not_an_imr_letter", "the IMR section headings were not found")
    header_lines = sections["header"]
    raw = _parse_header(header_lines)
    head = _header_fields(raw, join_lines(header_lines))
    missing = [f for f in REQUIRED_HEADER if head.get(f) is None]
    if missing:
        raise LetterError(
            "header_missing_field", "header lacks " + ", ".join(HEADER_LABELS[f][0] for f in missing)
        )
    reviewer_text = paragraphs_text(sections.get("how", []))
    specialty, states = _reviewer(reviewer_text)
    summary = join_lines(sections.get("summary", []))
    age, sex = _patient(summary)
    issue_lines = sections["issues"]
    items = _items(issue_lines)
    _check_items(issue_lines, items)
    return Letter(
        **head,
        reviewer_specialty=specialty,
        reviewer_licensure_states=states,
        patient_age=age,
        patient_sex=sex,
        items=items,
        clinical_case_summary=_SUMMARY_INTRO.sub("", summary, count=1) or None,
        letter_format=letter_format(reviewer_text),
    ).enrich_items()


def parse_pdf(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Letter:
    """Parses and validates one letter in this process. Raises LetterError with a rejection code.

    Not safe against hostile input on its own: time and memory bounds are enforced by the
    caller's worker process (imr.workers)."""
    if len(data) > limits.max_bytes:
        raise LetterError("too_large", f"{len(data)} bytes exceeds the {limits.max_bytes}-byte limit")
    return validate(parse_lines(extract_lines(data, max_pages=limits.max_pages)))
