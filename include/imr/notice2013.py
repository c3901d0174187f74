"""The first letter format (July 2013 for a few months): "Notice of Independent Medical Review
Determination" (../shared/format-2013-notice.md). `is_notice` tells it from the later layouts and
`parse_notice` reads its record (contract v3, `letter_format` = `notice_2013`).

What the format is known to hold: a title block (`Dated:` is the decision date) with whichever header
labels the existing header reader knows; a numbered list of decision sentences (`N) MAXIMUS Federal
Services, Inc. has determined the request for X is [not] medically necessary and appropriate.`),
given twice, the second time under `INDEPENDENT MEDICAL REVIEW DECISION AND RATIONALE` after a
paragraph with three dates in prose; the reviewer's board certification; a quoted case summary.
How the per-item guidelines and rationale are laid out is not known: item blocks are read only when
every item has one that this module recognizes (the request restated under its number, then the
three labelled paragraphs); otherwise the three fields stay null and the record carries the
warning `format_2013_notice_partial`. Nothing here guesses a value the letter does not state.
"""

from __future__ import annotations

import re
from datetime import date

from . import letter_parser as lp
from .errors import LetterError
from .pdftext import Fragment, Line
from .records import Item, Letter, ParseWarning

NOTICE_FORMAT = "notice_2013"
PARTIAL_WARNING = "format_2013_notice_partial"

_TITLE = re.compile(r"^\s*Notice\s+of\s+Independent\s+Medical\s+Review\s+Determination\s*$", re.I)
_DECISION_HEADING = re.compile(r"^\s*INDEPENDENT\s+MEDICAL\s+REVIEW\s+DECISION\s+AND\s+RATIONALE\s*$", re.I)
_QUALIFICATIONS = re.compile(
    r"^\s*Medical\s+Qualifications\s+of\s+the\s+Expert\s+Reviewer\s*:\s*(?P<rest>.*)$", re.I
)
_CASE_SUMMARY = re.compile(r"^\s*Case\s+Summary\s*:\s*(?P<rest>.*)$", re.I)
_LIST_INTRO = re.compile(
    r"decision\s+has\s+been\s+made\s+for\s+each\s+of\s+the\s+treatments?\s+and\s*/\s*or\s+services?"
    r"\s+that\s+(?:were|was)\s+in\s+dispute\s*:",
    re.I,
)
_NUMBERED = re.compile(r"^\s*\(?(?P<n>\d{1,2})[.)]\s+")
# One decision sentence. The words after the request may run together in the text layer
# ("notmedically"), so only the space before `is` is required (it ends the request).
_SENTENCE = re.compile(
    r"\(?(?P<n>\d{1,2})[.)]\s*MAXIMUS\s*Federal\s*Services\s*,?\s*Inc\s*\.?\s*,?\s*has\s*determined\s*"
    r"(?:that\s*)?the\s*request\s*for\s+(?P<req>(?:(?!\(?\d{1,2}[.)]\s*MAXIMUS).)+?)\s+is\s*(?P<neg>not\s*)?medically\s*necessary"
    r"\s*and\s*appropriate\s*\.",
    re.I | re.S,
)
# Any numbered sentence that starts like a decision: one _SENTENCE cannot read is a structure error.
_SENTENCE_START = re.compile(r"\(?\d{1,2}[.)]\s*MAXIMUS\s*Federal\s*Services", re.I)

_DATE = r"(?P<d>\d{1,2}\s*/\s*\d{1,2}\s*/\s*\d{2,4})"
_PROSE_DATES = {
    "application_received": re.compile(
        rf"application\s+for\s+Independent\s+Medical\s+Review\s+was\s+(?:filed|received|submitted)\s+on\s+{_DATE}",
        re.I,
    ),
    "ur_denial_date": re.compile(
        rf"Utilization\s+Review\s+(?:Denial|determination)\s+(?:dated|of)\s+{_DATE}", re.I
    ),
    "date_assigned": re.compile(
        r"Notice\s+of\s+Assignment\s+and\s+Request\s+for\s+Information\s+was\s+(?:provided|sent|mailed)\s+to"
        rf"\s+the\s+above\s+parties\s+on\s+{_DATE}",
        re.I,
    ),
}
_SUMMARY_INJURY = re.compile(rf"date\s+of\s+injury\s+(?:of|on)\s+{_DATE}", re.I)
# From the opening quote to the first closing quote that ends a paragraph.
_QUOTED = re.compile(r"[\"“](?P<q>.+?)[\"”]\s*(?:\n\n|$)", re.S)

# Item block labels: the seed-era labels and the longer wording the 2013 reviews may have used.
_CA = (
    r"(?:Claims\s+Administrator\s+guideline|Medical\s+Treatment\s+Guidelines?(?:\s*\(s\))?\s+Used\s+by"
    r"\s+the\s+Claims\s+Administrator(?:\s*\([^)]*\))?)\s*:"
)
_MAX = (
    r"(?:MAXIMUS\s+guideline|Medical\s+Treatment\s+Guidelines?(?:\s*\(s\))?\s+Used\s+by\s+the\s+Expert"
    r"\s+Reviewer)\s*:"
)
_RAT = r"(?:Decision\s+rationale|Rationale\s+for\s+the\s+Decision)\s*:"
_BLOCK_LABELS = {
    "claims_administrator_guideline": re.compile(rf"^\s*{_CA}", re.I),
    "maximus_guideline": re.compile(rf"^\s*{_MAX}", re.I),
    "decision_rationale": re.compile(rf"^\s*{_RAT}", re.I),
}
_RESTATED = re.compile(r"^(?:Regarding\s+)?(?:the\s+request\s+for\s+)?(?P<req>.+?)\s*[:.]?$", re.I | re.S)


def is_notice(lines: list[Line]) -> bool:
    """Whether the text is laid out as a 2013 notice: its title and its decision heading, each a line
    of its own (a document that only quotes the notice has neither as a line).

    :param lines: the document's text lines (imr.pdftext.extract_lines).
    :return: True for a 2013 notice.
    """
    return any(_TITLE.match(ln.text) for ln in lines) and any(
        _DECISION_HEADING.match(ln.text) for ln in lines
    )


def _index(lines: list[Line], rx: re.Pattern, start: int = 0) -> int | None:
    return next((i for i in range(start, len(lines)) if rx.match(lines[i].text)), None)


def _decisions(text: str, where: str) -> list[tuple[str, str]]:
    """(request, decision) per numbered sentence, checked to be numbered 1, 2, ... with none unread."""
    found = [
        (int(m["n"]), " ".join(m["req"].split()), "Upheld" if m["neg"] else "Overturned")
        for m in _SENTENCE.finditer(text)
    ]
    if len(found) != len(_SENTENCE_START.findall(text)):
        raise LetterError("item_structure", f"a decision sentence in {where} could not be read")
    if [n for n, _, _ in found] != list(range(1, len(found) + 1)):
        raise LetterError("item_structure", f"the decisions in {where} are not numbered 1, 2, ...")
    return [(req, dec) for _, req, dec in found]


def _decision_lists(lines: list[Line]) -> tuple[list[tuple[str, str]], int]:
    """The second copy of the decision list (the one the record takes) after it is checked against
    the first; and the index of the first line after the title block."""
    heading = _index(lines, _DECISION_HEADING)
    qualifications = _index(lines, _QUALIFICATIONS, heading) or _index(lines, _CASE_SUMMARY, heading)
    end = qualifications if qualifications is not None else len(lines)
    first_start = _index(lines[:heading], _NUMBERED)
    first = (
        _decisions(lp.join_lines(lines[first_start:heading]), "the title block")
        if first_start is not None
        else []
    )
    body = lp.join_lines(lines[heading + 1 : end])
    intro = _LIST_INTRO.search(body)
    second = _decisions(body[intro.end() :], "the decision section") if intro else []
    if not second:
        raise LetterError("item_structure", "no numbered decision follows `A decision has been made ...`")
    if first and [(r.lower(), d) for r, d in first] != [(r.lower(), d) for r, d in second]:
        raise LetterError("item_structure", "the two copies of the decision list disagree")
    return second, first_start if first_start is not None else heading


def _prose_dates(lines: list[Line]) -> dict[str, date | None]:
    heading = _index(lines, _DECISION_HEADING)
    text = lp.join_lines(lines[heading + 1 :])[:3000]
    return {f: lp.parse_date(m["d"]) if (m := rx.search(text)) else None for f, rx in _PROSE_DATES.items()}


def _section(lines: list[Line], rx: re.Pattern, stops: tuple[re.Pattern, ...]) -> list[Line]:
    """The lines after a heading (its own line's rest included) up to the next heading in `stops`."""
    start = _index(lines, rx)
    if start is None:
        return []
    end = next(
        (i for i in range(start + 1, len(lines)) if any(s.match(lines[i].text) for s in stops)), len(lines)
    )
    rest = rx.match(lines[start].text)["rest"].strip()
    first = lines[start]
    head = (
        [Line(first.page, first.y, first.size, (Fragment(first.x0, first.x0, rest, False),))] if rest else []
    )
    return head + lines[start + 1 : end]


def _summary(text: str) -> str | None:
    """The quoted summary (the disclaimer before it says where it was taken from); `text` separates
    paragraphs with blank lines."""
    m = _QUOTED.search(text)
    body = m["q"] if m else text
    # A word hyphenated at a line end is one word (as lp.join_lines reads it).
    body = re.sub(r"(?<=[A-Za-z])-\n(?=\S)", "-", body)
    return " ".join(body.split()) or None


def _label_marks(lines: list[Line]) -> dict[int, tuple[str, int, str]]:
    """Per line that opens a labelled paragraph: (field, lines the label takes, text after it). A
    long label ("Medical Treatment Guideline(s) Used by the Claims Administrator (...):") may wrap
    onto the next line."""
    marks: dict[int, tuple[str, int, str]] = {}
    for i, ln in enumerate(lines):
        for field, rx in _BLOCK_LABELS.items():
            if m := rx.match(ln.text):
                marks[i] = (field, 1, ln.text[m.end() :].strip())
                break
            two = f"{ln.text} {lines[i + 1].text}" if i + 1 < len(lines) else ln.text
            if (m := rx.match(two)) and m.end() > len(ln.text):
                marks[i] = (field, 2, two[m.end() :].strip())
                break
    return marks


def _block_starts(lines: list[Line], items: list[tuple[str, str]], marks: dict) -> list[int] | None:
    """The line opening each item's block (its number and the request restated), or None unless
    every item has one, in order."""
    starts: list[int] = []
    for i, ln in enumerate(lines):
        k = len(starts)
        m = _NUMBERED.match(ln.text)
        if k == len(items) or not m or int(m["n"]) != k + 1:
            continue
        label = next((j for j in sorted(marks) if j >= i), None)
        if label is None or label == i:
            continue
        restated = _RESTATED.match(_NUMBERED.sub("", lp.join_lines(lines[i:label])))
        if restated and restated["req"].lower() == items[k][0].lower():
            starts.append(i)
    return starts if len(starts) == len(items) else None


def _block_fields(lines: list[Line], offset: int, marks: dict) -> dict[str, str | None]:
    """The labelled paragraphs of one block (`lines` start at index `offset` of the marked lines)."""
    fields: dict[str, list[Line]] = {}
    key = None
    j = 0
    while j < len(lines):
        ln = lines[j]
        if mark := marks.get(offset + j):
            key, taken, rest = mark
            body = fields.setdefault(key, [])
            if rest:
                body.append(Line(ln.page, ln.y, ln.size, (Fragment(ln.x0, ln.x0, rest, ln.bold),)))
            j += taken
            continue
        if key is not None:
            fields[key].append(ln)
        j += 1
    return {f: lp.join_lines(v) or None for f, v in fields.items()}


def _blocks(lines: list[Line], items: list[tuple[str, str]]) -> tuple[list[dict] | None, int | None]:
    """The three labelled fields per item and the line the first block starts at; (None, None) when
    the blocks are not all recognizable."""
    marks = _label_marks(lines)
    starts = _block_starts(lines, items, marks)
    if starts is None:
        return None, None
    out = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        first = min(j for j in marks if j >= start)
        fields = _block_fields(lines[first:end], first, marks)
        if any(fields.get(f) is None for f in _BLOCK_LABELS):
            return None, None
        out.append(fields)
    return out, starts[0]


def parse_notice(lines: list[Line]) -> Letter:
    """Builds the record of a 2013 notice (`letter_format` `notice_2013`).

    :param lines: the notice's text lines, for which `is_notice` is true.
    :return: the record, with the warning `format_2013_notice_partial` when the per-item blocks
        were not recognized (their three fields are then null).
    :raises LetterError: `item_structure` when the decision sentences cannot be read or the two
        copies of the list disagree, `header_missing_field` without a case number or `Dated:`.
    """
    decisions, header_end = _decision_lists(lines)
    header_lines = lines[:header_end]
    head = lp._header_fields(lp._parse_header(header_lines), lp.join_lines(header_lines))
    for field, value in _prose_dates(lines).items():
        head[field] = head[field] or value
    missing = [f for f in lp.REQUIRED_HEADER if head.get(f) is None]
    if missing:
        raise LetterError("header_missing_field", "header lacks " + ", ".join(missing))
    stops = (_QUALIFICATIONS, _CASE_SUMMARY, _DECISION_HEADING)
    specialty, states = lp._reviewer(lp.paragraphs_text(_section(lines, _QUALIFICATIONS, stops)))
    after_summary = _section(lines, _CASE_SUMMARY, stops)
    blocks, first_block = _blocks(after_summary, decisions)
    summary = _summary(lp.paragraphs_text(after_summary[:first_block]))
    age, sex = lp._patient(summary or "")
    if head["date_of_injury"] is None and summary and (m := _SUMMARY_INJURY.search(summary[:600])):
        head["date_of_injury"] = lp.parse_date(m["d"])
    items = [
        Item(seq=k, request=req, decision=dec, **(blocks[k - 1] if blocks else {}))
        for k, (req, dec) in enumerate(decisions, 1)
    ]
    if any(not i.request for i in items):
        raise LetterError("item_structure", "a decision sentence names no item")
    warnings = []
    if blocks is None:
        warnings.append(
            ParseWarning(
                PARTIAL_WARNING,
                "2013 notice: the per-item guidelines and rationale were not recognized; the items carry "
                "their request and decision only",
            )
        )
    return Letter(
        **head,
        reviewer_specialty=specialty,
        reviewer_licensure_states=states,
        patient_age=age,
        patient_sex=sex,
        items=items,
        clinical_case_summary=summary,
        warnings=warnings,
        letter_format=NOTICE_FORMAT,
    ).enrich_items()
