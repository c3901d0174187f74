"""Checks on a parsed letter that keep it loadable but flag it (warnings travel with the record)."""

from __future__ import annotations

import itertools
import re

from .records import DATE_FIELDS, LETTER_FIELDS, Letter, ParseWarning

# Expected chronology of a dispute: injury, UR denial, IMR application, assignment, decision.
DATE_ORDER = DATE_FIELDS
AGE_RANGE = (14, 95)

_VERDICT = (
    r"(?:necessary|reasonable|indicated|supported|recommended|certified|appropriate|warranted|established)"
)
# "not", "non-" or "no longer" up to four words before the verdict word: "is determined to not be
# medically necessary", "is not seen as medically necessary".
_NEGATIVE = re.compile(
    rf"\b(?:not|non|no\s+longer)\b(?:[\s-]+[\w']+){{0,4}}?[\s-]+(?:medically\s+)?{_VERDICT}"
    rf"|\bnon-?certif",
    re.I,
)
_POSITIVE = re.compile(
    r"\b(?:is|are|was|were|be)\s+(?:medically\s+)?(?:necessary|indicated|supported|"
    r"recommended|appropriate|warranted|certified)",
    re.I,
)
# Fields a loadable letter may lack (the rest are required by the parser or derived).
_OPTIONAL = tuple(f for f in LETTER_FIELDS if f not in ("case_number", "decision_date", "outcome"))


def date_order_warnings(letter: Letter) -> list[ParseWarning]:
    known = [(f, getattr(letter, f)) for f in DATE_ORDER if getattr(letter, f) is not None]
    out = []
    for (f1, d1), (f2, d2) in itertools.pairwise(known):
        if d1 > d2:
            out.append(ParseWarning("date_order", f"{f1} {d1.isoformat()} is after {f2} {d2.isoformat()}"))
    return out


def rationale_polarity(rationale: str | None) -> str | None:
    """'negative' when the rationale's conclusion denies medical necessity, 'positive' when it
    affirms it, None when it says neither. Only the closing sentences count: the body often quotes
    guidelines both ways."""
    if not rationale:
        return None
    tail = rationale[-400:]
    sentences = re.split(r"(?<=[.!?])\s+", tail)
    for sentence in reversed(sentences):
        if _NEGATIVE.search(sentence):
            return "negative"
        if _POSITIVE.search(sentence):
            return "positive"
    return None


def polarity_warnings(letter: Letter) -> list[ParseWarning]:
    out = []
    for item in letter.items:
        pol = rationale_polarity(item.decision_rationale)
        expected = "negative" if item.decision == "Upheld" else "positive"
        if pol is not None and pol != expected:
            out.append(
                ParseWarning(
                    "rationale_polarity",
                    f"item {item.seq} is {item.decision} but its rationale concludes {pol}ly",
                )
            )
    return out


def age_warnings(letter: Letter) -> list[ParseWarning]:
    age = letter.patient_age
    if age is not None and not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        return [ParseWarning("unusual_age", f"patient age {age} is outside {AGE_RANGE[0]}-{AGE_RANGE[1]}")]
    return []


def missing_warnings(letter: Letter) -> list[ParseWarning]:
    missing = [f for f in _OPTIONAL if getattr(letter, f) is None]
    return (
        [ParseWarning("field_missing", "not stated in the letter: " + ", ".join(missing))] if missing else []
    )


def validate(letter: Letter) -> Letter:
    """Attaches warnings to the letter (rejections are raised earlier, by the parser). Warnings the
    parser already attached (`format_2013_notice_partial`) are kept; validating twice adds nothing."""
    found = (
        date_order_warnings(letter)
        + polarity_warnings(letter)
        + age_warnings(letter)
        + missing_warnings(letter)
    )
    letter.warnings = list({(w.code, w.message): w for w in [*letter.warnings, *found]}.values())
    return letter
