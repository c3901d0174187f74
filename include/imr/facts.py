"""Facts about the letters and the warehouse that several stages rely on, each stated once here.

A leaf module: it imports nothing from `imr`, so every stage may import it. The migrations'
CHECK constraints restate some of these values in SQL; tests/test_architecture.py reads them back
from a migrated database and asserts they agree."""

from __future__ import annotations

import re

# The DWC's IMR case number, e.g. CM16-0213037. The same text is a Python and a PostgreSQL regular
# expression (`\d` is a class shorthand in both), so the quality check in SQL uses it unchanged.
CASE_NUMBER_PATTERN = r"CM\d{2}-\d{7}"
CASE_NUMBER_SHAPE = "CMyy-nnnnnnn"
# A whole value that is a case number (the record's field).
CASE_NUMBER = re.compile(rf"^{CASE_NUMBER_PATTERN}$")
# A case number inside a line of text (the header cell, a running page header).
CASE_NUMBER_IN_TEXT = re.compile(rf"\b({CASE_NUMBER_PATTERN})\b")

# Guideline citations (contract v2; imr.item_citations): the two parties whose guideline lines are
# parsed, whether each cited any evidence, and the family of each citation.
CITATION_SOURCES = ("claims_administrator", "expert_reviewer")
EVIDENCE = ("cited", "none")
CITED, UNCITED = EVIDENCE
CITATION_FAMILIES = ("MTUS", "ODG", "ACOEM", "other")
MTUS, ODG, ACOEM, OTHER_FAMILY = CITATION_FAMILIES

# The request category whose subcategory is the drug class, and the drug class the Insights page
# and `imr insights` single out ("Opioid Antagonist" is not one).
PHARMACEUTICALS = "Pharmaceuticals"
HIGHLIGHTED_DRUG_CLASS = "Opioids"
