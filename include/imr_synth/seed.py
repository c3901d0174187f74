"""The 2013-era seed letter (`../shared/seed-letter-2013-era.txt`, text extracted from a real PDF): parsed
back into its sections and items and rendered under a generated header, with the record as ground truth."""

from __future__ import annotations

import pathlib
import random
import re
from datetime import date

from imr.enrich import enrich_letter
from imr.records import Item, Letter

from .content import dated_letter, random_case_number, random_dates
from .phrases import (
    HEADING_HOW,
    HEADING_ISSUES,
    HEADING_SUMMARY,
    ISSUES_INTRO,
    LABEL_CLAIMS_ADMINISTRATOR,
    LABEL_MAXIMUS,
    LABEL_RATIONALE,
)
from .render import render_spec
from .spec import ItemSpec, LetterSpec, norm

_HEADINGS = (HEADING_HOW, HEADING_SUMMARY, HEADING_ISSUES)
_LABELS = (LABEL_CLAIMS_ADMINISTRATOR, LABEL_MAXIMUS, LABEL_RATIONALE)


def _seed_paragraphs(text: str) -> list[str]:
    """The seed is text extracted from a PDF: each line is followed by an empty line, a paragraph ends at a
    whitespace-only line, and a run of several empty lines is a page break that also ended a paragraph."""
    paras: list[str] = []
    cur: list[str] = []
    empties = 0

    def flush() -> None:
        if cur:
            paras.append(norm(" ".join(cur)))
            cur.clear()

    for line in text.splitlines():
        if line == "":
            empties += 1
            if empties >= 3:
                flush()
            continue
        empties = 0
        if not line.strip() or line.strip() in _HEADINGS:
            flush()
            if line.strip():
                paras.append(line.strip())
            continue
        cur.append(line)
    flush()
    return paras


def _seed_items(issues: list[str]) -> list[ItemSpec]:
    """Items from the paragraphs after the issues heading: a decision line opens an item, the labelled
    paragraphs fill it, unlabelled ones continue its rationale."""
    items: list[ItemSpec] = []
    for p in issues:
        dm = re.fullmatch(r"(.+?):\s*(Upheld|Overturned)", p)
        if dm and not p.startswith(_LABELS):
            items.append(ItemSpec(Item(seq=len(items) + 1, request=dm.group(1), decision=dm.group(2))))
        elif p.startswith(LABEL_CLAIMS_ADMINISTRATOR):
            items[-1].item.claims_administrator_guideline = p.split(":", 1)[1].strip()
        elif p.startswith(LABEL_MAXIMUS):
            items[-1].item.maximus_guideline = p.split(":", 1)[1].strip()
        elif p.startswith(LABEL_RATIONALE):
            items[-1].rationale_paragraphs.append(p.split(":", 1)[1].strip())
        elif items and items[-1].rationale_paragraphs:
            items[-1].rationale_paragraphs.append(p)
    for s in items:
        s.item.decision_rationale = " ".join(s.rationale_paragraphs)
    return items


def seed_letter_pdf(
    seed_text_path: str | pathlib.Path, *, rng: random.Random | None = None, case_number: str | None = None
) -> tuple[Letter, bytes]:
    """Render the 2013-era seed letter's sections under a generated header; returns (truth, PDF)."""
    rng = rng or random.Random(2013)
    paras = _seed_paragraphs(pathlib.Path(seed_text_path).read_text(encoding="utf-8"))
    i_how, i_sum, i_iss = (paras.index(h) for h in _HEADINGS)
    boilerplate = " ".join(paras[i_how + 1 : i_sum])
    m = re.search(r"Board Certified in (.+?) and is licensed to practice in (.+?)\.", boilerplate)
    if not m:
        raise ValueError("seed letter: no reviewer credentials sentence")
    summary = [p for p in paras[i_sum + 1 : i_iss] if not p.startswith("The expert reviewer developed")]
    m_pat = re.search(r"\b(\d+)[- ]year[- ]old (male|female)\b", summary[0])
    items = _seed_items([p for p in paras[i_iss + 1 :] if p != ISSUES_INTRO])
    m_doi = re.search(r"injury on (\d\d)/(\d\d)/(\d{4})", summary[0])
    doi = date(int(m_doi.group(3)), int(m_doi.group(1)), int(m_doi.group(2))) if m_doi else None
    dates = random_dates(rng, "2013", injury=doi)
    letter = dated_letter(
        case_number or random_case_number(rng, dates[2]),  # dates[2]: the application received
        dates,
        reviewer_specialty=norm(m.group(1)),
        reviewer_licensure_states=[m.group(2)],
        patient_age=int(m_pat.group(1)) if m_pat else None,
        patient_sex=m_pat.group(2) if m_pat else None,
        items=[s.item for s in items],
        clinical_case_summary=" ".join(summary),
        letter_format="seed_2013",
    )
    enrich_letter(letter)
    spec = LetterSpec(
        letter=letter, style="2013", boilerplate=boilerplate, summary_paragraphs=summary, items=items
    )
    return letter, render_spec(spec)
