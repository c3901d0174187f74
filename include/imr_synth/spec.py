"""What a synthetic letter is before it is drawn: the ground-truth `Letter` plus the rendering choices that
are not part of the record (`ItemSpec`, `LetterSpec`), and `spec_from_letter`, the default choices for any
record."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imr.records import Item, Letter

from .phrases import BOILERPLATE_2013, BOILERPLATE_2016


@dataclass
class ItemSpec:
    """One disputed item as rendered. `kind` picks the decision-line form:
    `plain` (`<request>: Upheld`), `remaining` (`X was the original request. Y was authorized ... The
    remaining IMR eligible portion of the original request, Z is: Upheld`) or `eligible` (`X was the
    original request. The Claims Administrator authorized Y, leaving the original request IMR eligible.
    The original request, X is: Overturned`)."""

    item: Item
    kind: str = "plain"
    authorized: str | None = None
    uses_is: bool = True
    rationale_paragraphs: list[str] = field(default_factory=list)


@dataclass
class NoticeSpec:
    """The rendering choices of a 2013 notice (style `notice2013`): the header rows present, the
    decision sentences' wording per copy and item (`verdicts[copy][k]`, run-together words
    included), the prose paragraphs, and the per-item block layout: `seed` or `long` labels, or
    `none` (unlabelled prose the parser cannot read as blocks: the record is partial)."""

    header_rows: list[tuple[str, str]]
    sentence_lead: str
    verdicts: tuple[list[str], list[str]]
    dates_paragraph: str
    list_intro: str
    disclaimer: str
    summary: str
    blocks: str = "seed"
    restated: str = "{n}) {request}:"


@dataclass
class LetterSpec:
    letter: Letter
    style: str = "2016"
    boilerplate: str = BOILERPLATE_2016
    summary_paragraphs: list[str] = field(default_factory=list)
    items: list[ItemSpec] = field(default_factory=list)
    licensure_sep: str = ","
    justified: bool = True
    running_header: str | None = None
    footer_align: str = "center"
    # Extra vertical space before the three headings and the first item: shifts page breaks around.
    gaps: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    omit_case_number: bool = False
    omit_decision_lines: bool = False
    notice: NoticeSpec | None = None


def norm(s: str) -> str:
    """Whitespace collapsed: every text field of the truth is the rendered text in this form."""
    return " ".join(s.split())


def _paragraphs(text: str) -> list[str]:
    return [norm(p) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _boilerplate(letter: Letter, style: str, boilerplate_2013: str | None) -> str:
    if style != "2013":
        return BOILERPLATE_2016
    if boilerplate_2013:
        return norm(boilerplate_2013)
    states = letter.reviewer_licensure_states or ["California"]
    return BOILERPLATE_2013.format(
        specialty=letter.reviewer_specialty or "Internal Medicine", states=" and ".join(states)
    )


def _summary(letter: Letter, style: str) -> list[str]:
    if letter.clinical_case_summary:
        return _paragraphs(letter.clinical_case_summary)
    who = f"a {letter.patient_age}-year-old" if letter.patient_age is not None else "a"
    return [
        f"The {'patient' if style == '2013' else 'injured worker'} is {who} "
        f"{letter.patient_sex or 'male'} "
        "who reported an industrial injury. The mechanism of injury was not documented."
    ]


def _item_spec(it: Item) -> ItemSpec:
    kind, authorized = "plain", None
    if it.original_request:
        if it.request.lower() == it.original_request.lower():
            kind, authorized = "eligible", "a portion of the original request"
        else:
            kind, authorized = "remaining", "A portion of the original request"
    paras = _paragraphs(it.decision_rationale or "")
    return ItemSpec(it, kind=kind, authorized=authorized, rationale_paragraphs=paras)


def spec_from_letter(
    letter: Letter, *, style: str = "2016", boilerplate_2013: str | None = None
) -> LetterSpec:
    """Default rendering choices for a given record. Text fields may separate paragraphs with blank lines."""
    return LetterSpec(
        letter=letter,
        style=style,
        boilerplate=_boilerplate(letter, style, boilerplate_2013),
        summary_paragraphs=_summary(letter, style),
        items=[_item_spec(it) for it in letter.items],
    )
