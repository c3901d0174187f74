"""Enriched item fields (contract v2, `label_basis` added in v3): each item's request category and
subcategory in the DWC IMR taxonomy with the basis of that label, and its two guideline lines parsed
into citations. Pure functions of the item's text; no
I/O beyond the package's own data files (`request-taxonomy.json`, `drugs.json`)."""

from __future__ import annotations

from typing import Any

from .citations import parse_citations, parse_guideline
from .classify import Classification, classify
from .taxonomy import taxonomy

__all__ = [
    "CLASSIFIER_VERSION",
    "LABEL_BASES",
    "Classification",
    "classify",
    "enrich",
    "enrich_item",
    "enrich_letter",
    "parse_citations",
    "parse_guideline",
    "taxonomy",
]

# Bump on any change to the rules, the lexicon or the taxonomy that can change a label: stored labels
# of an older version are what `imr relabel` recomputes.
CLASSIFIER_VERSION = "2026.12-head-1"
LABEL_BASES = ("rule", "rationale", "default")


def enrich(item: Any) -> dict[str, Any]:
    """`{"category", "subcategory", "label_basis", "citations"}` for an item.

    :param item: an `imr.records.Item` or its dict (``request``, ``decision_rationale`` and the two
        guideline lines are read).
    :return: the enriched fields.
    """

    def get(name: str) -> str | None:
        return item.get(name) if isinstance(item, dict) else getattr(item, name, None)

    label = classify(get("request") or "", get("decision_rationale"))
    return {
        "category": label.category,
        "subcategory": label.subcategory,
        "label_basis": label.basis,
        "citations": parse_citations(item),
    }


def enrich_letter(letter: Any) -> Any:
    """Fills every item's enriched fields (`category`, `subcategory`, `label_basis`, `citations`)
    in place.

    :param letter: an `imr.records.Letter`.
    :return: the same letter.
    """
    for item in letter.items:
        enrich_item(item)
    return letter


def enrich_item(item: Any) -> Any:
    """Fills one item's enriched fields in place (what `imr relabel` does to a stored item).

    :param item: an `imr.records.Item`.
    :return: the same item.
    """
    for name, value in enrich(item).items():
        setattr(item, name, value)
    return item
