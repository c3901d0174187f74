"""Request -> (category, subcategory): the order in which the drug lexicon and the service rules are
tried, the conventions where two labels compete (CONVENTIONS.md), and the few cases where the item's
rationale decides. Every answer names the rule that produced it, so an analyst can see why."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import phrase as ph
from . import services as sv
from .drugs import Hit, find_drugs, is_commercial_topical, lexicon, principal
from .taxonomy import check


@dataclass(frozen=True)
class Classification:
    """An item's request category and subcategory, and the rule that decided them."""

    category: str
    subcategory: str
    rule: str  # which rule matched, e.g. "drug:norco", "imaging", "associated-surgical-service"

    @property
    def basis(self) -> str:
        """`label_basis`: ``rule`` (the request's wording), ``rationale`` (the rationale decided or
        named the service) or ``default`` (nothing matched: a best guess to be reviewed)."""
        if self.rule.startswith("default:"):
            return "default"
        if self.rule.startswith("rationale:") or "+rationale" in self.rule:
            return "rationale"
        return "rule"


def _label(category: str, subcategory: str, rule: str) -> Classification:
    check(category, subcategory)
    return Classification(category, subcategory, rule)


def _from(rule: sv.Rule, suffix: str = "") -> Classification:
    return _label(rule.category, rule.subcategory, rule.name + suffix)


TOPICAL_FORM = re.compile(
    r"\b(creams?|gels?|ointments?|lotions?|patch(es)?|topicals?|topically|transdermal|roll-?on|liniment|balm"
    r"|foam|emulsion|rub)\b",
    re.IGNORECASE,
)
COMPOUNDED = re.compile(
    r"compound\w*|cream\s+base|\bin\s+(a\s+)?base\b|lipo-?derm|pluronic|\bplo\b|versapro|\bbase\s+cream",
    re.IGNORECASE,
)
NASAL = re.compile(r"\bnasal|intranasal|inhal\w*|ophthalmic|eye\s+drops|\boral\b", re.IGNORECASE)
# What kind of injection: without one of these, "Injections to the lumbar spine" leaves facet open.
INJECTION_KIND = re.compile(
    r"epidural|\besi|transforaminal|interlaminar|caudal|trigger|block|joint|articular|bursa|prp|platelet|prolo"
    r"|stem\s+cell|neuroplast|adhesiolysis|neurolytic|botox|botulinum|cortisone|steroid|nerve|tendon|sheath",
    re.IGNORECASE,
)
PERCENT = re.compile(r"\d\s*%")
LOCAL_ANESTHETIC = re.compile(
    r"lidocaine|xylocaine|bupivacaine|marcaine|ropivacaine|sensorcaine|naropin",
    re.I,
)
PRE_OP = re.compile(r"\bpre[- ]?(op|operative(ly)?)\b|\b(before|prior to) (the )?surgery\b", re.IGNORECASE)
PRE_OP_RATIONALE = re.compile(r"\b(pre[- ]?)?(op|operative(ly)?|surgical|surgery)\b", re.IGNORECASE)
PT_OT = "Physical Therapy/Occupational Therapy (PT/OT)"
REHAB_DISCIPLINES = (PT_OT, "Chiropractic", "Acupuncture")
POST_OP_ADJUNCT = (sv.DME, sv.ORTHOTICS, sv.SUPPLIES, sv.ELECTRICAL_STIMULATION, sv.ADJUNCT, sv.VISIT)
MUA = re.compile(r"manipulation\s+under\s+(general\s+)?anesthesia|\bmua\b", re.IGNORECASE)
CONSULTISH = re.compile(r"\bevaluation\b|\bassessment\b|\beval\b|\bopinion\b", re.IGNORECASE)
ULTRASOUND = re.compile(r"ultrasound|sonogra", re.IGNORECASE)
GUIDED = re.compile(r"guid(ed|ance)", re.IGNORECASE)
DRUG_WORDS = re.compile(
    r"\b\d+(\.\d+)?\s*(mg|mcg|ml|gm?|grams?|%)\b|#\s*\d+|\b(tabs?|tablets?|caps?|capsules?|refills?|medications?"
    r"|meds|drugs?|prescriptions?|rx|dosage|supply)\b",
    re.IGNORECASE,
)


_BOOKKEEPING = re.compile(
    r"^(retrospective|retro|prospective|concurrent)\b\s*(request\s+for|review\s+(of|for))?\s*:?\s*",
    re.IGNORECASE,
)


def _clean(request: str) -> str:
    # Review bookkeeping says nothing about the service: "Retrospective request for ... DOS: 11/14/16".
    s = re.sub(r"\s+", " ", request).strip()
    s = re.sub(r"\b(DOS|date of service)\s*:?\s*[\d/.-]+", " ", s, flags=re.IGNORECASE)
    s = _BOOKKEEPING.sub("", s)
    return s.strip()


def _drug(text: str, hits: list[Hit]) -> Classification | None:
    """The class of the drug a request names, with the topical conventions: compounded creams are
    Topical Compounds, ready-made single topicals Topical Analgesics."""
    if not hits:
        return None
    lex = lexicon()
    names = list(dict.fromkeys(h.name for h in hits))
    first = principal(hits)
    assert first is not None
    kit = next((h for h in hits if h.drug_class == "Topical Compounds"), None)
    if kit is not None:
        return _label("Pharmaceuticals", "Topical Compounds", f"compound-kit:{kit.name}")
    # Nasal sprays and the like act systemically: only skin products count as topical.
    topical = TOPICAL_FORM.search(text) is not None and not NASAL.search(text)
    if COMPOUNDED.search(text):
        return _label("Pharmaceuticals", "Topical Compounds", "compounded")
    several = len(names) >= 2
    if several and (topical or len(PERCENT.findall(text)) >= 2):
        if all(is_commercial_topical(h) for h in hits):
            return _label("Pharmaceuticals", "Topical Analgesics", "topical:commercial-combination")
        return _label("Pharmaceuticals", "Topical Compounds", "topical:several-ingredients")
    if topical:
        if is_commercial_topical(first):
            return _label("Pharmaceuticals", "Topical Analgesics", f"topical:{first.name}")
        if first.name not in lex.systemic_transdermal and first.drug_class not in ("Viscosupplementation",):
            # A systemic drug (ketoprofen, gabapentin, cyclobenzaprine...) only exists as a cream
            # when a pharmacy compounds it.
            return _label("Pharmaceuticals", "Topical Compounds", f"topical-systemic:{first.name}")
    how = "" if first.via == "lexicon" else f" ({first.via})"
    return _label("Pharmaceuticals", first.drug_class, f"drug:{first.name}{how}")


def _therapy(text: str) -> Classification | None:
    for rule in (sv.PSYCH_THERAPY, sv.CHIROPRACTIC, sv.ACUPUNCTURE):
        if rule.search(text) and not MUA.search(text):
            return _from(rule)
    if sv.OTHER_THERAPY.search(text):
        if not sv.SESSIONS.search(text) and (sv.DME.search(text) or ph.head_noun(text) is sv.DME):
            return _from(sv.DME, " (a product, not sessions)")
        return _from(sv.OTHER_THERAPY)
    if ULTRASOUND.search(text) and sv.SESSIONS.search(text) and not GUIDED.search(text):
        return _label("Rehabilitation", "Other Therapies", "ultrasound-sessions")
    if sv.ELECTRICAL_STIMULATION.search(text):
        return _from(sv.SUPPLIES if sv.SUPPLIES.search(text) else sv.ELECTRICAL_STIMULATION)
    if sv.PT_OT.search(text):
        return _from(sv.PT_OT)
    return None


def _visit(text: str) -> Classification | None:
    if not (sv.VISIT.search(text) or CONSULTISH.search(text)):
        return None
    for rule in (sv.DENTAL, sv.PSYCH_EVALUATION, sv.SURGICAL_CONSULT):
        if rule.search(text):
            return _from(rule)
    return _from(sv.VISIT)


def _injection(text: str, hits: list[Hit]) -> Classification | None:
    if sv.FACET.search(text) and not sv.NOT_FACET.search(text):
        return _from(sv.FACET)
    if not sv.INJECTION.search(text) and not (hits and sv.SYSTEMIC_ROUTE.search(text)):
        return None
    if hits and not LOCAL_ANESTHETIC.search(text):
        first = principal(hits)
        assert first is not None
        site = sv.INJECTION_SITE.search(text)
        steroid = first.drug_class == "Adrenal Cortical Steroids"
        if sv.SYSTEMIC_ROUTE.search(text) or not (site or steroid):
            return _label("Pharmaceuticals", "Injection", f"drug-injection:{first.name}")
    return _from(sv.INJECTION)


def _surgery(text: str) -> Classification | None:
    if MUA.search(text):
        return _label("Surgery", "Non-arthroscopic Surgery", "manipulation-under-anesthesia")
    if sv.ARTHROSCOPY.search(text):
        return _from(sv.ARTHROSCOPY)
    if sv.SPINE_SURGERY.search(text):
        return _from(sv.SPINE_SURGERY)
    if sv.SPINE_BY_LEVEL.search(text) and sv.SPINE.search(text):
        return _label("Surgery", "Spine", "spine-surgery:level")
    return None


def _periop(text: str, hits: list[Hit]) -> Classification | None:
    """Pre- and post-operative requests: therapy and drugs keep their own labels; what is bought,
    rented or done around the operation is an adjunct surgical service."""
    if not sv.PERIOPERATIVE.search(text):
        return None
    therapy = _therapy(text)
    if therapy is not None and therapy.subcategory in REHAB_DISCIPLINES:
        return Classification(therapy.category, therapy.subcategory, "perioperative:" + therapy.rule)
    drug = _drug(text, hits)
    if drug is not None:
        return Classification(drug.category, drug.subcategory, "perioperative:" + drug.rule)
    if PRE_OP.search(text) or any(r.search(text) for r in POST_OP_ADJUNCT):
        return _label("Surgery", "Adjunct Surgical Services", "perioperative")
    return None


def _associated(text: str) -> Classification | None:
    m = sv.ASSOCIATED.match(text)
    if m is None:
        return None
    therapy = _therapy(text[m.end() :])
    if therapy is not None and therapy.subcategory in REHAB_DISCIPLINES:
        rule = "associated-surgical-service:" + therapy.rule
        return Classification(therapy.category, therapy.subcategory, rule)
    return _label("Surgery", "Adjunct Surgical Services", "associated-surgical-service")


def _by_request(text: str) -> Classification | None:
    hits = find_drugs(text)
    visco = next((h for h in hits if h.drug_class == "Viscosupplementation"), None)
    psych = sv.PSYCH_EVALUATION.search(text) is not None
    steps: list[Callable[[], Classification | None]] = [
        lambda: _associated(text),
        lambda: _periop(text, hits),
        lambda: _label("Pharmaceuticals", "Viscosupplementation", f"drug:{visco.name}") if visco else None,
        lambda: (
            _label("Surgery", "Non-arthroscopic Surgery", "manipulation-under-anesthesia")
            if MUA.search(text)
            else None
        ),
        lambda: (
            (_from(sv.PSYCH_EVALUATION, " (clearance)") if psych else _from(sv.ADJUNCT))
            if sv.ADJUNCT.search(text)
            else None
        ),
        lambda: _from(sv.TRANSPORT) if sv.TRANSPORT.search(text) else None,
        lambda: _from(sv.HOME_HEALTH) if sv.HOME_HEALTH.search(text) else None,
        lambda: _from(sv.PROGRAMS) if sv.PROGRAMS.search(text) else None,
        lambda: _from(sv.LABS) if sv.LABS.search(text) else None,
        lambda: _therapy(text),
        lambda: _from(sv.EMG) if sv.EMG.search(text) else None,
        lambda: _from(sv.OTHER_DIAGNOSTIC) if sv.OTHER_DIAGNOSTIC.search(text) else None,
        lambda: _from(sv.PSYCH_EVALUATION) if psych else None,
        lambda: _from(sv.DENTAL) if sv.DENTAL.search(text) else None,
        lambda: _visit(text),
        lambda: _surgery(text),
        lambda: _injection(text, hits),
        lambda: _drug(text, hits),
        lambda: _from(sv.IMAGING) if sv.IMAGING.search(text) else None,
        lambda: _from(sv.SUPPLIES) if sv.SUPPLIES.search(text) else None,
        lambda: _from(sv.ORTHOTICS) if sv.ORTHOTICS.search(text) else None,
        lambda: _from(sv.DME) if sv.DME.search(text) else None,
        lambda: (
            _from(sv.SCOPE_PROCEDURES)
            if sv.SCOPE_PROCEDURES.search(text) and not re.search(r"\bopen\b", text, re.I)
            else None
        ),
        lambda: _from(sv.OPEN_SURGERY) if sv.OPEN_SURGERY.search(text) else None,
        lambda: _from(sv.GENERIC_DIAGNOSTIC) if sv.GENERIC_DIAGNOSTIC.search(text) else None,
        lambda: _drug(text, find_drugs(text, fuzzy=True)),
    ]
    for step in steps:
        result = step()
        if result is not None:
            return result
    return None


def _refine_with_rationale(result: Classification, text: str, rationale: str) -> Classification:
    """Requests whose wording leaves two labels open, settled by what the reviewer discussed."""
    # The rule itself, without how the phrase reading reached it ("head:", "[PT=...]").
    rule = result.rule.removeprefix("head:").split(" [")[0]
    if (
        rule == "injection"
        and not INJECTION_KIND.search(text)
        and re.search(r"facet|medial branch", rationale, re.IGNORECASE)
    ):
        return _label("Injection", "Facet Injection", "injection+rationale:facet")
    if (
        rule == "imaging"
        and ULTRASOUND.search(text)
        and not GUIDED.search(text)
        and re.search(r"therapeutic ultrasound|ultrasound therapy", rationale, re.IGNORECASE)
    ):
        return _label("Rehabilitation", "Other Therapies", "ultrasound+rationale:therapeutic")
    if (
        rule in ("lab", "other-diagnostic", "imaging")
        and PRE_OP_RATIONALE.search(rationale)
        and re.search(r"\blabs?\b|\bekg\b|\becg\b|chest x-?ray|clearance", text, re.IGNORECASE)
    ):
        return _label("Surgery", "Adjunct Surgical Services", rule + "+rationale:pre-operative")
    if rule == "visit" and sv.SESSIONS.search(text) and "physical therapy" in rationale.lower():
        # "Physical exam 2 times 8": a visit at a weekly frequency that the reviewer reviews as therapy.
        return _label("Rehabilitation", PT_OT, "visit+rationale:therapy")
    return result


def _sentences_about_request(rationale: str) -> list[str]:
    sentences = re.split(r"(?<=[.;])\s+", rationale)
    return [s for s in sentences if re.search(r"\brequest(ed)?\b|\bmedically necessary\b", s, re.I)]


# Labels the head cannot settle alone: a generic word ("surgery", "test", "unit") that the whole
# request may name more exactly.
GENERIC_RULES = {
    "non-arthroscopic-procedure": sv.OPEN_SURGERY,
    "diagnostic-test": sv.GENERIC_DIAGNOSTIC,
    "dme": sv.DME,
}
GENERIC_WORD = re.compile(
    r"surgery|surgical\s+\w+|operative\s+\w+|decompression|fusion|arthrodesis|test\w*|study|studies|screening"
    r"|units?|equipment|purchase|rental",
    re.IGNORECASE,
)
# Rules about the whole request's context (CONVENTIONS rows 1-2): they hold whatever the head says.
CONTEXT_RULES = ("associated-surgical-service", "perioperative")
# What a consultation, referral or visit is *with* or *to* that makes it more than a visit.
VISIT_OBJECTS = (
    "Psych Services",
    "Rehabilitation",
    "Surgery/Surgical Consult",
    "Evaluation & Management/Dental",
)


def _is_visit(c: Classification) -> bool:
    return c.rule.startswith("visit") or c.category == "Evaluation & Management"


def _whole_refines_head(head: Classification, whole: Classification, head_text: str) -> bool:
    """Whether the label read from the whole request says more than the head's: the drug
    conventions need the whole request (topical form, ingredients, route, injection), a generic head
    word is named by its modifiers, a referral's object is the treatment referred to."""
    if whole.rule.startswith(CONTEXT_RULES):
        return True
    if head.category == "Pharmaceuticals":
        return whole.category in ("Pharmaceuticals", "Injection")
    generic = GENERIC_RULES.get(head.rule)
    if generic is not None and whole.category == head.category:
        return all(GENERIC_WORD.fullmatch(m.group(0)) for m in generic.pattern.finditer(head_text))
    if _is_visit(head):
        label = f"{whole.category}/{whole.subcategory}"
        return whole.category in VISIT_OBJECTS or label.startswith(VISIT_OBJECTS)
    return False


def _by_phrase(text: str) -> Classification | None:
    """The label of the request's head, unless the whole request refines it (`_whole_refines_head`);
    a request whose head names nothing is read whole, and failing that by its head noun."""
    phrase = ph.read(text)
    note = f" [{', '.join(phrase.notes)}]" if phrase.notes else ""
    whole = _by_request(phrase.text)
    if not phrase.has_modifiers:
        result = whole
    else:
        head = _by_request(phrase.head)
        noun = ph.head_noun(phrase.noun_phrase)
        if head is None:
            result = _from(noun, " (head noun)") if noun is not None else whole
        elif whole is None or head == whole or _whole_refines_head(head, whole, phrase.head):
            result = whole or head
        else:
            result = Classification(head.category, head.subcategory, "head:" + head.rule)
    if result is None:
        noun = ph.head_noun(phrase.noun_phrase)
        result = _from(noun, " (head noun)") if noun is not None else None
    if result is not None and note:
        result = Classification(result.category, result.subcategory, result.rule + note)
    return result


def classify(request: str, rationale: str | None = None) -> Classification:
    """The taxonomy label of one request; `rationale` (the item's decision rationale) only decides
    where the request's own wording does not."""
    text = _clean(request or "")
    result = _by_phrase(text)
    if result is not None:
        return _refine_with_rationale(result, text, rationale) if rationale else result
    if rationale:
        # The request names nothing we know ("Unknown medication", "Retro DOS 1/1/16"): the
        # sentences of the rationale that speak of the request usually name it.
        for sentence in _sentences_about_request(rationale):
            found = _by_request(_clean(sentence))
            if found is not None and not found.rule.startswith(("visit", "diagnostic-test")):
                return Classification(found.category, found.subcategory, "rationale:" + found.rule)
    if DRUG_WORDS.search(text):
        return _label("Pharmaceuticals", "Misc Analgesics", "default:unidentified-drug")
    return _label("Evaluation & Management", "Medical Specialties", "default:unmatched")
