"""Guideline lines -> the contract's citation objects (letter-record.md, "Enriched item fields"):
`Decision based on MTUS <title> <year>[, Section(s): <sections>]` (titles chained with `, and`),
`Decision based on Non-MTUS [Citation] <text>` with its family (ODG, ACOEM, other), and the older
letters' `based its decision on the MTUS ...` sentences. Lead-in sentences are not citations."""

from __future__ import annotations

import re
from typing import Any

from imr.facts import ACOEM, CITATION_SOURCES, CITED, MTUS, ODG, OTHER_FAMILY, UNCITED

MTUS_TITLES = (
    "Chronic Pain Medical Treatment",
    "Low Back Complaints",
    "Neck and Upper Back Complaints",
    "Shoulder Complaints",
    "Acupuncture Treatment",
    "Knee Complaints",
    "Opioid Treatment",
    "General Approaches",
    "Forearm, Wrist, and Hand Complaints",
    "Elbow Complaints",
    "Elbow Disorders",
    "Ankle and Foot Complaints",
    "Postsurgical Treatment",
    "Stress-Related Conditions",
)
NO_EVIDENCE = re.compile(r"did\s+not\s+cite\s+any\s+(medical\s+)?evidence", re.IGNORECASE)
# Where one citation starts. The older letters say "based its/his/her decision on the MTUS ...".
_CITE_START = re.compile(
    r"Decision\s+based\s+on\s+|\bbased\s+(?:its|his|her|his/her|their)\s+decision\s+on\s+the\s+(?=(?:Non-)?MTUS\s+\S)",
    re.IGNORECASE,
)
_NON_MTUS = re.compile(r"^Non-MTUS(?:\s+Citations?)?\s*:?\s*", re.IGNORECASE)
_MTUS = re.compile(r"^(?:the\s+)?(?:CA\s+)?MTUS\b\s*(?:\(\w+\)\s*)?:?\s*", re.IGNORECASE)
_TITLE = "|".join(re.escape(t) for t in sorted(MTUS_TITLES, key=len, reverse=True))
# One chained MTUS title: a known title (else any capitalised words without digits), its year
# (`2004`, `2016 Guidelines`, `(Revised 2007)`, `(May 2009)`), then sections or the next title.
_MTUS_PART = re.compile(
    rf"""(?:^|,?\s+and\s+)
    (?P<title>{_TITLE}|[A-Z][A-Za-z,&'/\- ]*?)
    (?:\s+Guidelines)?\s*,?\s*
    \(?(?:Revised\s+|[A-Z][a-z]+\s+)?(?P<year>(?:19|20)\d\d)\)?
    (?:\s+Guidelines)?
    (?=\s*,?\s*Sections?\s*\(s\)|\s*,?\s*Sections?:|,?\s+and\s+|\s*[.,]?\s*$|,\s+pages?\b|,\s)""",
    re.VERBOSE,
)
_SECTIONS = re.compile(r"^\s*,?\s*Sections?(?:\s*\(s\))?\s*:\s*", re.IGNORECASE)
_ODG = re.compile(r"\bODG\b|Official\s+Disability\s+Guidelines?", re.IGNORECASE)
_ACOEM = re.compile(
    r"\bACOEM\b|American\s+College\s+of\s+Occupational\s+and\s+Environmental\s+Medicine"
    r"|Occupational\s+Medicine\s+Practice\s+Guidelines",
    re.IGNORECASE,
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def family(text: str) -> str:
    """ODG before ACOEM: a citation naming both is counted as ODG (the contract's order)."""
    if _ODG.search(text):
        return ODG
    if _ACOEM.search(text):
        return ACOEM
    return OTHER_FAMILY


def _strip_period(text: str) -> str:
    return re.sub(r"\s*\.\s*$", "", text).strip()


def _mtus(body: str) -> list[dict[str, Any]]:
    """`Low Back Complaints 2004, Section(s): Summary, and Chronic Pain Medical Treatment 2016` ->
    one citation per title, sections being the text up to the next title."""
    body = _strip_period(body)
    parts: list[tuple[re.Match[str], str, int]] = []
    pos = 0
    while pos < len(body):
        m = _MTUS_PART.search(body, pos)
        if m is None or (not parts and m.start() != 0):
            break
        title = _norm(m.group("title")).rstrip(", ")
        title = re.sub(r"\s+Guidelines$", "", title)
        parts.append((m, title, int(m.group("year"))))
        pos = m.end()
    if not parts:
        return [{"family": MTUS, "title": _norm(body) or None, "year": None, "sections": None}]
    out = []
    for k, (m, title, year) in enumerate(parts):
        tail = body[m.end() : parts[k + 1][0].start() if k + 1 < len(parts) else len(body)]
        sections = None
        sm = _SECTIONS.match(tail)
        if sm:
            sections = _strip_period(_norm(tail[sm.end() :])) or None
        elif re.match(r"\s*,\s*\S", tail):
            # Older letters: "the MTUS Chronic Pain ... 2009, Opioids, pages 74-96, which is part of
            # the MTUS." name sections without the `Section(s):` label.
            rest = re.sub(r",?\s*which is part of the MTUS\.?$", "", _norm(tail.lstrip(" ,")), flags=re.I)
            sections = _strip_period(rest) or None
        out.append({"family": MTUS, "title": title, "year": year, "sections": sections})
    return out


def parse_guideline(text: str | None) -> dict[str, Any]:
    """One guideline line -> `{"evidence": "cited"|"none", "citations": [...]}` in text order."""
    if not text or not text.strip():
        return {"evidence": UNCITED, "citations": []}
    text = _norm(text)
    starts = list(_CITE_START.finditer(text))
    citations: list[dict[str, Any]] = []
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(text)
        segment = text[m.end() : end].strip()
        # A following lead-in sentence ("The Expert Reviewer ...") belongs to no citation.
        segment = re.split(r"(?<=\.)\s+(?=The\s+(Claims\s+Administrator|Expert\s+Reviewer)\b)", segment)[0]
        if not segment:
            continue
        non = _NON_MTUS.match(segment)
        if non:
            body = segment[non.end() :].strip()
            if body:
                citations.append({"family": family(body), "text": body})
            continue
        mt = _MTUS.match(segment)
        if mt:
            citations.extend(_mtus(segment[mt.end() :]))
        else:
            # "Decision based on ODG ..." without the Non-MTUS label: still a non-MTUS citation.
            citations.append({"family": family(segment), "text": segment})
    if not citations and NO_EVIDENCE.search(text):
        return {"evidence": UNCITED, "citations": []}
    return {"evidence": CITED if citations else UNCITED, "citations": citations}


def parse_citations(item: Any) -> dict[str, dict[str, Any]]:
    """Both guideline lines of an item (an `Item` or its dict form)."""

    def get(name: str) -> str | None:
        return item.get(name) if isinstance(item, dict) else getattr(item, name, None)

    claims_source, reviewer_source = CITATION_SOURCES
    return {
        claims_source: parse_guideline(get("claims_administrator_guideline")),
        reviewer_source: parse_guideline(get("maximus_guideline")),
    }
