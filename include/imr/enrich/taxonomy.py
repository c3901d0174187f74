"""The request taxonomy (categories and their subcategories, adapted from the DWC's IMR taxonomy).

The JSON ships inside the package (`request-taxonomy.json`, a copy of `../shared`'s) so that an
installed `imr` classifies without the shared checkout; a test keeps the two copies equal.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

TAXONOMY_FILE = "request-taxonomy.json"


@cache
def taxonomy() -> dict[str, tuple[str, ...]]:
    """Category -> its subcategories, in the file's order."""
    raw = json.loads(resources.files(__package__).joinpath(TAXONOMY_FILE).read_text(encoding="utf-8"))
    return {cat: tuple(subs) for cat, subs in raw.items()}


def is_valid(category: str, subcategory: str) -> bool:
    """Whether the pair is in the request taxonomy.

    :param category: the category.
    :param subcategory: the subcategory.
    :return: True when the taxonomy lists it.
    """
    return subcategory in taxonomy().get(category, ())


def check(category: str, subcategory: str) -> tuple[str, str]:
    """The pair itself, or ValueError: a rule that names a label outside the taxonomy is a bug."""
    if not is_valid(category, subcategory):
        raise ValueError(f"{category!r}/{subcategory!r} is not in the request taxonomy")
    return category, subcategory
