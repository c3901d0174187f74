"""The letter record (contract v3, docs/letter-record.md): `Letter`, its `Item`s and
`ParseWarning`s, the field lists and the derived outcome (Uphold/Overturn). Field names are the
CLI's JSON keys and the warehouse columns. v3 adds `letter_format` (`LETTER_FORMATS`): which of the
three letter layouts the record was read from. The v2 enriched item fields (`category`, `subcategory`,
`citations`) are derived from the item's own text by `imr.enrich`. `ITEM_FIELDS` stays the v1
list; the warehouse stores the enriched fields as `imr.items.category`, `subcategory`, `*_evidence`
and `imr.item_citations` (imr.warehouse.load)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

from .enrich import enrich

LETTER_FIELDS = (
    "case_number",
    "date_assigned",
    "date_of_injury",
    "decision_date",
    "ur_denial_date",
    "application_received",
    "priority",
    "reviewer_specialty",
    "reviewer_licensure_states",
    "patient_age",
    "patient_sex",
    "outcome",
    "letter_format",
)
# The letter layouts (contract v3): the first 2013 "Notice of Independent Medical Review
# Determination", the 2013-14 "HOW THE IMR FINAL DETERMINATION WAS MADE" letters whose reviewer is
# named in the boilerplate (`Board Certified in X`), and the later letters with a credentials block.
LETTER_FORMATS = ("notice_2013", "seed_2013", "final_2016")
ITEM_FIELDS = (
    "seq",
    "request",
    "original_request",
    "decision",
    "claims_administrator_guideline",
    "maximus_guideline",
    "decision_rationale",
)
ENRICHED_ITEM_FIELDS = ("category", "subcategory", "citations")
DATE_FIELDS = ("date_of_injury", "ur_denial_date", "application_received", "date_assigned", "decision_date")
DECISIONS = ("Upheld", "Overturned")
OUTCOMES = ("Uphold", "Overturn", "Partially Overturn")


@dataclass
class Item:
    seq: int
    request: str
    decision: str
    original_request: str | None = None
    claims_administrator_guideline: str | None = None
    maximus_guideline: str | None = None
    decision_rationale: str | None = None
    category: str | None = None
    subcategory: str | None = None
    citations: dict | None = None

    def enrich(self) -> Item:
        """Fills the enriched fields from the item's text; returns the item."""
        for name, value in enrich(self).items():
            setattr(self, name, value)
        return self


@dataclass
class ParseWarning:
    code: str
    message: str


@dataclass
class Letter:
    case_number: str | None = None
    date_assigned: date | None = None
    date_of_injury: date | None = None
    decision_date: date | None = None
    ur_denial_date: date | None = None
    application_received: date | None = None
    priority: str | None = None
    reviewer_specialty: str | None = None
    reviewer_licensure_states: list[str] | None = None
    patient_age: int | None = None
    patient_sex: str | None = None
    items: list[Item] = field(default_factory=list)
    clinical_case_summary: str | None = None
    warnings: list[ParseWarning] = field(default_factory=list)
    letter_format: str | None = None

    @property
    def outcome(self) -> str | None:
        return derive_outcome([i.decision for i in self.items])

    def to_dict(self) -> dict:
        """The contract's JSON shape: ISO dates, `outcome` derived, `warnings` as a list of dicts."""
        d = asdict(self)
        for k in DATE_FIELDS:
            if d[k] is not None:
                d[k] = d[k].isoformat()
        out = {k: d[k] for k in LETTER_FIELDS if k != "outcome"}
        out["outcome"] = self.outcome
        out["items"] = d["items"]
        out["clinical_case_summary"] = d["clinical_case_summary"]
        out["warnings"] = d["warnings"]
        return out

    def enrich_items(self) -> Letter:
        """Fills every item's enriched fields; returns the letter."""
        for item in self.items:
            item.enrich()
        return self

    @classmethod
    def from_dict(cls, d: dict) -> Letter:
        kw = {k: d.get(k) for k in LETTER_FIELDS if k != "outcome"}
        for k in DATE_FIELDS:
            if isinstance(kw[k], str):
                kw[k] = date.fromisoformat(kw[k])
        fields = ITEM_FIELDS + ENRICHED_ITEM_FIELDS
        items = [Item(**{k: i.get(k) for k in fields}) for i in d.get("items") or []]
        warnings = [ParseWarning(**w) for w in d.get("warnings") or []]
        return cls(**kw, items=items, clinical_case_summary=d.get("clinical_case_summary"), warnings=warnings)


def derive_outcome(decisions: list[str]) -> str | None:
    if not decisions:
        return None
    kinds = set(decisions)
    if kinds == {"Upheld"}:
        return "Uphold"
    if kinds == {"Overturned"}:
        return "Overturn"
    return "Partially Overturn"
