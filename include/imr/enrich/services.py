"""Service rules: the wording that places a non-drug request (imaging, electrodiagnostics, labs,
therapies, surgery, injections, DME, programs, visits, psych services, home health, transport) in
the taxonomy. Each rule is a named regular expression over the lower-cased request; the classifier
(`classify.py`) decides the order in which the groups are tried."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .taxonomy import check


@dataclass(frozen=True)
class Rule:
    """A service rule: a pattern on the request text and the category it gives."""

    name: str
    pattern: re.Pattern[str]
    category: str
    subcategory: str

    def search(self, text: str) -> re.Match[str] | None:
        """The rule's first match in `text`.

        :param text: the folded request text.
        :return: the match or None.
        """
        return self.pattern.search(text)


def _rule(name: str, pattern: str, category: str, subcategory: str) -> Rule:
    check(category, subcategory)
    return Rule(name, re.compile(pattern, re.IGNORECASE | re.VERBOSE), category, subcategory)


# A count of sessions or a frequency ("x 6", "2 times a week", "12 sessions", "#6"): what tells a
# treatment given in the office (a therapy) from a product that is bought or rented (DME).
SESSIONS = re.compile(
    r"""\b(sessions?|visits?|treatments?|times|x\s*\d|\d+\s*x\b|per\s+week|a\s+week|weekly|\d+x\d+)\b
    |\#\s*\d+\b""",
    re.IGNORECASE | re.VERBOSE,
)
# Spinal levels and regions: what makes a fusion or a decompression spine surgery.
SPINE = re.compile(
    r"""\b([ctl]\s?\d{1,2}\s*-\s*[ctls]?\s?\d{1,2}|l5\s*-\s*s1|lumbar|lumbosacral|cervical|thoracic|spine|spinal
    |sacroiliac|si\s+joint|vertebra\w*|dis[ck]s?)\b""",
    re.IGNORECASE | re.VERBOSE,
)
PERIOPERATIVE = re.compile(
    r"\b(pre|post|peri)[- ]?(op|operative(ly)?|surgical)\b"
    r"|\b(after|following|before|prior\s+to)\s(the\s)?surgery\b",
    re.IGNORECASE,
)
ASSOCIATED = re.compile(r"^\s*associated surgical services?\s*:?\s*", re.IGNORECASE)

# --- therapies (Rehabilitation, Psych Services/Therapies) -------------------------------------
PSYCH_THERAPY = _rule(
    "psych-therapy",
    r"""psychotherap\w*|cognitive[- ]behavio\w*|\bcbt\b|\bcounsel+ing\b|bio-?feedback|neurofeedback|hypno\w*
    |relaxation\s+(training|therapy)|psycholog\w*\s+(treatment|therapy|sessions?|visits?|intervention)
    |pain\s+psychology|group\s+therapy|stress\s+management|mindfulness|\bemdr\b|coping\s+skills|talk\s+therapy
    |psychiatric\s+(treatment|therapy)\s+sessions?""",
    "Psych Services",
    "Therapies",
)
CHIROPRACTIC = _rule(
    "chiropractic",
    r"""chiropract\w*|\bchiro\w*|\bcmt\b|\bomt\b|osteopathic\s+manipulat\w*|manipulat\w*|spinal\s+adjustments?
    |\badjustments?\b|manual\s+therap\w*""",
    "Rehabilitation",
    "Chiropractic",
)
ACUPUNCTURE = _rule(
    "acupuncture",
    r"acupunct\w*|electro[- ]?acupunct\w*|acupressure|dry\s+needling|auricular\s+therapy",
    "Rehabilitation",
    "Acupuncture",
)
# Passive modalities and other hands-on treatments that are not PT, chiropractic or acupuncture.
OTHER_THERAPY = _rule(
    "other-therapy",
    r"""massage|myofascial|soft\s+tissue\s+mobili[sz]ation|infrared|paraffin|diathermy|iontophoresis|phonophoresis
    |laser|\blllt\b|shock\s?wave|\beswt\b|kinesio|taping|whirlpool|hydrotherapy|traction|spinolator|vax-?d
    |decompression\s+therapy|hyperbaric|light\s+therapy|contrast\s+baths?|magnet\w*\s+therapy|vibration\s+therapy
    |therapeutic\s+ultrasound|ultrasound\s+(therapy|treatments?)
    |(hot|cold|ice|heat)\s*(/|and|or|-)?\s*(hot|cold|ice|heat)?\s+(packs?|pads?|therapy)
    |cryotherapy|speech\s+therap\w*|cognitive\s+(rehab\w*|therapy)|vision\s+therapy|music\s+therapy|art\s+therapy
    |recreational\s+therapy|mobili[sz]ation|cupping|instrument[- ]assisted|graston
    |muscle\s+stimulation\s+therapy""",
    "Rehabilitation",
    "Other Therapies",
)
PT_OT = _rule(
    "pt-ot",
    r"""physical\s+therap\w*|physiotherap\w*|\bp\.?t\.?\b|occupational\s+therap\w*|\bo\.?t\.?\b|hand\s+therap\w*
    |therapeutic\s+(exercises?|activit\w*)|aqua\w*\s+(therapy|exercise)|pool\s+(therapy|exercise)|water\s+therapy
    |neuromuscular\s+re-?education|gait\s+training|home\s+exercise\s+(program|instruction)|vestibular\s+(therapy|rehab\w*)
    |work\s+simulation|rehabilitat\w*|\brehab\b|\btherapy\b.*\b(sessions?|visits?|times|x\s*\d)\b
    |\b(sessions?|visits?)\s+of\s+therapy\b|\bpost-?op(erative)?\s+therapy""",
    "Rehabilitation",
    "Physical Therapy/Occupational Therapy (PT/OT)",
)
ELECTRICAL_STIMULATION = _rule(
    "electrical-stimulation",
    r"""\btens\b|transcutaneous\s+electric\w*|interferential|\bif\s+(unit|stimulator|device)|h-?\s?wave|\bnmes\b
    |neuromuscular\s+(electrical\s+)?stimulat\w*|\bems\b|electric\w*\s+(muscle\s+|nerve\s+)?stimulat\w*
    |e-?stim\w*|electrotherap\w*|micro-?current|\bmens\b|\bpens\b|percutaneous\s+electrical|scrambler|calmare
    |bone\s+(growth\s+)?stimulator|\bneurostimulat\w*\s+unit|alpha[- ]stim|cefaly|interspec|\brs-?4i\b
    |muscle\s+stimulator|galvanic""",
    "DMEPOS",
    "Electrical Stimulation",
)
THERAPIES = (PSYCH_THERAPY, CHIROPRACTIC, ACUPUNCTURE, PT_OT)

# --- surgery ------------------------------------------------------------------------------------
ARTHROSCOPY = _rule(
    "arthroscopy", r"arthroscop\w*|\bscope\b|endoscopic\s+(carpal|release)", "Surgery", "Arthroscopic Surgery"
)
SPINE_SURGERY = _rule(
    "spine-surgery",
    r"""laminectom\w*|laminotom\w*|laminoplast\w*|dis[ck]ectom\w*|foraminotom\w*|facetectom\w*|corpectom\w*|\bacdf\b
    |\b[tpadx]lif\b|kyphoplast\w*|vertebroplast\w*|(disc|disk)\s+(replacement|arthroplasty)|artificial\s+dis[ck]
    |spinal\s+cord\s+stimulat\w*|\bscs\b|dorsal\s+column|intrathecal\s+(pump|drug\s+delivery|catheter)|pain\s+pump
    |\bidet\b|intradiscal|annuloplast\w*|nucleoplast\w*|coflex|x-stop|interspinous|spinal\s+(surgery|stabili[sz]ation|instrumentation)""",
    "Surgery",
    "Spine",
)
# Fusion and decompression are spine surgery only at a spinal level (an ankle fusion is not).
SPINE_BY_LEVEL = re.compile(
    r"fusion|arthrodesis|decompression|hardware\s+removal|removal\s+of\s+hardware", re.IGNORECASE
)
# Done through the scope as a rule; "open" in the request says otherwise.
SCOPE_PROCEDURES = _rule(
    "arthroscopic-procedure",
    r"""menisc\w*|\bacl\b|anterior\s+cruciate|chondroplast\w*|subacromial|\bsad\b|acromioplast\w*|rotator\s+cuff\s+repair
    |\brcr\b|labral|labrum|bankart|\bslap\b|distal\s+clavicle\s+(excision|resection)|mumford|loose\s+body""",
    "Surgery",
    "Arthroscopic Surgery",
)
OPEN_SURGERY = _rule(
    "non-arthroscopic-procedure",
    r"""carpal\s+tunnel\s+release|\bctr\b|trigger\s+(finger|thumb)\s+release|release\s+of|\brelease\b|repair|reconstruct\w*
    |replacement|arthroplast\w*|\btk[ar]\b|\bth[ar]\b|\borif\b|open\s+reduction|internal\s+fixation|hardware\s+removal
    |removal\s+of\s+hardware|excision|resection|osteotom\w*|fasciectom\w*|fasciotom\w*|tenotom\w*|tenex|tenodesis
    |tendon\s+transfer|transposition|neurolysis|neurectom\w*|amputat\w*|bunionectom\w*|hernia\w*|debridement
    |manipulation\s+under\s+anesthesia|\bmua\b|capsulotom\w*|capsular\s+release|synovectom\w*|ganglion\s+cyst
    |de\s*quervain|cubital\s+tunnel|plantar\s+fascia|bariatric|gastric\s+(bypass|sleeve|band)|lap\s?band|cataract
    |septoplast\w*|fusion|arthrodesis|decompression|\bsurgery\b|surgical\s+(procedure|intervention|treatment)
    |operative\s+(procedure|treatment)|implant\s+removal|nerve\s+decompression|ectomy\b|plasty\b""",
    "Surgery",
    "Non-arthroscopic Surgery",
)
ADJUNCT = _rule(
    "adjunct-surgical",
    r"""assistant\s+surgeon|assistant\s+at\s+surgery|surgical\s+assist\w*|co-?surgeon|(medical|surgical|cardiac|pre-?op\w*|internal\s+medicine)\s+clearance
    |\bclearance\b|inpatient\s+(stay|admission|hospital\w*)|hospital\s+(stay|admission)|length\s+of\s+stay|overnight\s+stay
    |\d+\s*-?\s*days?\s+(inpatient|hospital|stay)|anesthesi\w*|\bmac\b|surgical\s+facility|surgery\s+center
    |outpatient\s+surgical|facility\s+fee|pre-?admission""",
    "Surgery",
    "Adjunct Surgical Services",
)

# --- injections ------------------------------------------------------------------------------------
FACET = _rule(
    "facet-injection",
    r"""facet|medial\s+branch|\bmbb\b|zygapophys\w*|radio-?\s?frequency|\brfa\b|\brf\s+(ablation|lesioning|neurotomy)
    |rhizotomy|neurotomy""",
    "Injection",
    "Facet Injection",
)
# Radiofrequency of a peripheral nerve is not a facet procedure.
NOT_FACET = re.compile(r"genicular|occipital|suprascapular|peripheral|knee|shoulder|hip\b", re.IGNORECASE)
INJECTION = _rule(
    "injection",
    r"""epidural|\b(tf|il|c|l|t)?esi(s)?\b|transforaminal|interlaminar|caudal|nerve\s+root\s+blocks?|\bsnrbs?\b|trigger\s+points?
    |\btpis?\b|nerve\s+blocks?|\bblocks?\b|occipital|stellate|sympathetic|genicular|intra-?articular|joint\s+injections?
    |injections?|injected|inject\b|\bshots?\b|\bprp\b|platelet[- ]rich|prolotherap\w*|stem\s+cells?
    |neuroplast\w*|adhesiolysis|racz|neurolytic|botox|botulinum|ozone|sarapin|aspiration|arthrocentesis|bursa\w*\s+injection
    |intrathecal\s+injection|hydrodissection|ganglion\s+impar""",
    "Injection",
    "Injection",
)
# Ways a drug reaches the body without a procedure on a site: a drug given so is Pharmaceuticals/Injection.
SYSTEMIC_ROUTE = re.compile(
    r"\b(im|intramuscular(ly)?|iv|intravenous(ly)?|infusions?|subcutaneous(ly)?|sub-?q|sq)\b", re.IGNORECASE
)
# Procedure words that make "X injection" an injection procedure whatever X is.
INJECTION_SITE = re.compile(
    r"""epidural|facet|trigger|block|joint|intra-?articular|bursa|tendon|sheath|knee|shoulder|hip|elbow|wrist|hand
    |ankle|foot|finger|thumb|spine|lumbar|cervical|thoracic|sacroiliac|\bsi\b|plantar|subacromial|greater\s+trochanter
    |carpal\s+tunnel|de\s*quervain|epicondyl\w*|ultrasound[- ]guided|fluoroscop\w*|\bl\d|\bc\d""",
    re.IGNORECASE | re.VERBOSE,
)

# --- diagnostics ---------------------------------------------------------------------------------
EMG = _rule(
    "emg-ncv",
    r"\bemgs?\b|\bncvs?\b|\bncss?\b|electromyo\w*|nerve\s+conduction|electro-?diagnostic\w*|\beds\b|\bedx\b",
    "Diagnostic Testing",
    "EMG/NCV/NCS",
)
IMAGING = _rule(
    "imaging",
    r"""\bmri'?s?\b|\bmra\b|magnetic\s+resonance|\bct\b|\bcat\s+scan|computed\s+tomograph\w*|x-?\s?rays?|radiograph\w*
    |\bfilms?\b|bone\s+scans?|bone\s+density|\bdexa\b|\bdxa\b|\bpet\b|ultrasound|sonogra\w*|ultrasonogra\w*|doppler
    |duplex|myelogra\w*|discogra\w*|arthrogra\w*|fluoroscop\w*|imaging|\bscans?\b|venogra\w*|angiogra\w*|mammogra\w*
    |scintigraph\w*|\bspect\b|views?\s+of""",
    "Diagnostic Testing",
    "Imaging/Radiology",
)
LABS = _rule(
    "lab",
    r"""\blabs?\b|laborator\w*|lab\s+work|blood\s+(work|tests?|draw|panel|count|glucose|sugar)|\bcbc\b|\bcmp\b|\bbmp\b
    |metabolic\s+panel|liver\s+(function|enzymes?|panel)|\blfts?\b|renal\s+(function|panel)|kidney\s+function|urine
    |urinalysis|\bua\b|drug\s+(screens?|test\w*)|\bud[st]\b|toxicolog\w*|tox\s+screen|a1c|lipid\s+panel|\btsh\b
    |thyroid\s+(panel|function)|\b(testosterone|vitamin\s+d|drug|serum|hormone|b12|iron|ferritin|glucose)\s+levels?\b
    |genetic\s+test\w*|pharmacogen\w*|\bdna\b|cyp\s?450|cultures?|patholog\w*|biops\w*|sed\s+rate|\besr\b
    |c-reactive|\bcrp\b|rheumatoid\s+factor|\bana\b|hla-?b27|\bpanel\b|\bpt/?inr\b|coagulation|prothrombin|protime|\binr\b|\ba?ptt\b""",
    "Diagnostic Testing",
    "Lab & Pathology",
)
OTHER_DIAGNOSTIC = _rule(
    "other-diagnostic",
    r"""functional\s+capacity|\bfce\b|\beegs?\b|electroencephalo\w*|\beeg\b|\bekgs?\b|\becgs?\b|electrocardio\w*
    |echocardio\w*|stress\s+test|holter|sleep\s+(study|studies|test\w*)|polysomnogra\w*|pulmonary\s+function|\bpfts?\b
    |spirometr\w*|quantitative\s+sensory|\bqst\b|audiogra\w*|hearing\s+test|audiometr\w*|vestibular\s+test\w*
    |videonystagmo\w*|\bvng\b|thermogra\w*|range\s+of\s+motion|\brom\b|muscle\s+test\w*|strength\s+test\w*
    |computeri[sz]ed\s+(muscle|range|testing)|grip\s+strength|nerve\s+fiber\s+density|sudomotor|autonomic\s+(testing|function)
    |tilt\s+table|\bqsart\b|cardio-?respiratory|allergy\s+test|visual\s+field|endoscop\w*|colonoscop\w*|\begd\b|manometry
    |evoked\s+potentials?|\bssep\b|\bvep\b|\bbaer\b""",
    "Diagnostic Testing",
    "Other Diagnostic Tests",
)

# Test words without a named test: tried only after everything else.
GENERIC_DIAGNOSTIC = _rule(
    "diagnostic-test",
    r"diagnostic\s+(test\w*|studies|study)|\btesting\b|\btests?\b|\bstudy\b|\bstudies\b|screening",
    "Diagnostic Testing",
    "Other Diagnostic Tests",
)

# --- DMEPOS --------------------------------------------------------------------------------------
SUPPLIES = _rule(
    "supplies",
    r"""electrodes?|(tens|unit|h-?wave|interferential)\s+(patches|pads|supplies)|batter(y|ies)|supplies|dressings?
    |bandages?|gauze|gloves|catheters?|ostomy|incontinence|diapers|underpads|lead\s+wires|conductive\s+garment|syringes
    |needles|test\s+strips|lancets|compression\s+(stockings?|hose|socks|garments?)|ted\s+hose|kinesio\s+tape|tape\b""",
    "DMEPOS",
    "Supplies",
)
ORTHOTICS = _rule(
    "orthotics",
    r"""brac(e|es|ing)\b|splints?|orthos[ie]s|orthotics?|supports?\b|\blso\b|\btlso\b|collar|\bafos?\b|insoles?
    |shoe\s+inserts?|heel\s+(cups?|lifts?)|orthopedic\s+shoes|custom\s+shoes|prosthe\w*|slings?\b|immobili[sz]er
    |walking\s+boot|cam\s+(boot|walker)|knee\s+sleeve|elbow\s+strap|counterforce|compression\s+sleeve|binder|corset
    |thumb\s+spica|abduction\s+pillow|hearing\s+aids?|eye\s?glasses|spectacles|contact\s+lenses""",
    "DMEPOS",
    "Prosthetics/Orthotics",
)
DME = _rule(
    "dme",
    r"""wheel\s?chair|walker|rollator|\bcanes?\b|crutch\w*|commode|shower\s+chair|bath\w*\s+(chair|bench|seat)
    |tub\s+(bench|transfer)|hospital\s+bed|mattress|pillows?|cushion|cold\s+(therapy\s+)?(units?|device|system|machine|wrap)
    |cold\s+compression|(hot|cold|ice|heat|gel)\s*(and\s+cold\s+)?packs?|cryo\w*\s+(units?|device|machine|cuff)|polar\s+care|game\s+ready|ice\s+machine|hot\s*/\s*cold
    |heat\w*\s+(pads?|wraps?|units?|therapy\s+pads?)|thermacare|heating\s+pad|traction\s+(units?|device)|continuous\s+passive
    |\bcpm\b|exercise\s+(equipment|bikes?|balls?|kits?|machine|bands?)|stationary\s+bike|treadmill|thera-?band
    |resistance\s+bands?|pedal\s+exerciser|lift\s+chair|recliner|scooter|power\s+chair|grab\s+bars?|toilet\s+(seat|riser)
    |reacher|grabber|dressing\s+aid|sock\s+aid|home\s+modification|\bramp\b|stair\s?lift|vasopneumatic
    |compression\s+(device|pump|units?|system)|\bdvt\b|pneumatic|c-?pap|bipap|nebuli[sz]er|glucometer|humidifier
    |ergonomic|standing\s+desk|durable\s+medical|\bdme\b|equipment|wraps?\b|\bunits?\b|purchase|rental""",
    "DMEPOS",
    "DME",
)

# --- programs, visits, home health, transport -------------------------------------------------------
PROGRAMS = _rule(
    "program",
    r"""functional\s+restoration|\bfrp\b|\bhelp\s+program|pain\s+(management\s+)?program|multi-?disciplinary
    |inter-?disciplinary|detox\w*|weaning\s+program|weight\s+(loss|reduction|management)|medifast|lindora|nutrisystem
    |weight\s+watchers|work\s+hardening|work\s+conditioning|gym|health\s+club|ymca|fitness|pool\s+membership
    |skilled\s+nursing\s+facility|\bsnf\b|residential|inpatient\s+rehab\w*\s+(facility|program|center|admission)
    |drug\s+rehab\w*|substance\s+abuse|chemical\s+dependency|\bprograms?\b|membership""",
    "Programs",
    "Programs",
)
HOME_HEALTH = _rule(
    "home-health",
    r"""home\s+health|home\s+care|home\s+(nursing|aides?|assistan\w*|attendant|help|caregiver|health\s+aide)|health\s+aides?
    |in-?home\s+(care|services|support)|caregiver|attendant\s+care|housekeep\w*|homemaker|chore\s+services
    |\b(rn|lvn|lpn)\b|nursing\s+(visits?|care|services)|skilled\s+nursing\s+(visits?|services)|visiting\s+nurse
    |home\s+infusion|personal\s+care\s+(assistan\w*|services)""",
    "Home Health",
    "Home Health",
)
TRANSPORT = _rule(
    "transportation",
    r"transport\w*|taxi|\bcab\b|ambulance|mileage|travel|\buber\b|\blyft\b|shuttle|\brides?\b|paratransit|\bdriver\b|\bvan\b",
    "Transportation",
    "Transportation",
)
DENTAL = _rule(
    "dental",
    r"""dental|dentist\w*|\bteeth\b|\btooth\b|periodont\w*|oral\s+surg\w*|\bcrowns?\b|dentures?|root\s+canal|endodont\w*
    |orthodont\w*|\btmj\b|night\s+guard|mouth\s+guard|bite\s+splint|occlusal|prosthodont\w*""",
    "Evaluation & Management",
    "Dental Services",
)
PSYCH_EVALUATION = _rule(
    "psych-evaluation",
    r"psych\w*|neuropsych\w*|mental\s+health|behavio\w*\s+health",
    "Psych Services",
    "Evaluation & Management",
)
SURGICAL_CONSULT = _rule(
    "surgical-consult",
    r"surgeon|surgical|surgery|neurosurg\w*|spine\s+specialist",
    "Surgery",
    "Surgical Consult",
)
VISIT = _rule(
    "visit",
    r"""consult\w*|referr\w*|\brefer\b|second\s+opinion|office\s+visits?|\bf/u\b
    |follow[- ]?ups?(\s+(visits?|appointments?|consult\w*|evaluations?|exam\w*|care|office|with|for|in|at)\b
    |\s*$)
    |evaluation\s+and\s+(management|treatment)
    |evaluate\s+and\s+treat|transfer\s+of\s+care|\btoc\b|initial\s+(exam\w*|evaluation|visit|consultation)|new\s+patient
    |re-?evaluations?|re-?exam\w*|visits?|appointments?|\bexam\b|examination|medication\s+management|\bcare\s+with\b
    |pain\s+management|specialist|evaluation\s+(with|by)|\beval\b|\btreat\s+with\b""",
    "Evaluation & Management",
    "Medical Specialties",
)
