"""The drug lexicon (`drugs.json`, data rather than code) and the look-ups on it: which drug names a
request mentions, in order, resolving brand names, combination products and common misspellings to
the taxonomy's Pharmaceuticals subcategory (drug class)."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .taxonomy import check

LEXICON_FILE = "drugs.json"
_MAX_WORDS = 4  # the longest name in the lexicon ("butalbital apap caffeine", ...)
# Fuzzy matching is a last resort for misspellings nobody listed; short words are too easily near a
# drug name ("soma"/"some"), so only long, purely alphabetic words are tried.
_FUZZY_MIN_LEN = 7
_FUZZY_CUTOFF = 0.86


def fold(text: str) -> str:
    """Lower case, punctuation to spaces, runs of spaces to one: the form names are matched in."""
    text = text.lower().replace("®", " ").replace("™", " ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


@dataclass(frozen=True)
class Hit:
    """One drug name found in a request: its word span, name and class."""

    start: int  # word index in the folded text
    end: int
    name: str  # the lexicon's name (after resolving a misspelling)
    drug_class: str
    via: str  # "lexicon", "misspelling" or "fuzzy"


@dataclass(frozen=True)
class Lexicon:
    """The drug lexicon of drugs.json: names per class, misspellings, companion words."""

    names: dict[str, str]  # folded name -> drug class
    misspellings: dict[str, str]  # folded misspelling -> folded name
    companions: frozenset[str]
    commercial_topical: frozenset[str]
    systemic_transdermal: frozenset[str]
    fuzzy_pool: tuple[str, ...]


@cache
def lexicon() -> Lexicon:
    """The drug lexicon, read once from the package's drugs.json.

    :return: the lexicon.
    """
    raw = json.loads(resources.files(__package__).joinpath(LEXICON_FILE).read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for drug_class, members in raw["classes"].items():
        check("Pharmaceuticals", drug_class)
        for name in members:
            key = fold(name)
            if key in names and names[key] != drug_class:
                raise ValueError(f"drug {name!r} is listed under {names[key]!r} and {drug_class!r}")
            names[key] = drug_class
    misspellings = {fold(k): fold(v) for k, v in raw["misspellings"].items()}
    for wrong, right in misspellings.items():
        if right not in names:
            raise ValueError(f"misspelling {wrong!r} points at {right!r}, which is not in the lexicon")
    pool = tuple(sorted(n for n in names if " " not in n and len(n) >= _FUZZY_MIN_LEN - 1))
    return Lexicon(
        names=names,
        misspellings=misspellings,
        companions=frozenset(fold(n) for n in raw["companions"]),
        commercial_topical=frozenset(fold(n) for n in raw["commercial_topical_ingredients"]),
        systemic_transdermal=frozenset(fold(n) for n in raw["systemic_transdermals"]),
        fuzzy_pool=pool,
    )


def find_drugs(text: str, fuzzy: bool = False) -> list[Hit]:
    """Drug names in `text`, left to right, the longest name winning at each position (so
    `hydrocodone/APAP` is one hit, not two)."""
    lex = lexicon()
    words = fold(text).split()
    hits: list[Hit] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_WORDS, len(words) - i), 0, -1):
            key = " ".join(words[i : i + n])
            if key in lex.names:
                hits.append(Hit(i, i + n, key, lex.names[key], "lexicon"))
                break
            if key in lex.misspellings:
                name = lex.misspellings[key]
                hits.append(Hit(i, i + n, name, lex.names[name], "misspelling"))
                break
        else:
            word = words[i]
            if fuzzy and len(word) >= _FUZZY_MIN_LEN and word.isalpha():
                close = difflib.get_close_matches(word, lex.fuzzy_pool, n=1, cutoff=_FUZZY_CUTOFF)
                if close:
                    hits.append(Hit(i, i + 1, close[0], lex.names[close[0]], "fuzzy"))
            i += 1
            continue
        i = hits[-1].end
    return hits


def principal(hits: list[Hit]) -> Hit | None:
    """The drug a request is about. In a combination product the partner ingredients (APAP,
    aspirin, caffeine, naloxone...) only accompany the active one, so the first other drug wins."""
    if not hits:
        return None
    companions = lexicon().companions
    return next((h for h in hits if h.name not in companions), hits[0])


def is_commercial_topical(hit: Hit) -> bool:
    """A drug sold as a ready-made topical (lidocaine, diclofenac, capsaicin, salicylates...), as
    opposed to a systemic drug that only exists topically when compounded."""
    return hit.drug_class == "Topical Analgesics" or hit.name in lexicon().commercial_topical
