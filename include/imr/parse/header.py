"""The header table of a letter: which label takes which cell (`parse_header`) and the values read
from the cells (`header_fields`, `parse_date`). Geometry only, in PDF units of the positioned lines;
the letter's grammar (sections, reviewer, items) is `letter_parser`'s."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date

from ..facts import CASE_NUMBER_IN_TEXT
from .pdftext import Line

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


def parse_header(lines: list[Line]) -> dict[str, str | None]:
    """The header's raw value per field: each label takes the nearest cell to its right in its
    rows, else the cell below.

    :param lines: the header's lines (before the first section heading).
    :return: the raw text per `HEADER_LABELS` field (None where no label was found).
    """
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
    """The first date in a header value (m/d/yyyy, yyyy-mm-dd or Month d, yyyy).

    :param text: the value.
    :return: the date or None.
    """
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


def header_fields(raw: dict[str, str | None], header_text: str) -> dict:
    """The record's header fields from the raw values: case number, dates, priority.

    :param raw: `parse_header`'s values.
    :param header_text: the header's whole text (a case number outside its cell is found there).
    :return: the fields by name.
    """
    out: dict = {}
    case = raw.get("case_number") or ""
    m = CASE_NUMBER_IN_TEXT.search(case.replace(" ", "")) or CASE_NUMBER_IN_TEXT.search(header_text)
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
