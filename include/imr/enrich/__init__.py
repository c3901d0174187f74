"""Enriched item fields (contract v2): each item's request category and subcategory in the DWC IMR
taxonomy, and its two guideline lines parsed into citations. Pure functions of the item's text; no
I/O beyond the package's own data files (`request-taxonomy.json`, `drugs.json`)."""

from __future__ import annotations

from typing import Any

from .citations import parse_citations, parse_guideline
from .classify import Classification, classify
from .taxonomy import taxonomy

__all__ = [
    "Classification",
    "classify",
    "enrich",
    "enrich_letter",
    "parse_citations",
    "parse_guideline",
    "taxonomy",
]


def enrich(item: Any) -> dict[str, Any]:
    """`{"category", "subcategory", "citations"}` for an item (an `imr.records.Item` or its dict)."""

    def get(name: str) -> str | None:
        return item.get(name) if isinstance(item, dict) else getattr(item, name, None)

    label = classify(get("request") or "", get("decision_rationale"))
    return {"category": label.category, "subcategory": label.subcategory, "citations": parse_citations(item)}


def enrich_letter(letter: Any) -> Any:
    """Fills every item's enriched fields (`category`, `subcategory`, `citations`) in place.

    :param letter: an `imr.records.Letter`.
    :return: the same letter.
    """
    for item in letter.items:
        for name, value in enrich(item).items():
            setattr(item, name, value)
    return letter
