"""The synthetic letters' words: loads `phrases.json` (the fixed wording of a letter, the phrase lists and
the sentence templates) and names its parts. No logic lives here; `content` decides what to pick."""

from __future__ import annotations

import json
from importlib import resources
from typing import NamedTuple


class Topic(NamedTuple):
    """A treatment topic: the guideline chapters a decision cites and the sentences a rationale opens with."""

    mtus: str | None  # None: the body part's MTUS chapter
    sections: list[str]
    odg: str | None  # None: the body part's ODG chapter
    odg_topics: list[str]
    thing: str  # what the rationale calls the treatment
    guide: list[str]  # guideline sentences that open a rationale


_DATA = json.loads(resources.files(__package__).joinpath("phrases.json").read_text(encoding="utf-8"))

_WORDING = _DATA["wording"]
HEADING_HOW: str = _WORDING["heading_how"]
HEADING_SUMMARY: str = _WORDING["heading_summary"]
HEADING_ISSUES: str = _WORDING["heading_issues"]
SUMMARY_INTRO: str = _WORDING["summary_intro"]
ISSUES_INTRO: str = _WORDING["issues_intro"]
CREDENTIALS_INTRO: str = _WORDING["credentials_intro"]
BOILERPLATE_2016: str = _WORDING["boilerplate_2016"]
BOILERPLATE_2013: str = _WORDING["boilerplate_2013"]  # fields {specialty}, {states}
LABEL_CLAIMS_ADMINISTRATOR: str = _WORDING["label_claims_administrator"]
LABEL_MAXIMUS: str = _WORDING["label_maximus"]
LABEL_RATIONALE: str = _WORDING["label_rationale"]
DECISION_REMAINING: str = _WORDING["decision_remaining"]
DECISION_ELIGIBLE: str = _WORDING["decision_eligible"]
RUNNING_HEADERS: list[str] = _WORDING["running_headers"]

STATES: list[str] = _DATA["states"]
SPECIALTIES_2016: list[str] = _DATA["specialties_2016"]
SPECIALTIES_2013: list[str] = _DATA["specialties_2013"]
SUBJECTS_2016: list[str] = _DATA["subjects_2016"]
SUBJECTS_2013: list[str] = _DATA["subjects_2013"]
# (how the letter names it, body area): the area picks the guideline chapters.
BODY_PARTS: list[tuple[str, str]] = [tuple(p) for p in _DATA["body_parts"]]
MTUS_CHAPTER: dict[str, str] = _DATA["mtus_chapter"]
ODG_CHAPTER: dict[str, str] = _DATA["odg_chapter"]
TOPICS: dict[str, Topic] = {name: Topic(**t) for name, t in _DATA["topics"].items()}
# (name, strengths, topic)
DRUGS: list[tuple[str, list[str], str]] = [tuple(d) for d in _DATA["drugs"]]
CREAM_INGREDIENTS: list[str] = _DATA["cream_ingredients"]
# Countable requests (`{n}`, what partial authorizations cut down): (template, topic, (lo, hi)).
COUNTED: list[tuple[str, str, tuple[int, int]]] = [(t, k, tuple(r)) for t, k, r in _DATA["counted_requests"]]
# Requests without a quantity: (template, topic).
FIXED: list[tuple[str, str]] = [tuple(f) for f in _DATA["fixed_requests"]]
DIAGNOSES: list[str] = _DATA["diagnoses"]
TREATMENTS: list[str] = _DATA["treatments"]
MECHANISMS: list[str] = _DATA["mechanisms"]

# Sentence templates, grouped by the part of the letter they write.
REQUESTS: dict = _DATA["requests"]
GUIDELINES: dict = _DATA["guidelines"]
RATIONALE: dict = _DATA["rationale"]
SUMMARY: dict = _DATA["summary"]
# The first 2013 format's wording ("Notice of Independent Medical Review Determination").
NOTICE: dict = _DATA["notice_2013"]
