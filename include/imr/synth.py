"""Synthetic IMR Final Determination letters with known ground truth, for tests, benchmarks and the demo.

The layout copies the real DWC letters (../shared/corpus): a bordered 2-column header table in
Helvetica 11 (bold labels, `Application` / `Received:` wrapping in its cell), then Times 12 sections
with bold centred headings and, per disputed item, a bold decision line followed by the two guideline
paragraphs and the decision rationale.  On top of what the 2016 corpus shows, the synthetic letters add
things a parser must survive: a `Page N of M` footer on every page, an optional running header with the
case number, justified text, line ends at embedded hyphens, long requests wrapping over 2-3 lines, and
items that cross page breaks anywhere.  All prose comes from phrase lists; it only has to be plausible.

Ground truth is exact: every text field of the returned `Letter` is the rendered text with whitespace
collapsed, so a perfect parser scores 100% with ../shared/tools/score_records.py.

Only reportlab (and Pillow, which reportlab itself depends on, for the raster page) is used.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import pathlib
import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT
from reportlab.lib.pagesizes import letter as LETTER_PAGE
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph, Spacer, Table, TableStyle
from reportlab.platypus import paragraph as rl_paragraph

from imr.records import Item, Letter

__all__ = [
    "ItemSpec",
    "LetterSpec",
    "BAD_FILE_CODES",
    "bad_files",
    "random_letter",
    "random_spec",
    "render_letter",
    "render_spec",
    "seed_letter_pdf",
    "spec_from_letter",
    "write_sample_set",
]

PAGE_W, PAGE_H = LETTER_PAGE
MARGIN = 72.0
# Pages beyond this make a letter `too_large`; the bad file exceeds it by half.
PAGE_LIMIT = 100

# bad_files() key -> rejection code (imr.errors.REJECTION_CODES); `truncated` is malformed, not a code.
BAD_FILE_CODES = {
    "not_pdf": "not_pdf",
    "encrypted": "encrypted",
    "no_text_layer": "no_text_layer",
    "not_an_imr_letter": "not_an_imr_letter",
    "header_missing_field": "header_missing_field",
    "item_structure": "item_structure",
    "timeout": "timeout",
    "too_large": "too_large",
    "truncated": "pdf_error",
}

HEADING_HOW = "HOW THE IMR FINAL DETERMINATION WAS MADE"
HEADING_SUMMARY = "CLINICAL CASE SUMMARY"
HEADING_ISSUES = "IMR ISSUES, DECISIONS AND RATIONALES"
SUMMARY_INTRO = (
    "The expert reviewer developed the following clinical case summary based on a review of the case file, "
    "including all medical records:"
)
ISSUES_INTRO = (
    "The Final Determination was based on decisions for the disputed items/services set forth below:"
)

BOILERPLATE_2016 = (
    "MAXIMUS Federal Services sent the complete case file to an expert reviewer. He/she has no affiliation "
    "with the employer, employee, providers or the claims administrator. He/she has been in active clinical "
    "practice for more than five years and is currently working at least 24 hours a week in active practice. "
    "The expert reviewer was selected based on his/her clinical experience, education, background, and "
    "expertise in the same or similar specialties that evaluate and/or treat the medical condition and "
    "disputed items/Service. He/she is familiar with governing laws and regulations, including the strength "
    "of evidence hierarchy that applies to Independent Medical Review determinations."
)
BOILERPLATE_2013 = (
    "MAXIMUS Federal Services sent the complete case file to a physician reviewer. He/she has no affiliation "
    "with the employer, employee, providers or the claims administrator. The physician reviewer is Board "
    "Certified in {specialty} and is licensed to practice in {states}. He/she has been in active clinical "
    "practice for more than five years and is currently working at least 24 hours a week in active practice. "
    "The physician reviewer was selected based on his/her clinical experience, education, background, and "
    "expertise in the same or similar specialties that evaluate and/or treat the medical condition and "
    "disputed items/services. He/she is familiar with governing laws and regulations, including the strength "
    "of evidence hierarchy that applies to Independent Medical Review determinations."
)
CREDENTIALS_INTRO = "The Expert Reviewer has the following credentials:"


# --------------------------------------------------------------------------------------------------
# Specs: a Letter (the ground truth) plus the rendering choices that are not part of the record.


@dataclass
class ItemSpec:
    """One disputed item as rendered. `kind` picks the decision-line form:
    `plain` (`<request>: Upheld`), `remaining` (`X was the original request. Y was authorized ... The
    remaining IMR eligible portion of the original request, Z is: Upheld`) or `eligible` (`X was the
    original request. The Claims Administrator authorized Y, leaving the original request IMR eligible.
    The original request, X is: Overturned`)."""

    item: Item
    kind: str = "plain"
    authorized: str | None = None
    uses_is: bool = True
    rationale_paragraphs: list[str] = field(default_factory=list)


@dataclass
class LetterSpec:
    letter: Letter
    style: str = "2016"
    boilerplate: str = BOILERPLATE_2016
    summary_paragraphs: list[str] = field(default_factory=list)
    items: list[ItemSpec] = field(default_factory=list)
    licensure_sep: str = ","
    justified: bool = True
    running_header: str | None = None
    footer_align: str = "center"
    # Extra vertical space before the three headings and the first item: shifts page breaks around.
    gaps: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    omit_case_number: bool = False
    omit_decision_lines: bool = False


def _norm(s: str) -> str:
    return " ".join(s.split())


# --------------------------------------------------------------------------------------------------
# Phrase lists.

STATES = [
    "Arizona", "Colorado", "Connecticut", "Florida", "Georgia", "Illinois", "Kansas", "Maryland",
    "Massachusetts", "Mississippi", "Missouri", "New Hampshire", "New Jersey", "New Mexico", "New York",
    "North Carolina", "Ohio", "Oklahoma", "Oregon", "Pennsylvania", "South Carolina", "Tennessee", "Texas",
    "Utah", "Virginia", "Washington", "West Virginia", "Nevada", "Michigan", "Minnesota",
]  # fmt: skip
SPECIALTIES_2016 = [
    "Preventive Medicine, Occupational Medicine", "Family Practice", "Physical Medicine & Rehabilitation",
    "Physical Medicine & Rehabilitation, Pain Management", "Internal Medicine", "Orthopedic Surgery",
    "Preventive Medicine, Occupational Medicine, Family Practice", "Anesthesiology, Pain Management",
    "Physical Medicine & Rehabilitation, Sports Medicine", "Psychiatry", "Chiropractor", "Neurology",
    "Preventive Medicine, Occupational Medicine, Medical Toxicology", "Orthopedic Surgery, Sports Medicine",
    "Anesthesiology, Pain Management, Hospice & Palliative Medicine", "Surgery, Surgical Critical Care",
    "Family Practice, Sports Medicine", "Neurology, Pain Management", "Preventive Medicine",
    "Physical Medicine & Rehabilitation, Pediatric Rehabilitation Medicine", "Hand Surgery",
    "Internal Medicine, Rheumatology", "Psychology", "Acupuncture",
]  # fmt: skip
SPECIALTIES_2013 = [
    "Anesthesiology", "Physical Medicine and Rehabilitation", "Orthopedic Surgery", "Family Practice",
    "Internal Medicine", "Occupational Medicine", "Preventive Medicine", "Neurology", "Psychiatry",
    "Pain Medicine", "Chiropractic Medicine", "Emergency Medicine", "Plastic Surgery", "Neurological Surgery",
]  # fmt: skip

BODY_PARTS = [
    ("lumbar spine", "low_back"), ("cervical spine", "neck"), ("thoracic spine", "low_back"),
    ("right shoulder", "shoulder"), ("left shoulder", "shoulder"), ("right knee", "knee"),
    ("left knee", "knee"), ("bilateral knees", "knee"), ("right wrist", "hand"), ("left wrist", "hand"),
    ("right hand", "hand"), ("left elbow", "elbow"), ("right elbow", "elbow"), ("right ankle", "ankle"),
    ("left ankle", "ankle"), ("low back", "low_back"), ("left hip", "hip"), ("right hip", "hip"),
]  # fmt: skip
MTUS_CHAPTER = {
    "low_back": "Low Back Complaints 2004",
    "neck": "Neck and Upper Back Complaints 2004",
    "shoulder": "Shoulder Complaints 2004",
    "knee": "Knee Complaints 2004",
    "hand": "Forearm, Wrist, and Hand Complaints 2004",
    "elbow": "Elbow Disorders (Revised 2007)",
    "ankle": "Ankle and Foot Complaints 2004",
    "hip": "Chronic Pain Medical Treatment 2009",
}
ODG_CHAPTER = {
    "low_back": "Low Back - Lumbar & Thoracic (Acute & Chronic)",
    "neck": "Neck and Upper Back (Acute & Chronic)",
    "shoulder": "Shoulder (Acute & Chronic)",
    "knee": "Knee & Leg (Acute & Chronic)",
    "hand": "Forearm, Wrist, & Hand (Acute & Chronic)",
    "elbow": "Elbow (Acute & Chronic)",
    "ankle": "Ankle & Foot (Acute & Chronic)",
    "hip": "Hip & Pelvis (Acute & Chronic)",
}
CHRONIC = "Chronic Pain Medical Treatment 2009"
CHRONIC16 = "Chronic Pain Medical Treatment 2016"


class _Topic(NamedTuple):
    mtus: str | None  # None: the body part's MTUS chapter
    sections: list[str]
    odg: str | None  # None: the body part's ODG chapter
    odg_topics: list[str]
    thing: str  # what the rationale calls the treatment
    guide: list[str]  # guideline sentences that open a rationale


TOPICS: dict[str, _Topic] = {
    "opioids": _Topic(
        mtus=CHRONIC,
        sections=["Opioids, criteria for use", "Opioids for chronic pain", "On-Going Management"],
        odg="Pain (Chronic)",
        odg_topics=["Opioids, criteria for use"],
        thing="opioid analgesics",
        guide=[
            "CA MTUS Chronic Pain Medical Treatment Guidelines state that ongoing opioid treatment "
            "requires documentation of pain relief, functional status, appropriate medication use and "
            "side effects.",
            "The MTUS recommends the lowest possible dose of opioids be prescribed to improve pain "
            "and function, with ongoing review of the four domains of analgesia, activities of daily "
            "living, adverse side effects and aberrant drug-taking behaviors.",
            "Guidelines indicate that opioids should be discontinued if there is no overall "
            "improvement in function, unless there are extenuating circumstances.",
        ],
    ),
    "muscle_relaxants": _Topic(
        mtus=CHRONIC,
        sections=["Muscle relaxants (for pain)", "Antispasticity drugs"],
        odg="Pain (Chronic)",
        odg_topics=["Muscle relaxants (for pain)"],
        thing="muscle relaxants",
        guide=[
            "CA MTUS guidelines recommend non-sedating muscle relaxants with caution as a second-line "
            "option for short-term treatment of acute exacerbations in patients with chronic low back "
            "pain.",
            "Muscle relaxants may be effective in reducing pain and muscle tension, however in most "
            "low back pain cases they show no benefit beyond NSAIDs, and efficacy appears to diminish "
            "over time.",
            "Guidelines do not support the long-term use of muscle relaxants, and recommend a course "
            "of no more than two to three weeks.",
        ],
    ),
    "nsaids": _Topic(
        mtus=CHRONIC,
        sections=["NSAIDs (non-steroidal anti-inflammatory drugs)", "Anti-inflammatory medications"],
        odg="Pain (Chronic)",
        odg_topics=["NSAIDs, specific drug list & adverse effects"],
        thing="NSAIDs",
        guide=[
            "CA MTUS recommends NSAIDs at the lowest dose for the shortest period in patients with "
            "moderate to severe pain.",
            "Anti-inflammatory medications are the traditional first-line treatment to reduce pain so "
            "that activity and functional restoration can resume, but long-term use may not be "
            "warranted.",
        ],
    ),
    "ppi": _Topic(
        mtus=CHRONIC,
        sections=["NSAIDs, GI symptoms & cardiovascular risk"],
        odg="Pain (Chronic)",
        odg_topics=["Proton pump inhibitors (PPIs)"],
        thing="proton pump inhibitors",
        guide=[
            "CA MTUS states that a proton pump inhibitor may be indicated for patients at "
            "intermediate risk for gastrointestinal events who are taking NSAIDs.",
            "Risk factors for gastrointestinal events include age over 65, a history of peptic ulcer, "
            "GI bleeding or perforation, concurrent use of aspirin or corticosteroids, or high "
            "dose/multiple NSAID use.",
        ],
    ),
    "anticonvulsants": _Topic(
        mtus=CHRONIC,
        sections=["Anti-epilepsy drugs (AEDs)", "Gabapentin (Neurontin)"],
        odg="Pain (Chronic)",
        odg_topics=["Anti-epilepsy drugs (AEDs) for pain"],
        thing="anti-epilepsy drugs",
        guide=[
            "Anti-epilepsy drugs are recommended for neuropathic pain due to nerve damage.",
            "A good response to the use of anti-epilepsy drugs has been defined as a 50% reduction in "
            "pain, and a moderate response as a 30% reduction.",
        ],
    ),
    "antidepressants": _Topic(
        mtus=CHRONIC16,
        sections=["Antidepressants for chronic pain"],
        odg="Mental Illness & Stress",
        odg_topics=["Antidepressants for treatment of MDD (major depressive disorder)"],
        thing="antidepressants",
        guide=[
            "The California MTUS Chronic Pain Guidelines recommend antidepressants as a first-line "
            "option for neuropathic pain, and as a possibility for non-neuropathic pain.",
            "Assessment of treatment efficacy should include pain outcomes, evaluation of function, "
            "changes in use of other analgesic medication, sleep quality and duration, and "
            "psychological assessment.",
        ],
    ),
    "topicals": _Topic(
        mtus=CHRONIC16,
        sections=["Topical Analgesics", "Compound drugs"],
        odg="Pain (Chronic)",
        odg_topics=["Topical analgesics, compounded"],
        thing="topical analgesics",
        guide=[
            "CA MTUS states that topical analgesics are largely experimental in use with few "
            "randomized controlled trials to determine efficacy or safety.",
            "Any compounded product that contains at least one drug or drug class that is not "
            "recommended is not recommended.",
            "Topical analgesics are primarily recommended for neuropathic pain when trials of "
            "antidepressants and anticonvulsants have failed.",
        ],
    ),
    "insomnia": _Topic(
        mtus=None,
        sections=[],
        odg="Pain (Chronic)",
        odg_topics=["Insomnia treatment", "Zolpidem (Ambien)"],
        thing="hypnotics",
        guide=[
            "The Official Disability Guidelines recommend short-term use of zolpidem, usually two to "
            "six weeks, for the treatment of insomnia.",
            "Pharmacological agents should only be used after a careful evaluation of potential "
            "causes of sleep disturbance.",
        ],
    ),
    "physical_therapy": _Topic(
        mtus=CHRONIC,
        sections=["Physical Medicine"],
        odg=None,
        odg_topics=[],
        thing="physical medicine",
        guide=[
            "The MTUS Chronic Pain Medical Treatment Guidelines allow for fading of treatment "
            "frequency from up to three visits per week to one or less, plus active self-directed "
            "home physical medicine.",
            "Guidelines recommend 9-10 visits over 8 weeks for myalgia and myositis, and 8-10 visits "
            "over 4 weeks for neuralgia, neuritis, and radiculitis.",
        ],
    ),
    "acupuncture": _Topic(
        mtus="Acupuncture Medical Treatment 2007",
        sections=["Acupuncture Medical Treatment Guidelines"],
        odg=None,
        odg_topics=[],
        thing="acupuncture",
        guide=[
            "The Acupuncture Medical Treatment Guidelines state that acupuncture may be used when "
            "pain medication is reduced or not tolerated, and that the time to produce functional "
            "improvement is 3 to 6 treatments.",
            "Acupuncture treatments may be extended if functional improvement is documented.",
        ],
    ),
    "chiropractic": _Topic(
        mtus=CHRONIC,
        sections=["Manual therapy & manipulation"],
        odg=None,
        odg_topics=[],
        thing="manual therapy",
        guide=[
            "CA MTUS recommends manual therapy and manipulation for chronic pain if caused by "
            "musculoskeletal conditions, with a trial of 6 visits over 2 weeks.",
            "With evidence of objective functional improvement, a total of up to 18 visits over 6-8 "
            "weeks may be appropriate.",
        ],
    ),
    "imaging": _Topic(
        mtus=None,
        sections=["Special Studies", "Diagnostic Criteria"],
        odg=None,
        odg_topics=[],
        thing="imaging",
        guide=[
            "CA MTUS/ACOEM Guidelines state that unequivocal objective findings that identify "
            "specific nerve compromise on the neurologic examination are sufficient evidence to "
            "warrant imaging in patients who do not respond to treatment and who would consider "
            "surgery an option.",
            "When the neurologic examination is less clear, further physiologic evidence of nerve "
            "dysfunction should be obtained before ordering an imaging study.",
        ],
    ),
    "electrodiagnostics": _Topic(
        mtus=None,
        sections=["Special Studies", "Diagnostic Criteria"],
        odg=None,
        odg_topics=["EMGs (electromyography)", "Nerve conduction studies (NCS)"],
        thing="electrodiagnostic testing",
        guide=[
            "Electromyography, including H-reflex tests, may be useful to identify subtle, focal "
            "neurologic dysfunction in patients with symptoms lasting more than three or four weeks.",
            "The Official Disability Guidelines do not recommend nerve conduction studies when a "
            "patient is presumed to have symptoms on the basis of radiculopathy.",
        ],
    ),
    "injections": _Topic(
        mtus=CHRONIC,
        sections=["Epidural steroid injections (ESIs)"],
        odg=None,
        odg_topics=["Facet joint diagnostic blocks (injections)"],
        thing="injections",
        guide=[
            "The MTUS recommends epidural steroid injections as an option for treatment of radicular "
            "pain, defined as pain in a dermatomal distribution with corroborative findings of "
            "radiculopathy.",
            "Radiculopathy must be documented by physical examination and corroborated by imaging "
            "studies and/or electrodiagnostic testing, and the patient must be initially unresponsive "
            "to conservative treatment.",
        ],
    ),
    "surgery": _Topic(
        mtus=None,
        sections=["Surgical Considerations"],
        odg=None,
        odg_topics=["Surgery for impingement syndrome"],
        thing="surgery",
        guide=[
            "Surgical consultation is indicated for patients who have red-flag conditions, activity "
            "limitation for more than four months, and failure to increase range of motion and "
            "strength after exercise programs.",
            "Guidelines require clear clinical and imaging evidence of a lesion that has been shown "
            "to benefit in both the short and long term from surgical repair.",
        ],
    ),
    "dme": _Topic(
        mtus=None,
        sections=[],
        odg=None,
        odg_topics=["Durable medical equipment (DME)"],
        thing="durable medical equipment",
        guide=[
            "The Official Disability Guidelines recommend durable medical equipment generally if "
            "there is a medical need and if the device or system meets Medicare's definition of "
            "durable medical equipment.",
            "Durable medical equipment must be able to withstand repeated use, be primarily used to "
            "serve a medical purpose, and be appropriate for use in the home.",
        ],
    ),
    "tens": _Topic(
        mtus=CHRONIC,
        sections=[
            "Transcutaneous electrotherapy",
            "TENS, chronic pain (transcutaneous electrical nerve stimulation)",
        ],
        odg=None,
        odg_topics=[],
        thing="TENS",
        guide=[
            "CA MTUS does not recommend TENS as a primary treatment modality, but a one-month "
            "home-based trial may be considered as a non-invasive conservative option if used as an "
            "adjunct to a program of evidence-based functional restoration.",
            "Prior to a trial there must be documentation of at least three months of pain and "
            "evidence that other appropriate pain modalities have been tried and failed.",
        ],
    ),
    "urine": _Topic(
        mtus=CHRONIC,
        sections=["Drug testing", "Opioids, steps to avoid misuse/addiction"],
        odg=None,
        odg_topics=[],
        thing="drug testing",
        guide=[
            "CA MTUS recommends urine drug testing as an option to assess for the use or the presence "
            "of illegal drugs, and as a step in ongoing opioid management.",
            "The Official Disability Guidelines recommend testing frequency based on documented risk "
            "stratification, with low-risk patients tested within six months of initiation of therapy "
            "and yearly thereafter.",
        ],
    ),
    "programs": _Topic(
        mtus=CHRONIC,
        sections=[
            "Chronic pain programs (functional restoration programs)",
            "Work conditioning, work hardening",
        ],
        odg=None,
        odg_topics=[],
        thing="functional restoration programs",
        guide=[
            "Functional restoration programs are recommended where there is access to programs with "
            "proven successful outcomes, for patients with conditions that put them at risk of "
            "delayed recovery.",
            "Treatment is not suggested for longer than 2 weeks without evidence of demonstrated "
            "efficacy as documented by subjective and objective gains.",
        ],
    ),
    "home_health": _Topic(
        mtus=CHRONIC,
        sections=["Home health services"],
        odg=None,
        odg_topics=[],
        thing="home health services",
        guide=[
            "CA MTUS recommends home health services only for otherwise recommended medical treatment "
            "for patients who are homebound, on a part-time or intermittent basis, generally up to no "
            "more than 35 hours per week.",
            "Medical treatment does not include homemaker services like shopping, cleaning, and "
            "laundry, and personal care given by home health aides like bathing, dressing, and using "
            "the bathroom when this is the only care needed.",
        ],
    ),
    "psych": _Topic(
        mtus=CHRONIC,
        sections=["Behavioral interventions", "Psychological evaluations"],
        odg=None,
        odg_topics=[],
        thing="behavioral interventions",
        guide=[
            "Behavioral interventions are recommended, and an initial trial of 3-4 psychotherapy "
            "visits over 2 weeks is appropriate.",
            "With evidence of objective functional improvement, a total of up to 6-10 visits over 5-6 "
            "weeks of individual sessions may be appropriate.",
        ],
    ),
    "cold": _Topic(
        mtus=None,
        sections=[],
        odg=None,
        odg_topics=["Continuous-flow cryotherapy", "Cold/heat packs"],
        thing="cryotherapy",
        guide=[
            "The Official Disability Guidelines recommend continuous-flow cryotherapy as an option "
            "after surgery, but not for nonsurgical treatment.",
            "Postoperative use generally may be up to 7 days, including home use.",
        ],
    ),
}

DRUGS = [
    ("Norco", ["5/325mg", "7.5/325mg", "10/325mg"], "opioids"),
    ("Tramadol", ["50mg"], "opioids"),
    ("Tramadol ER", ["100mg", "150mg"], "opioids"),
    ("Oxycodone", ["5mg", "10mg", "15mg"], "opioids"),
    ("Percocet", ["5/325mg", "10/325mg"], "opioids"),
    ("Hydrocodone/APAP", ["5/325mg", "10/325mg"], "opioids"),
    ("Nucynta", ["50mg", "75mg"], "opioids"),
    ("Cyclobenzaprine", ["5mg", "7.5mg", "10mg"], "muscle_relaxants"),
    ("Flexeril", ["7.5mg", "10mg"], "muscle_relaxants"),
    ("Tizanidine", ["2mg", "4mg"], "muscle_relaxants"),
    ("Baclofen", ["10mg", "20mg"], "muscle_relaxants"),
    ("Methocarbamol", ["500mg", "750mg"], "muscle_relaxants"),
    ("Orphenadrine ER", ["100mg"], "muscle_relaxants"),
    ("Naproxen sodium", ["550mg"], "nsaids"),
    ("Ibuprofen", ["600mg", "800mg"], "nsaids"),
    ("Meloxicam", ["7.5mg", "15mg"], "nsaids"),
    ("Celecoxib", ["100mg", "200mg"], "nsaids"),
    ("Diclofenac sodium ER", ["100mg"], "nsaids"),
    ("Etodolac", ["400mg"], "nsaids"),
    ("Omeprazole", ["20mg", "40mg"], "ppi"),
    ("Pantoprazole", ["20mg", "40mg"], "ppi"),
    ("Prilosec", ["20mg"], "ppi"),
    ("Gabapentin", ["300mg", "600mg"], "anticonvulsants"),
    ("Lyrica", ["75mg", "150mg"], "anticonvulsants"),
    ("Topiramate", ["25mg", "50mg"], "anticonvulsants"),
    ("Duloxetine", ["30mg", "60mg"], "antidepressants"),
    ("Amitriptyline", ["10mg", "25mg"], "antidepressants"),
    ("Venlafaxine ER", ["75mg"], "antidepressants"),
    ("Zolpidem", ["5mg", "10mg"], "insomnia"),
    ("Ambien", ["10mg"], "insomnia"),
    ("Lidoderm 5% patch", [""], "topicals"),
    ("Terocin patches", [""], "topicals"),
]
CREAM_INGREDIENTS = [
    "Flurbiprofen 20%", "Baclofen 5%", "Dexamethasone 2%", "Menthol 2%", "Camphor 2%", "Capsaicin 0.025%",
    "Gabapentin 10%", "Cyclobenzaprine 6%", "Bupivacaine 5%", "Lidocaine 5%", "Ketoprofen 10%",
    "Amitriptyline 10%", "Tramadol 10%", "Hyaluronic acid 0.2%", "Diclofenac 3%", "Prilocaine 2.5%",
]  # fmt: skip

# Requests with a countable quantity `{n}`: what partial authorizations cut down.
COUNTED = [
    ("Physical therapy for the {part}, {n} sessions", "physical_therapy", (6, 24)),
    ("Physical therapy to the {part} {n} sessions", "physical_therapy", (6, 24)),
    ("Post-operative physical therapy {n} sessions for the {part}", "physical_therapy", (8, 36)),
    ("Acupuncture {n} sessions", "acupuncture", (6, 18)),
    ("Acupuncture for the {part}, {n} sessions", "acupuncture", (6, 18)),
    ("Chiropractic manipulation times {n}", "chiropractic", (6, 18)),
    ("Chiropractic therapy sessions for the {part}, #{n}", "chiropractic", (6, 18)),
    ("Occupational therapy for the {part}, {n} sessions", "physical_therapy", (6, 18)),
    ("Aquatic therapy {n} sessions", "physical_therapy", (6, 18)),
    ("Cognitive behavioral therapy {n} sessions", "psych", (4, 12)),
    ("Extracorporeal shockwave therapy {n} sessions for the {part}", "physical_therapy", (3, 6)),
    ("Work hardening program {n} sessions", "programs", (8, 20)),
    ("Functional restoration program {n} hours", "programs", (80, 160)),
    ("Home health aide {n} hours per week", "home_health", (10, 35)),
    ("Massage therapy {n} sessions for the {part}", "physical_therapy", (6, 12)),
    ("Associated surgical service: Post-operative physical therapy, times {n}", "physical_therapy", (8, 24)),
]
FIXED = [
    ("MRI of the {part} without contrast", "imaging"),
    ("MRI of the {part}", "imaging"),
    ("X-rays of the {part}, 3 views", "imaging"),
    ("CT scan of the {part}", "imaging"),
    ("Ultrasound of the {part}", "imaging"),
    ("EMG/NCV of the bilateral upper extremities", "electrodiagnostics"),
    ("EMG/NCV of the bilateral lower extremities", "electrodiagnostics"),
    ("EMG of the left lower extremity", "electrodiagnostics"),
    ("Urine drug screen", "urine"),
    ("Urine toxicology screen", "urine"),
    ("Lumbar epidural steroid injection at L4-L5", "injections"),
    ("Transforaminal epidural steroid injection at left L5-S1", "injections"),
    ("Cervical epidural steroid injection at C6-C7", "injections"),
    ("Bilateral L4-L5 and L5-S1 medial branch blocks", "injections"),
    ("Radiofrequency ablation at right L3-L4, L4-L5 and L5-S1", "injections"),
    ("Trigger point injections x 4 to the {part}", "injections"),
    ("Cortisone injection to the {part}", "injections"),
    ("Right shoulder arthroscopy with subacromial decompression and distal clavicle excision", "surgery"),
    ("Left knee arthroscopy with partial medial meniscectomy", "surgery"),
    ("Right carpal tunnel release", "surgery"),
    ("Left trigger finger release", "surgery"),
    ("Anterior cervical discectomy and fusion at C5-C6 and C6-C7 with 2 day inpatient stay", "surgery"),
    ("Assistant surgeon for the {part} surgery", "surgery"),
    ("Pre-operative medical clearance", "surgery"),
    ("TENS unit", "tens"),
    ("TENS unit and supplies, 1 month rental", "tens"),
    ("Interferential unit", "tens"),
    ("Hinged knee brace", "dme"),
    ("Lumbar support brace", "dme"),
    ("Front-wheeled walker", "dme"),
    ("Shower chair", "dme"),
    ("Cervical traction unit", "dme"),
    ("Home exercise kit for the {part}", "dme"),
    ("Cold therapy unit, 7 day rental", "cold"),
    ("Hot/cold contrast system with deep vein thrombosis/compression unit", "cold"),
    ("Functional capacity evaluation", "programs"),
    ("Psychological evaluation", "psych"),
    ("Gym membership for 6 months", "programs"),
    ("Associated surgical service: Cold therapy unit, 7 day rental", "cold"),
    ("Associated surgical service: Assistant surgeon", "surgery"),
    ("Associated surgical service: Shoulder sling with abduction pillow", "dme"),
    ("Labs to include: CBC and CMP", "surgery"),
    ("Pre-operative labs to include: EKG", "surgery"),
]  # fmt: skip
DIAGNOSES = [
    "lumbar radiculopathy", "cervical strain", "right shoulder impingement syndrome", "lateral epicondylitis",
    "carpal tunnel syndrome", "lumbar disc protrusion", "chronic pain syndrome", "myofascial pain",
    "internal derangement of the knee", "post-traumatic headaches", "depression secondary to chronic pain",
    "sacroiliac joint dysfunction", "plantar fasciitis", "rotator cuff tear", "thoracic sprain",
    "cervical radiculitis", "lumbar facet arthropathy", "degenerative disc disease", "anxiety", "insomnia",
    "left knee medial meniscus tear", "right wrist sprain", "contusion of the head", "neck strain",
]  # fmt: skip
TREATMENTS = [
    "physical therapy", "chiropractic care", "acupuncture", "a home exercise program", "medications",
    "diagnostic imaging", "modified work duties", "epidural steroid injections", "a TENS unit",
    "activity modification", "bracing", "work restrictions", "psychological counseling",
    "cortisone injections",
]  # fmt: skip
MECHANISMS = [
    "The mechanism of injury was not documented.",
    "The injury occurred while {he} was lifting a heavy box at work.",
    "{He_} reported injuring {his} {part} after a slip and fall at work.",
    "The injury was reportedly sustained as a result of repetitive keyboarding and mousing.",
    "The injured worker was involved in a motor vehicle accident while working.",
    "The injury occurred when {he} was struck by a falling object.",
    "{He_} developed cumulative trauma to the {part} from repetitive job duties.",
]
SUBJECTS_2016 = ["the injured worker", "the claimant", "the applicant", "the injured worker"]
SUBJECTS_2013 = ["the patient"]


def _fmt_date_prose(rng: random.Random, d: date) -> str:
    k = rng.randrange(4)
    if k == 0:
        return f"{d.month}-{d.day}-{d.year % 100:02d}"
    if k == 1:
        return d.strftime("%m-%d-%Y")
    if k == 2:
        return d.strftime("%m/%d/%Y")
    return f"{d.month}-{d.day}-{d.year}"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:] if s[1:2].islower() else s


# --------------------------------------------------------------------------------------------------
# Random content.


@dataclass
class _Req:
    label: str
    topic: str
    area: str
    counted: tuple[str, int, str] | None = None  # (template with {n}, original n, body part) when countable


def _count_words(n: int, rng: random.Random) -> str:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve"]  # fmt: skip
    return words[n] if n < len(words) and rng.random() < 0.25 else str(n)


def _random_request(rng: random.Random, dos: date, *, long: bool = False) -> _Req:
    part, area = rng.choice(BODY_PARTS)
    if long or rng.random() < 0.06:
        # Compounded creams and long home-care orders are what wraps over two or three lines.
        if rng.random() < 0.7:
            ingredients = ", ".join(rng.sample(CREAM_INGREDIENTS, rng.randint(4, 7)))
            prefix = rng.choice(
                [
                    "",
                    "Retrospective request for compounded topical cream containing ",
                    "Prospective request for 1 prescription of compounded cream with ",
                ]
            )
            suffix = rng.choice(
                [
                    " in cream base",
                    " in cream base, 240 grams",
                    ", 180 grams, 2 refills",
                    f" in cream base (DOS {dos.strftime('%m/%d/%Y')})",
                ]
            )
            return _Req(prefix + ingredients + suffix, "topicals", "hand")
        n = rng.choice([4, 6, 8, 12])
        label = (
            f"Home health aide {n} hours per day, 5 times a week for {rng.choice([4, 6, 8])} weeks to assist "
            f"with mobility, transfers, activities of daily living and safety in the home while the spouse "
            f"is working, as an outpatient for the {part}"
        )
        return _Req(label, "home_health", area)
    r = rng.random()
    if r < 0.38:
        name, strengths, topic = rng.choice(DRUGS)
        strength = rng.choice(strengths)
        n = rng.choice([10, 20, 30, 60, 60, 90, 120])
        base = f"{name} {strength}".strip()
        tmpl = rng.choice(
            [
                "{base} #{n}",
                "{base} #{n}",
                "{base}, #{n}",
                "1 prescription of {base} #{n}",
                "Retrospective {base} #{n}",
                "{base} #{n} with 2 refills",
                # Colons inside requests are common in real letters; the decision line's colon is the last.
                "{base} #{n}, DOS: " + dos.strftime("%m/%d/%Y"),
                "{base} #{n} day supply: 30",
            ]
        )
        t = tmpl.replace("{base}", base)
        return _Req(t.format(n=n), topic, area, (t, n, part))
    if r < 0.62:
        tmpl, topic, (lo, hi) = rng.choice(COUNTED)
        t = tmpl.replace("{part}", part)
        n = rng.randint(lo, hi)
        n -= n % 2 if n > 4 else 0
        return _Req(t.format(n=_count_words(n, rng)), topic, area, (t, n, part))
    tmpl, topic = rng.choice(FIXED)
    return _Req(tmpl.replace("{part}", part), topic, area)


def _guidelines(rng: random.Random, req: _Req, style: str) -> tuple[str, str]:
    mtus, sections, odg, odg_topics, _, _ = TOPICS[req.topic]
    mtus = mtus or MTUS_CHAPTER[req.area]
    odg = odg or ODG_CHAPTER[req.area]
    sec = ", ".join(rng.sample(sections, rng.randint(1, len(sections)))) if sections else None
    odg_topic = rng.choice(odg_topics) if odg_topics else rng.choice(["Physical therapy", "Office visits"])
    non_mtus = (
        f"Decision based on Non-MTUS Citation Official Disability Guidelines (ODG), {odg}, {odg_topic}."
    )
    if style == "2013":
        ca = rng.choice(
            [
                "The Claims Administrator did not cite any medical evidence for its decision.",
                f"The Claims Administrator based its decision on the MTUS {mtus}.",
                "The Claims Administrator based its decision on the Non-MTUS Official Disability "
                "Guidelines (ODG), "
                f"{odg}.",
            ]
        )
        if sec and rng.random() < 0.6:
            mx = (
                f"The Expert Reviewer based his/her decision on the MTUS {mtus}, {sec}, pages "
                f"{rng.randint(20, 120)}-{rng.randint(121, 130)}, which is part of the MTUS."
            )
        else:
            mx = f"The Expert Reviewer did not base their decision on the MTUS. {non_mtus}"
        return ca, mx
    if sec and rng.random() < 0.7:
        ca = rng.choice(
            [f"Decision based on MTUS {mtus}.", f"Decision based on MTUS {mtus}, Section(s): {sec}."]
        )
        mx = f"Decision based on MTUS {mtus}, Section(s): {sec}."
    else:
        ca = (
            "The Claims Administrator based their decision on recommendation(s) outside of the MTUS "
            f"Guidelines. {non_mtus}"
        )
        mx = (
            "The Expert Reviewer based their decision on recommendation(s) outside of the MTUS Guidelines. "
            + non_mtus
        )
    return ca, mx


def _pronouns(sex: str) -> dict[str, str]:
    if sex == "male":
        return {"he": "he", "He_": "He", "his": "his", "him": "him"}
    return {"he": "she", "He_": "She", "his": "her", "him": "her"}


def _case_sentences(rng: random.Random, subj: str, pr: dict[str, str], req: _Req, when: date) -> list[str]:
    what = TOPICS[req.topic].thing
    part = req.counted[2] if req.counted else rng.choice(BODY_PARTS)[0]
    a = rng.randint(5, 9)
    d = _fmt_date_prose(rng, when)
    pool = [
        f"In this case, {subj} has been treated for {rng.choice(DIAGNOSES)} since {d}.",
        "The medical records submitted for review do not document objective functional improvement "
        "with prior "
        f"use of {what}.",
        "There is no documentation of a maintained increase in function or decrease in pain with the current "
        "regimen.",
        "The treating physician did not document the frequency, duration or response to prior treatment.",
        f"{_cap(subj)} has completed at least {rng.randint(6, 24)} sessions of physical therapy to date "
        "without "
        "documented benefit.",
        "There is no evidence of red flag conditions or a progressive neurological deficit.",
        f"Physical examination on {d} noted tenderness to palpation over the {part} with decreased range of "
        "motion.",
        f"The records indicate that {subj} continues to report pain rated {a}/10 without medications and "
        f"{a - rng.randint(1, 4)}/10 with medications.",
        "There is no documentation of a failed trial of first-line therapy.",
        "The request does not specify the frequency or duration of use.",
        "The requested quantity exceeds the number recommended by the guidelines for an initial trial.",
        f"{_cap(pr['he'])} has been on this treatment for longer than the guideline-recommended duration.",
        f"The progress report dated {d} does not include a treatment plan with measurable goals.",
        f"There was no clear rationale provided by the physician as to the medical necessity for {what} "
        "at this "
        "time.",
        f"It is unclear how the results would affect {subj}'s current treatment plan.",
        f"{_cap(subj)} remains on temporary total disability and has not returned to work.",
        f"The most recent follow-up note documented ongoing complaints of {part} pain radiating to the "
        "extremities.",
        "A urine drug screen was consistent with the prescribed medications and a signed pain agreement "
        "is on "
        "file.",
        f"The notes describe well-documented spasm of the paraspinal musculature on {d}.",
        f"There is no evidence that {subj} is participating in an independent home exercise program.",
        f"Prior imaging of the {part} showed mild degenerative changes without neural compromise.",
        f"{_cap(pr['he'])} was noted to have a non-antalgic gait and intact sensation to light touch.",
        "Documentation of a long-term treatment plan with a defined end point was not provided.",
        f"Medical records from the primary treating physician dated {d} were reviewed in their entirety.",
    ]
    return pool


def _rationale(
    rng: random.Random,
    req: _Req,
    decision: str,
    subj: str,
    pr: dict[str, str],
    when: date,
    style: str,
    long: bool,
) -> list[str]:
    guide = TOPICS[req.topic].guide
    first = rng.sample(guide, rng.randint(1, len(guide)))
    pool = _case_sentences(rng, subj, pr, req, when)
    n = rng.randint(8, 18) if long else rng.choice([1, 2, 3, 3, 4, 5, 6, 8])
    body = rng.sample(pool, min(n, len(pool)))
    label = _lower_first(req.label)
    if decision == "Upheld":
        end = rng.choice(
            [
                f"Therefore, the request for {label} is not medically necessary.",
                "Given the above, the request is not medically necessary.",
                "As such, the request is not medically necessary.",
                f"Given the above, the request for {label} is not medically necessary.",
            ]
        )
    else:
        body.insert(
            0,
            rng.choice(
                [
                    f"The documentation supports that {subj} has objective findings and has failed "
                    "conservative "
                    "treatment.",
                    "The treating physician documented decreased pain and improved ability to perform "
                    "activities of "
                    f"daily living, and {subj} has returned to modified work.",
                    "The request is consistent with guideline recommendations for this condition.",
                ]
            ),
        )
        end = rng.choice(
            [
                f"Therefore, the request for {label} is medically necessary.",
                "Given the above, the request is medically necessary.",
                f"As such, the request for {label} is medically necessary and appropriate.",
            ]
        )
    if style == "2013":
        first = [s.replace("CA MTUS", "California MTUS") for s in first]
    sentences = first + body + [end]
    # One to four paragraphs; long rationales get more breaks.
    k = 1 if len(sentences) < 5 else rng.randint(1, 2 if not long else 4)
    cuts = sorted(rng.sample(range(1, len(sentences)), k - 1)) if k > 1 else []
    paras, prev = [], 0
    for c in [*cuts, len(sentences)]:
        paras.append(" ".join(sentences[prev:c]))
        prev = c
    return paras


def _summary(
    rng: random.Random,
    style: str,
    age: int | None,
    sex: str,
    doi: date,
    ur: date,
    reqs: list[_Req],
    partial: tuple[str, str] | None,
) -> list[str]:
    pr = _pronouns(sex)
    ctx = dict(pr, part=rng.choice(BODY_PARTS)[0])
    doi_s = _fmt_date_prose(rng, doi)
    if style == "2013":
        first = f"The patient is a {age}-year-old {sex} who reported an injury on {doi.strftime('%m/%d/%Y')}."
        subj = "the patient"
    elif age is None:
        first = f"The injured worker is a {sex} who sustained an industrial injury on {doi_s}."
        subj = "the injured worker"
    else:
        first, subj = rng.choice(
            [
                (
                    f"The injured worker is a {age} year old {sex} who sustained an industrial injury "
                    f"on {doi_s}.",
                    "the injured worker",
                ),
                (
                    f"The injured worker is a {age} year old {sex}, who sustained an industrial injury "
                    f"on {doi_s}.",
                    "the injured worker",
                ),
                (
                    f"The applicant is a {age}-year-old {sex} who has filed a claim for chronic "
                    f"{ctx['part']} pain "
                    f"reportedly associated with an industrial injury of {doi_s}.",
                    "the applicant",
                ),
                (
                    f"This case involves a now {age}-year-old {sex} with a history of an occupational "
                    "claim from "
                    f"{doi_s}.",
                    "the claimant",
                ),
                (f"This is a {age} year old {sex} with a date of injury on {doi_s}.", "the injured worker"),
                (
                    f"The {age} year old {sex} injured worker suffered an industrial injury on {doi_s}.",
                    "the injured worker",
                ),
                (
                    f"According to medical records available for review, the injured worker is a {age} "
                    f"year old {sex}, "
                    f"who sustained an industrial injury on {doi_s}.",
                    "the injured worker",
                ),
            ]
        )
    dx = rng.sample(DIAGNOSES, rng.randint(2, 5))
    tx = rng.sample(TREATMENTS, rng.randint(2, 5))
    visit = doi + timedelta(days=max(1, (ur - doi).days // 2))
    symptom = rng.choice(
        ["difficulty sleeping", "numbness and tingling", "muscle spasms", "stiffness and weakness"]
    )
    sents = [
        first,
        rng.choice(MECHANISMS).format(**ctx),
        f"{_cap(subj)} was being treated for the diagnoses of {', '.join(dx[:-1])} and {dx[-1]}.",
        f"{_cap(subj)} was evaluated on {_fmt_date_prose(rng, visit)} for complaints of {ctx['part']} "
        "pain rated "
        f"{rng.randint(4, 9)} on a 10-point scale.",
        "Objective findings included tenderness to palpation and limited range of motion of the "
        f"{ctx['part']}.",
        f"Treatment to date has included {', '.join(tx[:-1])} and {tx[-1]}.",
        f"{_cap(pr['he'])} reported {symptom} with prolonged activity.",
        f"The treatment plan included {_lower_first(reqs[0].label)}.",
    ]
    n = rng.randint(3, len(sents))
    sents = sents[:2] + rng.sample(sents[2:], n - 2)
    if partial:
        # Real summaries repeat the partial-authorization wording; a parser must not take it for an item.
        sents.append(
            f"{partial[0]} was the original request. {partial[1]} was authorized by the Claims Administrator."
        )
    names = [_lower_first(r.label) for r in reqs[:3]]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    sents.append(f"On {_fmt_date_prose(rng, ur)}, utilization review non-certified the request for {listed}.")
    if len(sents) > 6 and rng.random() < 0.4:
        k = rng.randint(3, len(sents) - 2)
        return [" ".join(sents[:k]), " ".join(sents[k:])]
    return [" ".join(sents)]


def _random_dates(
    rng: random.Random, style: str, injury: date | None = None
) -> tuple[date, date, date, date, date, str]:
    """Injury <= UR denial <= application received <= assigned <= decision, and the priority."""
    if injury is not None:
        received = injury + timedelta(days=rng.randint(30, 500))
    elif style == "2013":
        received = date(2013, 3, 1) + timedelta(days=rng.randrange(640))
    else:
        received = date(2015, 1, 1) + timedelta(days=rng.randrange(5 * 365))
    ur = received - timedelta(days=rng.choice([0, 1, 2, 5, 7, 10, 14, 21, 28, 35, 42]))
    if injury is None:
        injury = ur - timedelta(
            days=rng.choice([rng.randint(0, 60), rng.randint(60, 900), rng.randint(900, 4000)])
        )
    ur = max(ur, injury)
    assigned = received + timedelta(days=rng.randint(0, 21))
    priority = "Expedited" if rng.random() < 0.04 else "Standard"
    decision = assigned + timedelta(days=rng.randint(1, 3) if priority == "Expedited" else rng.randint(7, 45))
    return injury, ur, received, assigned, decision, priority


def _random_case_number(rng: random.Random, received: date) -> str:
    # Real numbers run from 0000001 upward within a year; the 2016 corpus is around 0213037-0249735.
    return f"CM{received.year % 100:02d}-{rng.randrange(1, 400_000):07d}"


def _random_n_items(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.40:
        return 1
    if r < 0.65:
        return rng.randint(2, 3)
    if r < 0.88:
        return rng.randint(4, 8)
    return rng.randint(9, 25)


def _partial(rng: random.Random, req: _Req, kind: str) -> tuple[str, str, str]:
    """(original X, authorized Y, remaining Z) for a countable request."""
    tmpl, n, _ = req.counted
    n = max(n, 4)
    auth = rng.randint(1, n - 1)
    original = _cap(tmpl.format(n=n))
    if kind == "eligible":
        return original, _lower_first(tmpl.format(n=auth)), original
    return original, _cap(tmpl.format(n=auth)), tmpl.format(n=n - auth)


def random_spec(
    rng: random.Random, *, style: str = "2016", n_items: int | None = None, case_number: str | None = None
) -> LetterSpec:
    """A random letter and how to render it. Everything comes from `rng`: equal seeds give equal specs."""
    if style not in ("2016", "2013"):
        raise ValueError(f"unknown style {style!r}")
    injury, ur, received, assigned, decided, priority = _random_dates(rng, style)
    case_number = case_number or _random_case_number(rng, received)
    sex = rng.choice(["male", "female"])
    age: int | None = rng.randint(19, 78)
    if style == "2016" and rng.random() < 0.02:
        age = None  # as in a real letter: "The injured worker is a female who ..."
    if style == "2016":
        specialty = rng.choice(SPECIALTIES_2016)
        states = rng.sample(STATES + ["California"] * 8, rng.choice([1, 1, 1, 2, 2, 3]))
        states = list(dict.fromkeys(states))
        boilerplate = BOILERPLATE_2016
    else:
        specialty = rng.choice(SPECIALTIES_2013)
        states = ["California"] if rng.random() < 0.85 else ["California", rng.choice(STATES)]
        boilerplate = BOILERPLATE_2013.format(specialty=specialty, states=" and ".join(states))
    n = n_items if n_items is not None else _random_n_items(rng)
    if not 1 <= n <= 99:
        raise ValueError("n_items must be between 1 and 99")
    # Some letters get long rationales throughout so that they run to several pages.
    verbose = rng.random() < 0.2
    # Most letters uphold everything, as in the real index; some overturn all, some are mixed.
    overturn_rate = rng.choice([0.0, 0.0, 0.0, 0.1, 0.3, 0.6, 1.0])
    subjects = SUBJECTS_2013 if style == "2013" else SUBJECTS_2016
    pr = _pronouns(sex)
    reqs = [_random_request(rng, ur, long=rng.random() < 0.07) for _ in range(n)]
    items: list[ItemSpec] = []
    partial_for_summary = None
    for seq, req in enumerate(reqs, 1):
        decision = "Overturned" if rng.random() < overturn_rate else "Upheld"
        kind = "plain"
        if req.counted and rng.random() < 0.35:
            kind = "remaining" if rng.random() < 0.65 else "eligible"
        elif rng.random() < 0.04:
            kind = "eligible"
        authorized = None
        original = None
        request = req.label
        if kind == "remaining":
            original, authorized, request = _partial(rng, req, kind)
        elif kind == "eligible":
            if req.counted:
                original, authorized, _ = _partial(rng, req, kind)
            else:
                original = _cap(req.label)
                authorized = rng.choice(
                    [
                        f"{_lower_first(req.label)} for 1 month",
                        "a modified request",
                        f"{_lower_first(req.label)}, 1 month rental",
                    ]
                )
            # Real letters often restate X in lower case: "purchase of ..." after "Purchase of ...".
            request = _lower_first(original) if rng.random() < 0.3 else original
        if kind != "plain" and partial_for_summary is None and rng.random() < 0.5:
            partial_for_summary = (original, authorized)
        ca, mx = _guidelines(rng, req, style)
        paras = _rationale(
            rng, req, decision, rng.choice(subjects), pr, ur, style, verbose or rng.random() < 0.12
        )
        item = Item(
            seq=seq,
            request=request,
            decision=decision,
            original_request=original,
            claims_administrator_guideline=ca,
            maximus_guideline=mx,
            decision_rationale=_norm(" ".join(paras)),
        )
        items.append(
            ItemSpec(
                item,
                kind=kind,
                authorized=authorized,
                uses_is=kind == "plain" or rng.random() < 0.9,
                rationale_paragraphs=paras,
            )
        )
    summary = _summary(rng, style, age, sex, injury, ur, reqs, partial_for_summary)
    letter = Letter(
        case_number=case_number,
        date_assigned=assigned,
        date_of_injury=injury,
        decision_date=decided,
        ur_denial_date=ur,
        application_received=received,
        priority=priority,
        reviewer_specialty=specialty,
        reviewer_licensure_states=states,
        patient_age=age,
        patient_sex=sex,
        items=[i.item for i in items],
        clinical_case_summary=_norm(" ".join(summary)),
    ).enrich_items()  # the truth carries the v2 fields, as `imr parse` prints them
    running = None
    if rng.random() < 0.5:
        running = rng.choice(["Case Number: {cn}", "{cn}", "IMR Case Number {cn}"]).format(cn=case_number)
    return LetterSpec(
        letter=letter,
        style=style,
        boilerplate=boilerplate,
        summary_paragraphs=summary,
        items=items,
        licensure_sep=rng.choice([",", ", "]),
        justified=rng.random() < 0.85,
        running_header=running,
        footer_align=rng.choice(["center", "center", "right"]),
        gaps=tuple(rng.choice([0.0, 0.0, 6.0, 14.0, 28.0]) for _ in range(4)),
    )


# --------------------------------------------------------------------------------------------------
# Rendering.


def _style(name: str, **kw) -> ParagraphStyle:
    base = dict(
        fontName="Times-Roman",
        fontSize=12,
        leading=13.8,
        spaceAfter=13.8,
        splitLongWords=0,
        embeddedHyphenation=1,
        hyphenationMinWordLength=5,
        allowWidows=1,
        allowOrphans=1,
    )
    base.update(kw)
    return ParagraphStyle(name, **base)


_STYLES = {
    justified: {
        "body": _style("body" if justified else "body_left", alignment=TA_JUSTIFY if justified else TA_LEFT),
        "tight": _style("tight", alignment=TA_LEFT, spaceAfter=0),
        "heading": _style(
            "heading", fontName="Times-Bold", alignment=TA_CENTER, spaceBefore=6, spaceAfter=13.8
        ),
    }
    for justified in (True, False)
}
_NO_HYPHENATION = {
    s.name: ParagraphStyle(s.name, parent=s, embeddedHyphenation=0)
    for styles in _STYLES.values()
    for s in styles.values()
}


class _Para(Paragraph):
    """A Paragraph that keeps its layout tag across page splits (for the layout log the tests read)."""

    tag: tuple | None = None
    markup: str | None = None
    wrapped = False

    def wrap(self, availWidth, availHeight):
        # A wrap that hyphenates leaves split words in the fragments and the next wrap of the same
        # paragraph then loses their hyphens, so every re-wrap starts again from the markup.
        if self.wrapped and self.markup is not None:
            Paragraph.__init__(self, self.markup, self.style)
        self.wrapped = True
        return super().wrap(availWidth, availHeight)

    def split(self, availWidth, availHeight):
        # The parts of a split are built from the wrapped lines' fragments, which after hyphenation hold
        # split words that lose their hyphen (or whole words) when the part is wrapped again; so split a
        # fresh copy that does not hyphenate.
        if self.style.embeddedHyphenation and self.markup is not None:
            fresh = _Para(self.markup, _NO_HYPHENATION[self.style.name])
            fresh.wrap(availWidth, availHeight)
            parts = Paragraph.split(fresh, availWidth, availHeight)
        else:
            parts = super().split(availWidth, availHeight)
        for p in parts:
            p.tag = self.tag
        return parts


def _para(markup: str, style: ParagraphStyle, tag: tuple | None = None) -> _Para:
    p = _Para(markup, style)
    p.tag = tag
    p.markup = markup
    return p


class _LetterDoc(BaseDocTemplate):
    log: list | None = None

    def afterFlowable(self, flowable) -> None:
        if self.log is not None and getattr(flowable, "tag", None) is not None:
            self.log.append((flowable.tag, self.page))


class _NumberedCanvas(Canvas):
    """Defers the page furniture to save() so that the footer can say `Page N of M`."""

    def __init__(self, *args, imr_header: str | None = None, imr_footer_align: str = "center", **kw) -> None:
        super().__init__(*args, **kw)
        self._imr_states: list[dict] = []
        self._imr_header = imr_header
        self._imr_footer_align = imr_footer_align

    def showPage(self) -> None:
        self._imr_states.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._imr_states)
        for state in self._imr_states:
            self.__dict__.update(state)
            page = self._pageNumber
            self.setFont("Times-Roman", 10)
            footer = f"Page {page} of {total}"
            if self._imr_footer_align == "right":
                self.drawRightString(PAGE_W - MARGIN, 40, footer)
            else:
                self.drawCentredString(PAGE_W / 2, 40, footer)
            if self._imr_header and page > 1:
                self.setFont("Helvetica", 9)
                self.drawRightString(PAGE_W - MARGIN, PAGE_H - 42, self._imr_header)
            super().showPage()
        super().save()


def _header_table(letter: Letter, omit_case_number: bool) -> Table:
    def d(v: date | None) -> str:
        return v.strftime("%m/%d/%Y") if v else ""

    rows = [
        # Trailing blanks as in the real letters' labels.
        ["Case Number: ", letter.case_number or "", "", ""],
        ["Date Assigned: ", d(letter.date_assigned), "Date of Injury:  ", d(letter.date_of_injury)],
        ["Decision Date: ", d(letter.decision_date), "UR Denial Date:  ", d(letter.ur_denial_date)],
        # The real cell is too narrow for the label, so it wraps; keep the two lines.
        ["Priority:  ", letter.priority or "", "Application \nReceived: ", d(letter.application_received)],
    ]
    cmds = [
        ("GRID", (0, 0), (-1, -1), 0.75, "black"),
        ("FONT", (0, 0), (-1, -1), "Helvetica", 11, 13),
        ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 11, 13),
        ("FONT", (2, 0), (2, -1), "Helvetica-Bold", 11, 13),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 5),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if omit_case_number:
        rows = rows[1:]
    else:
        cmds.append(("SPAN", (2, 0), (3, 0)))
    t = Table(rows, colWidths=[107, 149, 98, 124])
    t.setStyle(TableStyle(cmds))
    return t


def _decision_markup(s: ItemSpec) -> str:
    it = s.item
    colon = " is:" if s.uses_is and s.kind != "plain" else ":"
    if s.kind == "remaining":
        text = (
            f"{it.original_request} was the original request. {s.authorized} was authorized by the Claims "
            f"Administrator. The remaining IMR eligible portion of the original request, {it.request}"
        )
    elif s.kind == "eligible":
        text = (
            f"{it.original_request} was the original request. The Claims Administrator authorized "
            f"{s.authorized}, leaving the original request IMR eligible. The original request, {it.request}"
        )
    else:
        text = it.request
    return f"<b>{escape(text)}{colon}</b> {it.decision}"


def _flowables(spec: LetterSpec) -> list:
    st = _STYLES[spec.justified]
    body, tight, heading = st["body"], st["tight"], st["heading"]
    L = spec.letter
    out: list = [Spacer(1, 6), _header_table(L, spec.omit_case_number), Spacer(1, 14 + spec.gaps[0])]
    out.append(_para(HEADING_HOW, heading))
    if spec.style == "2016":
        out.append(_para(escape(spec.boilerplate), body))
        out.append(_para(CREDENTIALS_INTRO, tight))
        if L.reviewer_licensure_states:
            out.append(
                _para(
                    "State(s) of Licensure: " + escape(spec.licensure_sep.join(L.reviewer_licensure_states)),
                    tight,
                )
            )
        if L.reviewer_specialty:
            out.append(_para("Certification(s)/Specialty: " + escape(L.reviewer_specialty), tight))
        out.append(Spacer(1, 13.8))
    else:
        out.append(_para(escape(spec.boilerplate), body))
    out.append(Spacer(1, spec.gaps[1]))
    out.append(_para(HEADING_SUMMARY, heading))
    out.append(_para(SUMMARY_INTRO, body))
    for p in spec.summary_paragraphs:
        out.append(_para(escape(p), body))
    out.append(Spacer(1, spec.gaps[2]))
    out.append(_para(HEADING_ISSUES, heading))
    out.append(_para(ISSUES_INTRO, body))
    out.append(Spacer(1, spec.gaps[3]))
    for s in spec.items:
        it = s.item
        if not spec.omit_decision_lines:
            out.append(_para(_decision_markup(s), body, ("decision", it.seq)))
        if it.claims_administrator_guideline is not None:
            out.append(
                _para(
                    "<b>Claims Administrator guideline:</b> " + escape(it.claims_administrator_guideline),
                    body,
                    ("ca", it.seq),
                )
            )
        if it.maximus_guideline is not None:
            out.append(
                _para("<b>MAXIMUS guideline:</b> " + escape(it.maximus_guideline), body, ("maximus", it.seq))
            )
        paras = s.rationale_paragraphs or ([it.decision_rationale] if it.decision_rationale else [])
        for k, p in enumerate(paras):
            markup = ("<b>Decision rationale:</b> " if k == 0 else "") + escape(p)
            out.append(_para(markup, body, ("rationale", it.seq, k)))
    return out


# Without reportlab's C accelerator, measuring words is most of the rendering time, and the same few
# thousand words recur in every letter; the widths are a pure function of (text, font, size).
_cached_string_width = functools.lru_cache(maxsize=1 << 16)(pdfmetrics.stringWidth)


@contextlib.contextmanager
def _fast_reportlab():
    """~35% faster rendering: cached word widths, and binary streams instead of ASCII85 (which costs a
    tenth of the time in pure Python and which the real letters do not use either)."""
    saved = rl_paragraph.stringWidth, rl_config.useA85
    rl_paragraph.stringWidth, rl_config.useA85 = _cached_string_width, 0
    try:
        yield
    finally:
        rl_paragraph.stringWidth, rl_config.useA85 = saved


def _render(spec: LetterSpec, *, encrypt: StandardEncryption | None = None, log: list | None = None) -> bytes:
    buf = io.BytesIO()
    doc = _LetterDoc(
        buf,
        pagesize=LETTER_PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        invariant=1,
        encrypt=encrypt,
        title="IMR Final Determination",
        author="MAXIMUS Federal Services",
    )
    doc.log = log
    frame = Frame(MARGIN, MARGIN, PAGE_W - 2 * MARGIN, PAGE_H - 2 * MARGIN, 0, 0, 0, 0, id="body")
    doc.addPageTemplates([PageTemplate(id="letter", frames=[frame])])
    header = None if spec.omit_case_number else spec.running_header
    maker = functools.partial(_NumberedCanvas, imr_header=header, imr_footer_align=spec.footer_align)
    with _fast_reportlab():
        doc.build(_flowables(spec), canvasmaker=maker)
    return buf.getvalue()


def _empty_password() -> StandardEncryption:
    # Like the real letters: encrypted with an empty user password, so any reader opens them, and flagged
    # "no copying", which pdfminer reports (PDFPage.get_pages(check_extractable=True) would refuse them).
    return StandardEncryption("", ownerPassword="imr-owner", canModify=0, canCopy=0, strength=128)


def render_spec(spec: LetterSpec, *, encrypt_empty_password: bool = False) -> bytes:
    return _render(spec, encrypt=_empty_password() if encrypt_empty_password else None)


def random_letter(
    rng: random.Random, *, style: str = "2016", n_items: int | None = None, case_number: str | None = None
) -> tuple[Letter, bytes]:
    """A random letter: its ground-truth record and its PDF."""
    spec = random_spec(rng, style=style, n_items=n_items, case_number=case_number)
    return spec.letter, render_spec(spec)


def spec_from_letter(
    letter: Letter, *, style: str = "2016", boilerplate_2013: str | None = None
) -> LetterSpec:
    """Default rendering choices for a given record. Text fields may separate paragraphs with blank lines."""
    if style == "2013":
        states = letter.reviewer_licensure_states or ["California"]
        boilerplate = (
            _norm(boilerplate_2013)
            if boilerplate_2013
            else BOILERPLATE_2013.format(
                specialty=letter.reviewer_specialty or "Internal Medicine", states=" and ".join(states)
            )
        )
    else:
        boilerplate = BOILERPLATE_2016
    if letter.clinical_case_summary:
        summary = [_norm(p) for p in re.split(r"\n\s*\n", letter.clinical_case_summary) if p.strip()]
    else:
        who = f"a {letter.patient_age}-year-old" if letter.patient_age is not None else "a"
        summary = [
            f"The {'patient' if style == '2013' else 'injured worker'} is {who} "
            f"{letter.patient_sex or 'male'} "
            "who reported an industrial injury. The mechanism of injury was not documented."
        ]
    items = []
    for it in letter.items:
        kind, authorized = "plain", None
        if it.original_request:
            if it.request.lower() == it.original_request.lower():
                kind, authorized = "eligible", "a portion of the original request"
            else:
                kind, authorized = "remaining", "A portion of the original request"
        paras = [_norm(p) for p in re.split(r"\n\s*\n", it.decision_rationale or "") if p.strip()]
        items.append(ItemSpec(it, kind=kind, authorized=authorized, rationale_paragraphs=paras))
    return LetterSpec(
        letter=letter, style=style, boilerplate=boilerplate, summary_paragraphs=summary, items=items
    )


def render_letter(
    letter: Letter,
    *,
    style: str = "2016",
    encrypt_empty_password: bool = False,
    boilerplate_2013: str | None = None,
) -> bytes:
    """Render any record as a letter. For style "2013", `boilerplate_2013` replaces the generated HOW THE IMR
    ... paragraph (which names the reviewer's board certification and licensure)."""
    spec = spec_from_letter(letter, style=style, boilerplate_2013=boilerplate_2013)
    return render_spec(spec, encrypt_empty_password=encrypt_empty_password)


# --------------------------------------------------------------------------------------------------
# The 2013-era seed letter.


def _seed_paragraphs(text: str) -> list[str]:
    """The seed is text extracted from a PDF: each line is followed by an empty line, a paragraph ends at a
    whitespace-only line, and a run of several empty lines is a page break that also ended a paragraph."""
    paras: list[str] = []
    cur: list[str] = []
    empties = 0
    for line in text.splitlines():
        if line == "":
            empties += 1
            if empties >= 3 and cur:
                paras.append(_norm(" ".join(cur)))
                cur = []
            continue
        empties = 0
        if not line.strip() or line.strip() in (HEADING_HOW, HEADING_SUMMARY, HEADING_ISSUES):
            if cur:
                paras.append(_norm(" ".join(cur)))
                cur = []
            if line.strip():
                paras.append(line.strip())
            continue
        cur.append(line)
    if cur:
        paras.append(_norm(" ".join(cur)))
    return paras


def seed_letter_pdf(
    seed_text_path: str | pathlib.Path, *, rng: random.Random | None = None, case_number: str | None = None
) -> tuple[Letter, bytes]:
    """Render the 2013-era seed letter's sections under a generated header; returns (truth, PDF)."""
    rng = rng or random.Random(2013)
    paras = _seed_paragraphs(pathlib.Path(seed_text_path).read_text(encoding="utf-8"))
    i_how, i_sum, i_iss = (paras.index(h) for h in (HEADING_HOW, HEADING_SUMMARY, HEADING_ISSUES))
    boilerplate = " ".join(paras[i_how + 1 : i_sum])
    m = re.search(r"Board Certified in (.+?) and is licensed to practice in (.+?)\.", boilerplate)
    if not m:
        raise ValueError("seed letter: no reviewer credentials sentence")
    summary = [p for p in paras[i_sum + 1 : i_iss] if not p.startswith("The expert reviewer developed")]
    m_pat = re.search(r"\b(\d+)[- ]year[- ]old (male|female)\b", summary[0])
    issues = [p for p in paras[i_iss + 1 :] if p != ISSUES_INTRO]
    items: list[ItemSpec] = []
    for p in issues:
        dm = re.fullmatch(r"(.+?):\s*(Upheld|Overturned)", p)
        if dm and not p.startswith(
            ("Claims Administrator guideline:", "MAXIMUS guideline:", "Decision rationale:")
        ):
            items.append(ItemSpec(Item(seq=len(items) + 1, request=dm.group(1), decision=dm.group(2))))
        elif p.startswith("Claims Administrator guideline:"):
            items[-1].item.claims_administrator_guideline = p.split(":", 1)[1].strip()
        elif p.startswith("MAXIMUS guideline:"):
            items[-1].item.maximus_guideline = p.split(":", 1)[1].strip()
        elif p.startswith("Decision rationale:"):
            items[-1].rationale_paragraphs.append(p.split(":", 1)[1].strip())
        elif items and items[-1].rationale_paragraphs:
            items[-1].rationale_paragraphs.append(p)
    for s in items:
        s.item.decision_rationale = " ".join(s.rationale_paragraphs)
    m_doi = re.search(r"injury on (\d\d)/(\d\d)/(\d{4})", summary[0])
    doi = date(int(m_doi.group(3)), int(m_doi.group(1)), int(m_doi.group(2))) if m_doi else None
    injury, ur, received, assigned, decided, priority = _random_dates(rng, "2013", injury=doi)
    letter = Letter(
        case_number=case_number or _random_case_number(rng, received),
        date_assigned=assigned,
        date_of_injury=injury,
        decision_date=decided,
        ur_denial_date=ur,
        application_received=received,
        priority=priority,
        reviewer_specialty=_norm(m.group(1)),
        reviewer_licensure_states=[m.group(2)],
        patient_age=int(m_pat.group(1)) if m_pat else None,
        patient_sex=m_pat.group(2) if m_pat else None,
        items=[s.item for s in items],
        clinical_case_summary=" ".join(summary),
    ).enrich_items()
    spec = LetterSpec(
        letter=letter, style="2013", boilerplate=boilerplate, summary_paragraphs=summary, items=items
    )
    return letter, render_spec(spec)


# --------------------------------------------------------------------------------------------------
# Files the loader must reject, keyed as BAD_FILE_CODES.


def _bad_not_pdf() -> bytes:
    return (
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1>\n"
        b"<p>The requested document was not found on this server.</p>\n</body></html>\n"
    )


def _bad_no_text_layer(rng: random.Random) -> bytes:
    """A 'scanned' page: the letter's opening drawn into a grayscale bitmap, no text operators at all."""
    # reportlab depends on Pillow; only this bad file needs it.
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader

    img = Image.new("L", (1275, 1650), 255)  # 8.5 x 11 in at 150 dpi
    draw = ImageDraw.Draw(img)
    spec = random_spec(rng, n_items=1)
    lines = [f"Case Number: {spec.letter.case_number}", "", HEADING_HOW, ""]
    words = spec.boilerplate.split() + spec.summary_paragraphs[0].split()
    cur = ""
    for w in words:
        if len(cur) + len(w) > 90:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    for k, line in enumerate(lines):
        draw.text((150, 150 + 22 * k), line, fill=0)
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=LETTER_PAGE, invariant=1)
    c.drawImage(ImageReader(img), 0, 0, PAGE_W, PAGE_H)
    c.showPage()
    c.save()
    return buf.getvalue()


def _bad_not_an_imr_letter(rng: random.Random) -> bytes:
    """A medical bill: real text, dates and money, but none of an IMR letter's structure."""
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=LETTER_PAGE, invariant=1)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(MARGIN, 720, "Westside Orthopedic Medical Group")
    c.setFont("Helvetica", 10)
    c.drawString(MARGIN, 704, "1200 Wilshire Blvd, Suite 400, Los Angeles, CA 90017   (213) 555-0142")
    c.setFont("Helvetica-Bold", 14)
    c.drawString(MARGIN, 670, "STATEMENT / INVOICE")
    c.setFont("Helvetica", 10)
    y = 645
    for label, value in [
        ("Invoice No:", f"INV-{rng.randrange(10**6):06d}"),
        ("Date of Service:", "03/14/2016"),
        ("Patient:", "Account 55-1029"),
        ("Claim No:", f"WC{rng.randrange(10**8):08d}"),
        ("Bill To:", "Pacific Claims Administrators, PO Box 2210, Fresno, CA 93745"),
    ]:
        c.drawString(MARGIN, y, label)
        c.drawString(MARGIN + 100, y, value)
        y -= 15
    y -= 15
    c.setFont("Helvetica-Bold", 10)
    for x, h in [
        (MARGIN, "CPT"),
        (MARGIN + 60, "Description"),
        (MARGIN + 330, "Units"),
        (MARGIN + 400, "Amount"),
    ]:
        c.drawString(x, y, h)
    c.setFont("Helvetica", 10)
    total = 0
    lines = [
        ("99213", "Office visit, established patient", 1, 145.0),
        ("97110", "Therapeutic exercises", 4, 58.5),
        ("97140", "Manual therapy techniques", 2, 52.0),
        ("72148", "MRI lumbar spine without contrast", 1, 890.0),
        ("J1030", "Methylprednisolone acetate 40 mg", 1, 24.75),
    ]
    for cpt, desc, units, price in lines:
        y -= 16
        amount = units * price
        total += amount
        c.drawString(MARGIN, y, cpt)
        c.drawString(MARGIN + 60, y, desc)
        c.drawString(MARGIN + 330, y, str(units))
        c.drawRightString(MARGIN + 460, y, f"${amount:,.2f}")
    y -= 24
    c.setFont("Helvetica-Bold", 11)
    c.drawString(MARGIN + 330, y, "Total due:")
    c.drawRightString(MARGIN + 460, y, f"${total:,.2f}")
    c.setFont("Helvetica", 9)
    c.drawString(
        MARGIN, 100, "Payment is due within 30 days. Please include the invoice number with your payment."
    )
    c.drawCentredString(PAGE_W / 2, 40, "Page 1 of 1")
    c.showPage()
    c.save()
    return buf.getvalue()


def _bad_timeout(n_ops: int = 20000, n_calls: int = 75) -> bytes:
    """A valid one-page letter whose page also paints a form XObject `n_calls` times; the form holds
    `n_ops` no-op `q Q` pairs. pdfminer parses a form's content stream again at every `Do`, so the page
    costs n_ops * n_calls pairs (about 6.5 us each on the development machine: ~10 s in the interpreter,
    ~20 s for extract_text) while the file stays about 2 kB and no layout objects pile up in memory."""
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=LETTER_PAGE, invariant=1)
    c.setFont("Helvetica-Bold", 11)
    c.drawString(MARGIN, 690, "Case Number:")
    c.setFont("Helvetica", 11)
    c.drawString(179, 690, "CM16-0999999")
    c.setFont("Times-Bold", 12)
    c.drawCentredString(PAGE_W / 2, 640, HEADING_HOW)
    c.beginForm("slow")
    c.addLiteral("q Q " * n_ops)
    c.endForm()
    for _ in range(n_calls):
        c.doForm("slow")
    c.showPage()
    c.save()
    return buf.getvalue()


def _bad_too_large(rng: random.Random, pages: int = 150) -> bytes:
    """A letter-like document over PAGE_LIMIT pages; each page reuses one form, so it stays small."""
    spec = random_spec(rng, n_items=1)
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=LETTER_PAGE, invariant=1)
    c.beginForm("body")
    c.setFont("Times-Roman", 12)
    words = " ".join(s.item.decision_rationale for s in spec.items).split() * 3
    y, line = 700.0, ""
    for w in words:
        if len(line) + len(w) > 88:
            c.drawString(MARGIN, y, line)
            y -= 13.8
            line = w
            if y < 90:
                break
        else:
            line = f"{line} {w}".strip()
    c.endForm()
    for page in range(1, pages + 1):
        if page == 1:
            c.setFont("Helvetica-Bold", 11)
            c.drawString(MARGIN, 740, "Case Number:")
            c.setFont("Helvetica", 11)
            c.drawString(179, 740, spec.letter.case_number)
        c.doForm("body")
        c.setFont("Times-Roman", 10)
        c.drawCentredString(PAGE_W / 2, 40, f"Page {page} of {pages}")
        c.showPage()
    c.save()
    return buf.getvalue()


def bad_files(seed: int = 0) -> dict[str, bytes]:
    """One file per BAD_FILE_CODES key. Deterministic for a seed."""
    rng = random.Random(f"bad:{seed}")
    encrypted = _render(
        random_spec(rng, n_items=2), encrypt=StandardEncryption("imr-secret", "imr-owner", strength=128)
    )
    header = random_spec(rng, n_items=2)
    header.omit_case_number = True
    items = random_spec(rng, n_items=3)
    items.omit_decision_lines = True
    whole = render_spec(random_spec(rng, n_items=4))
    return {
        "not_pdf": _bad_not_pdf(),
        "encrypted": encrypted,
        "no_text_layer": _bad_no_text_layer(rng),
        "not_an_imr_letter": _bad_not_an_imr_letter(rng),
        "header_missing_field": render_spec(header),
        "item_structure": render_spec(items),
        "timeout": _bad_timeout(),
        "too_large": _bad_too_large(rng),
        "truncated": whole[: len(whole) // 2],
    }


# --------------------------------------------------------------------------------------------------
# Sample sets.


def write_sample_set(
    outdir: pathlib.Path, *, count: int, seed: int = 0, include_bad: bool = True
) -> list[dict]:
    """Write `count` letters to outdir/letters/<case_number>.pdf (both styles, ~30% encrypted with the empty
    password), the bad files to outdir/bad/<key>.pdf, outdir/expected.jsonl (Letter.to_dict() + "file") and
    outdir/bad.jsonl ({"file", "error_code"}). Deterministic for a seed. Returns the rows of both files, each
    with "path" (relative to outdir) added, and for letters also "style" and "encrypted"."""
    outdir = pathlib.Path(outdir)
    (outdir / "letters").mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    seen: set[str] = set()
    with (outdir / "expected.jsonl").open("w", encoding="utf-8") as out:
        for i in range(count):
            # One generator per letter: letter i does not change when count does.
            rng = random.Random(f"{seed}:{i}")
            style = "2013" if rng.random() < 0.25 else "2016"
            spec = random_spec(rng, style=style)
            while spec.letter.case_number in seen:
                spec = random_spec(rng, style=style)
            seen.add(spec.letter.case_number)
            encrypted = rng.random() < 0.3
            name = f"{spec.letter.case_number}.pdf"
            (outdir / "letters" / name).write_bytes(render_spec(spec, encrypt_empty_password=encrypted))
            row = spec.letter.to_dict()
            row["file"] = name
            out.write(json.dumps(row) + "\n")
            rows.append({**row, "path": f"letters/{name}", "style": style, "encrypted": encrypted})
    if include_bad:
        (outdir / "bad").mkdir(exist_ok=True)
        with (outdir / "bad.jsonl").open("w", encoding="utf-8") as out:
            for key, data in bad_files(seed).items():
                name = f"{key}.pdf"
                (outdir / "bad" / name).write_bytes(data)
                row = {"file": name, "error_code": BAD_FILE_CODES[key]}
                out.write(json.dumps(row) + "\n")
                rows.append({**row, "path": f"bad/{name}"})
    return rows
