"""A request read as a phrase: its head (the service or drug asked for) and its modifiers (what it is
for, with whom, how often, before what), ambiguous abbreviations resolved by the words around them,
and the head noun of a request no rule names. The classifier (`classify.py`) uses these so that the
words of a modifier ("with evaluation of", "with a pain specialist", "before the MRI") cannot decide
the label of the service they modify."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import services as sv

# Where the head noun phrase ends: a preposition or conjunction that opens a modifier, a dose, a count
# or a frequency, punctuation that starts an aside. "of" and "and" do not end it: "MRI of the knee",
# "EMG and NCV" are one head.
_BOUNDARY = re.compile(
    r"""\s(with|w/|for|to|per|by|as|after|following|during|before|prior\s+to|regarding|re:|in\s+preparation\s+for
    |at\s+(the\s+)?next|due\s+to|secondary\s+to|under\s+the\s+care)\b
    |\s?[,;(:]
    |\bx\s*\d|\#\s*\d
    |\b\d+(\.\d+)?(/\d+(\.\d+)?)?\s*(mg|mcg|ml|gm?|grams?|%|units?)\b|\b\d+(\.\d+)?/\d+(\.\d+)?\b
    |\b\d+\s*(x|times)\b|\b(once|twice|one|two|three|four)\s+(a|per|times)\b
    |\b(daily|nightly|weekly|monthly|bid|tid|qid|qhs|prn|q\d+h?|every|at\s+bedtime)\b""",
    re.IGNORECASE | re.VERBOSE,
)
# A count or frequency in a modifier still belongs to the head: it is what tells sessions of a
# treatment from a product ("ultrasound x 6", "therapy 2 times a week").
_FREQUENCY = re.compile(
    r"""\bx\s*\d+|\b\d+\s*x\s*\d*\b|\b\d+\s*(sessions?|visits?|treatments?|times)\b|\b(per|a)\s+week\b|\bweekly\b""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class Phrase:
    """A request read as a head and its modifiers."""

    text: str  # the whole request (abbreviations resolved)
    head: str  # the head noun phrase, with any count or frequency of the modifiers
    noun_phrase: str  # the head noun phrase alone
    has_modifiers: bool
    notes: tuple[str, ...]  # abbreviations resolved, e.g. "PT=prothrombin time"


@dataclass(frozen=True)
class Sense:
    """One sense of an ambiguous abbreviation and the context words that select it."""

    abbreviation: str
    term: re.Pattern[str]
    context: re.Pattern[str]  # words elsewhere in the request that select this sense
    expansion: str


_LAB_CONTEXT = (
    r"\b(a?ptt|inr|protime|prothrombin|coag\w*|coumadin|warfarin|anticoag\w*|blood|labs?|cbc|cmp|levels?"
    r"|draw)\b"
)
_SURGERY_CONTEXT = (
    r"surg\w*|operat\w*|arthroscop\w*|arthroplast\w*|fusion|laminectom\w*|repair|release|replacement|reconstruct\w*"
    r"|\borif\b|\w+ectomy|\w+otomy|\w+plasty|\bassist\w*"
)
# An abbreviation with two senses in requests: the sense chosen by the context words is written out
# before the rules read the request; without such a context the usual sense stays.
SENSES = (
    Sense("PT", re.compile(r"\bpt\b(?!\s*(sessions?|visits?|therapy|treatments?|evaluation))", re.I),
          re.compile(_LAB_CONTEXT, re.I), "prothrombin time"),
    Sense("PA", re.compile(r"\bpa(-?c)?\b(?!\s*(and|&|/|-)\s*lat\w*|\s+views?|\s+\(?pennsylvania)", re.I),
          re.compile(_SURGERY_CONTEXT, re.I), "assistant at surgery"),
    Sense("physician assistant", re.compile(r"\bphysician'?s?\s+assistant\b", re.I),
          re.compile(_SURGERY_CONTEXT, re.I), "assistant at surgery"),
)  # fmt: skip


def resolve_abbreviations(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with each ambiguous abbreviation written out in the sense its context selects.

    :param text: a cleaned request.
    :return: the rewritten text and a note per abbreviation resolved (``"PT=prothrombin time"``).
    """
    notes = []
    for sense in SENSES:
        if not sense.term.search(text):
            continue
        rest = sense.term.sub(" ", text)
        if sense.context.search(rest):
            text = sense.term.sub(sense.expansion, text)
            notes.append(f"{sense.abbreviation}={sense.expansion}")
    return text, tuple(notes)


def read(text: str) -> Phrase:
    """The request split into its head and modifiers, abbreviations resolved first.

    :param text: a cleaned request (bookkeeping dropped).
    :return: the phrase.
    """
    text, notes = resolve_abbreviations(text)
    m = _BOUNDARY.search(text, 1)
    if m is None or not text[: m.start()].strip():
        return Phrase(text, text, text, False, notes)
    head, rest = text[: m.start()].strip(), text[m.start() :]
    counts = " ".join(f.group(0) for f in _FREQUENCY.finditer(rest))
    return Phrase(text, f"{head} {counts}".strip(), head, True, notes)


# The head noun of a request no rule names ("hygiene supplies", "sit-stand workstation"): the last
# word of the head phrase, when it is one of the generic nouns for what DMEPOS covers.
HEAD_NOUNS: tuple[tuple[re.Pattern[str], sv.Rule], ...] = (
    (re.compile(r"\b(supplies|supply|products?|items?|wipes|pads|kits?\s+refills?)$", re.I), sv.SUPPLIES),
    (
        re.compile(
            r"\b(chairs?|workstations?|stations?|desks?|tables?|rails?|seats?|benches|bench|software|keyboards?|mouse"
            r"|devices?|machines?|systems?|kits?|saunas?|baths?|lifts?|stands?|mats?|boards?|beds?|equipment)$",
            re.I,
        ),
        sv.DME,
    ),
)
_TRAILING = re.compile(r"[\s\W]+$")


def head_noun(head: str) -> sv.Rule | None:
    """The DMEPOS rule the head noun of `head` names, if any.

    :param head: the head noun phrase (`Phrase.noun_phrase`).
    :return: the rule, or None.
    """
    words = _TRAILING.sub("", head)
    return next((rule for pattern, rule in HEAD_NOUNS if pattern.search(words)), None)
