"""The validate stage: every rule a letter record is held to, each written once with its code.

Three rule sets, run in this order:

- `LETTER_RULES` (rejections): does the record decide a case? Required header fields and the
  items lined up with their decisions. `validate` raises `LetterError` on the first that fails.
- `RECORD_RULES` (rejections): can the warehouse hold the record? Types and formats the tables'
  columns and CHECK constraints would refuse. The loader runs them (`record_rejection`) on every
  record it is given, whatever produced it, so one malformed record is quarantined on its own
  instead of aborting its batch.
- `WARNING_RULES` (warnings): the record is loadable but suspicious; `validate` attaches them.

Rejections that need the bytes (not a PDF, encrypted, no text layer, not an IMR letter at all) stay
in the parse stage, which cannot build a record from such a file."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from .enrich import LABEL_BASES
from .errors import LetterError
from .facts import CASE_NUMBER, CASE_NUMBER_SHAPE, CITATION_FAMILIES, CITATION_SOURCES, EVIDENCE
from .parse.notice2013 import PARTIAL_WARNING as NOTICE_PARTIAL_WARNING
from .records import DATE_FIELDS, DECISIONS, LETTER_FIELDS, LETTER_FORMATS, Item, Letter, ParseWarning

# Expected chronology of a dispute: injury, UR denial, IMR application, assignment, decision.
DATE_ORDER = DATE_FIELDS
AGE_RANGE = (14, 95)
# What a stored age can be at all (beyond it the record is wrong, not the patient unusual).
STORABLE_AGE = (0, 130)
# A loadable letter must say which case it decides and when (the header's label for each).
REQUIRED_HEADER = {"case_number": "Case Number", "decision_date": "Decision Date"}

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
# Fields a loadable letter may lack (the rest are required by the letter rules or derived).
_OPTIONAL = tuple(f for f in LETTER_FIELDS if f not in (*REQUIRED_HEADER, "outcome"))


@dataclass(frozen=True)
class Rule:
    """One rule: its `code` (a rejection code of `imr.errors.REJECTION_CODES` or a warning code)
    and `check`, which returns the messages of what the letter breaks (empty when it passes)."""

    code: str
    check: Callable[[Letter], list[str]]


# --- letter rules: does the record decide a case ---------------------------------------------


def required_header(letter: Letter) -> list[str]:
    """The required header fields the letter lacks, as one message.

    :param letter: the parsed record.
    :return: ``["header lacks ..."]`` or ``[]``.
    """
    missing = [label for f, label in REQUIRED_HEADER.items() if getattr(letter, f) is None]
    return ["header lacks " + ", ".join(missing)] if missing else []


def decision_lines(letter: Letter) -> list[str]:
    """Each item has a request and a rationale, and there is one `Decision rationale:` paragraph
    per decision line (the parser's count, `Letter.rationale_paragraphs`, when it read one).

    :param letter: the parsed record.
    :return: the first mismatch, or ``[]``.
    """
    items = letter.items
    if not items:
        return ["no decision line (`<item>: Upheld|Overturned`) was found"]
    labels = letter.rationale_paragraphs
    # A 2013 notice whose item blocks were not recognized loads its items without rationales, and
    # says so with its warning (docs/letter-record.md).
    partial = any(w.code == NOTICE_PARTIAL_WARNING for w in letter.warnings)
    unexplained = not partial and any(i.decision_rationale is None for i in items)
    if (labels is not None and labels != len(items)) or unexplained:
        return [f"{len(items)} decision line(s) but {labels} `Decision rationale:` paragraph(s)"]
    if any(not i.request for i in items):
        return ["a decision line names no item"]
    return []


# --- record rules: can the warehouse hold it -------------------------------------------------


def header_values(letter: Letter) -> list[str]:
    """Header values of a type or format the warehouse refuses (the first one).

    :param letter: any record, parsed or built.
    :return: ``[message]`` or ``[]``.
    """
    if not isinstance(letter.case_number, str) or not CASE_NUMBER.match(letter.case_number):
        return [f"case_number {letter.case_number!r} does not match {CASE_NUMBER_SHAPE}"]
    age = letter.patient_age
    low, high = STORABLE_AGE
    if age is not None and (not isinstance(age, int) or isinstance(age, bool) or not low <= age <= high):
        return [f"patient_age {age!r} is not an age"]
    for name in DATE_FIELDS:
        value = getattr(letter, name)
        if value is not None and not isinstance(value, date):
            return [f"{name} {value!r} is not a date"]
    states = letter.reviewer_licensure_states
    if states is not None and not all(isinstance(s, str) for s in states):
        return ["reviewer_licensure_states must be strings"]
    # imr.letters checks the value too, but a CHECK failure would abort the whole batch.
    if letter.letter_format is not None and letter.letter_format not in LETTER_FORMATS:
        return [f"letter_format {letter.letter_format!r} is not one of {LETTER_FORMATS}"]
    return []


def _enrichment_problem(item: Item) -> str | None:
    """What in an item's enriched fields imr.items / imr.item_citations would refuse, or None (the
    fields may all be None: a record from a parser older than the enrichment)."""
    for name in ("category", "subcategory"):
        if getattr(item, name) is not None and not isinstance(getattr(item, name), str):
            return f"{name} {getattr(item, name)!r} is not text"
    if item.label_basis not in (None, *LABEL_BASES):
        return f"label_basis {item.label_basis!r} is not one of {LABEL_BASES}"
    if item.citations is None:
        return None
    if not isinstance(item.citations, dict):
        return "citations is not an object"
    for source in CITATION_SOURCES:
        part = item.citations.get(source)
        if not isinstance(part, dict) or part.get("evidence") not in EVIDENCE:
            return f"citations.{source}.evidence is not {'/'.join(EVIDENCE)}"
        for c in part.get("citations") or []:
            if not isinstance(c, dict) or c.get("family") not in CITATION_FAMILIES:
                return f"citations.{source} has a citation without a known family"
    return None


def _item_problem(item: Item) -> str | None:
    if item.decision not in DECISIONS:
        return f"item {item.seq} decision {item.decision!r} is not Upheld/Overturned"
    if not isinstance(item.request, str) or not item.request.strip():
        return f"item {item.seq} has no request"
    problem = _enrichment_problem(item)
    return f"item {item.seq} {problem}" if problem else None


def item_values(letter: Letter) -> list[str]:
    """Item values the warehouse refuses: decision, request, enriched fields (the first item's).

    :param letter: any record, parsed or built.
    :return: ``[message]`` or ``[]``.
    """
    problem = next(filter(None, map(_item_problem, letter.items)), None)
    return [problem] if problem else []


def item_seqs(letter: Letter) -> list[str]:
    """Item numbers that are not distinct positive integers (the items' key in the warehouse).

    :param letter: any record, parsed or built.
    :return: ``[message]`` or ``[]``.
    """
    seqs = [i.seq for i in letter.items]
    if any(not isinstance(s, int) or s < 1 for s in seqs) or len(set(seqs)) != len(seqs):
        return [f"item seq values {seqs} are not distinct positive integers"]
    return []


# --- warnings --------------------------------------------------------------------------------


def date_order(letter: Letter) -> list[str]:
    """Consecutive known dates out of the dispute's chronology (`DATE_ORDER`).

    :param letter: the record.
    :return: one message per pair out of order.
    """
    known = [(f, getattr(letter, f)) for f in DATE_ORDER if getattr(letter, f) is not None]
    return [
        f"{f1} {d1.isoformat()} is after {f2} {d2.isoformat()}"
        for (f1, d1), (f2, d2) in itertools.pairwise(known)
        if d1 > d2
    ]


def rationale_polarity(rationale: str | None) -> str | None:
    """'negative' when the rationale's conclusion denies medical necessity, 'positive' when it
    affirms it, None when it says neither. Only the closing sentences count: the body often quotes
    guidelines both ways.

    :param rationale: an item's decision rationale.
    :return: ``"negative"``, ``"positive"`` or None.
    """
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


def polarity(letter: Letter) -> list[str]:
    """Items whose rationale concludes against their decision.

    :param letter: the record.
    :return: one message per such item.
    """
    out = []
    for item in letter.items:
        pol = rationale_polarity(item.decision_rationale)
        expected = "negative" if item.decision == "Upheld" else "positive"
        if pol is not None and pol != expected:
            out.append(f"item {item.seq} is {item.decision} but its rationale concludes {pol}ly")
    return out


def unusual_age(letter: Letter) -> list[str]:
    """A patient age outside `AGE_RANGE`.

    :param letter: the record.
    :return: ``[message]`` or ``[]``.
    """
    age = letter.patient_age
    if age is not None and not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        return [f"patient age {age} is outside {AGE_RANGE[0]}-{AGE_RANGE[1]}"]
    return []


def missing_fields(letter: Letter) -> list[str]:
    """The optional fields the letter does not state, as one message.

    :param letter: the record.
    :return: ``[message]`` or ``[]``.
    """
    missing = [f for f in _OPTIONAL if getattr(letter, f) is None]
    return ["not stated in the letter: " + ", ".join(missing)] if missing else []


LETTER_RULES = (Rule("header_missing_field", required_header), Rule("item_structure", decision_lines))
RECORD_RULES = (
    Rule("header_missing_field", header_values),
    Rule("item_structure", item_values),
    Rule("item_structure", item_seqs),
)
WARNING_RULES = (
    Rule("date_order", date_order),
    Rule("rationale_polarity", polarity),
    Rule("unusual_age", unusual_age),
    Rule("field_missing", missing_fields),
)


def _first_failure(rules: tuple[Rule, ...], letter: Letter) -> tuple[str, str] | None:
    for rule in rules:
        messages = rule.check(letter)
        if messages:
            return rule.code, messages[0]
    return None


def letter_rejection(letter: Letter) -> tuple[str, str] | None:
    """Why the record does not decide a case (code, message), or None.

    :param letter: the parsed record.
    :return: the first failing `LETTER_RULES` rule's code and message, or None.
    """
    return _first_failure(LETTER_RULES, letter)


def record_rejection(letter: Letter) -> tuple[str, str] | None:
    """Why the warehouse cannot take this record (code, message), or None.

    :param letter: any record (parsed, built by a test, read back from JSON).
    :return: the first failing `RECORD_RULES` rule's code and message, or None.
    """
    return _first_failure(RECORD_RULES, letter)


def warnings(letter: Letter) -> list[ParseWarning]:
    """Every warning of `WARNING_RULES`, in rule order.

    :param letter: the record.
    :return: the warnings (empty for an unremarkable letter).
    """
    return [ParseWarning(rule.code, m) for rule in WARNING_RULES for m in rule.check(letter)]


def validate(letter: Letter) -> Letter:
    """Rejects a record that decides no case; attaches the warnings to the rest. Warnings the parser
    already attached (`format_2013_notice_partial`) are kept; validating twice adds nothing.

    :param letter: the parsed (and enriched) record.
    :return: the same letter, its `warnings` set.
    :raises LetterError: with the code of the first failing `LETTER_RULES` rule.
    """
    problem = letter_rejection(letter)
    if problem is not None:
        raise LetterError(*problem)
    found = warnings(letter)
    letter.warnings = list({(w.code, w.message): w for w in [*letter.warnings, *found]}.values())
    return letter
