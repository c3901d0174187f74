"""Random letter content: `random_spec` draws a whole `LetterSpec` (the record plus its rendering choices)
from one `random.Random`, so equal seeds give equal letters. Letter-level builders (dates, patient,
reviewer, summary, layout) sit below the item-level ones (request, decision form, guidelines, rationale).

Every draw happens in a fixed order; reordering two calls on `rng` changes every letter after them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from imr.enrich import enrich_letter
from imr.records import Item, Letter

from .phrases import (
    BODY_PARTS,
    BOILERPLATE_2013,
    BOILERPLATE_2016,
    COUNTED,
    CREAM_INGREDIENTS,
    DIAGNOSES,
    DRUGS,
    FIXED,
    GUIDELINES,
    MECHANISMS,
    MTUS_CHAPTER,
    NOTICE,
    ODG_CHAPTER,
    RATIONALE,
    REQUESTS,
    RUNNING_HEADERS,
    SPECIALTIES_2013,
    SPECIALTIES_2016,
    STATES,
    SUBJECTS_2013,
    SUBJECTS_2016,
    SUMMARY,
    TOPICS,
    TREATMENTS,
)
from .spec import ItemSpec, LetterSpec, NoticeSpec, norm

# random_spec's styles -> the record's `letter_format` (contract v3).
LETTER_FORMAT = {"2016": "final_2016", "2013": "seed_2013", "notice2013": "notice_2013"}

# --------------------------------------------------------------------------------------------------
# Text helpers.


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


def _and_list(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _pronouns(sex: str) -> dict[str, str]:
    if sex == "male":
        return {"he": "he", "He_": "He", "his": "his", "him": "him"}
    return {"he": "she", "He_": "She", "his": "her", "him": "her"}


@dataclass
class _Req:
    """A drawn request: its label, the topic and body area its guidelines come from, and for countable
    requests what a partial authorization needs."""

    label: str
    topic: str
    area: str
    counted: tuple[str, int, str] | None = None  # (template with {n}, original n, body part) when countable


@dataclass
class _LetterContext:
    """What the item builders need to know about the letter they belong to."""

    style: str
    pronouns: dict[str, str]
    ur: date  # the UR denial date: dates of service and of the case sentences
    subjects: list[str]
    verbose: bool  # long rationales throughout
    overturn_rate: float


# --------------------------------------------------------------------------------------------------
# Item level: one disputed item.


def _count_words(n: int, rng: random.Random) -> str:
    words = REQUESTS["number_words"]
    return words[n] if n < len(words) and rng.random() < 0.25 else str(n)


def _long_request(rng: random.Random, part: str, area: str, dos: date) -> _Req:
    """Compounded creams and long home-care orders are what wraps over two or three lines."""
    if rng.random() < 0.7:
        ingredients = ", ".join(rng.sample(CREAM_INGREDIENTS, rng.randint(4, 7)))
        prefix = rng.choice(REQUESTS["cream_prefixes"])
        suffix = rng.choice(REQUESTS["cream_suffixes"]).format(dos=dos.strftime("%m/%d/%Y"))
        return _Req(prefix + ingredients + suffix, "topicals", "hand")
    n = rng.choice([4, 6, 8, 12])
    label = REQUESTS["long_home_health"].format(n=n, weeks=rng.choice([4, 6, 8]), part=part)
    return _Req(label, "home_health", area)


def _drug_request(rng: random.Random, part: str, area: str, dos: date) -> _Req:
    name, strengths, topic = rng.choice(DRUGS)
    strength = rng.choice(strengths)
    n = rng.choice([10, 20, 30, 60, 60, 90, 120])
    base = f"{name} {strength}".strip()
    # Colons inside requests are common in real letters (`DOS:`); the decision line's colon is the last.
    form = rng.choice(REQUESTS["drug_forms"])
    template = form.replace("{base}", base).replace("{dos}", dos.strftime("%m/%d/%Y"))
    return _Req(template.format(n=n), topic, area, (template, n, part))


def _counted_request(rng: random.Random, part: str, area: str) -> _Req:
    template, topic, (lo, hi) = rng.choice(COUNTED)
    template = template.replace("{part}", part)
    n = rng.randint(lo, hi)
    n -= n % 2 if n > 4 else 0
    return _Req(template.format(n=_count_words(n, rng)), topic, area, (template, n, part))


def _fixed_request(rng: random.Random, part: str, area: str) -> _Req:
    template, topic = rng.choice(FIXED)
    return _Req(template.replace("{part}", part), topic, area)


def _random_request(rng: random.Random, dos: date, *, long: bool = False) -> _Req:
    part, area = rng.choice(BODY_PARTS)
    if long or rng.random() < 0.06:
        return _long_request(rng, part, area, dos)
    r = rng.random()
    if r < 0.38:
        return _drug_request(rng, part, area, dos)
    if r < 0.62:
        return _counted_request(rng, part, area)
    return _fixed_request(rng, part, area)


def _item_kind(rng: random.Random, req: _Req) -> str:
    """The decision-line form (see ItemSpec): only countable requests are cut down (`remaining`)."""
    if req.counted and rng.random() < 0.35:
        return "remaining" if rng.random() < 0.65 else "eligible"
    if rng.random() < 0.04:
        return "eligible"
    return "plain"


def _partial(rng: random.Random, req: _Req, kind: str) -> tuple[str, str, str]:
    """(original X, authorized Y, remaining Z) for a countable request."""
    tmpl, n, _ = req.counted
    n = max(n, 4)
    auth = rng.randint(1, n - 1)
    original = _cap(tmpl.format(n=n))
    if kind == "eligible":
        return original, _lower_first(tmpl.format(n=auth)), original
    return original, _cap(tmpl.format(n=auth)), tmpl.format(n=n - auth)


def _item_requests(rng: random.Random, req: _Req, kind: str) -> tuple[str, str | None, str | None]:
    """(request, original request, authorized portion) for the decision-line form `kind`."""
    if kind == "plain":
        return req.label, None, None
    if kind == "remaining":
        original, authorized, request = _partial(rng, req, kind)
        return request, original, authorized
    if req.counted:
        original, authorized, _ = _partial(rng, req, kind)
    else:
        original = _cap(req.label)
        authorized = rng.choice(REQUESTS["authorized_portions"]).format(request=_lower_first(req.label))
    # Real letters often restate X in lower case: "purchase of ..." after "Purchase of ...".
    request = _lower_first(original) if rng.random() < 0.3 else original
    return request, original, authorized


def _guidelines(rng: random.Random, req: _Req, style: str) -> tuple[str, str]:
    """(Claims Administrator guideline, MAXIMUS guideline) citing the request's topic."""
    topic = TOPICS[req.topic]
    sections = topic.sections
    fields = {
        "mtus": topic.mtus or MTUS_CHAPTER[req.area],
        "odg": topic.odg or ODG_CHAPTER[req.area],
        "sections": ", ".join(rng.sample(sections, rng.randint(1, len(sections)))) if sections else None,
    }
    odg_topic = rng.choice(topic.odg_topics or GUIDELINES["odg_topic_fallbacks"])
    fields["non_mtus"] = GUIDELINES["non_mtus"].format(odg=fields["odg"], odg_topic=odg_topic)
    if style == "2013":
        return _guidelines_2013(rng, fields)
    return _guidelines_2016(rng, fields)


def _guidelines_2013(rng: random.Random, fields: dict) -> tuple[str, str]:
    templates = GUIDELINES["2013"]
    ca = rng.choice(templates["claims_administrator"]).format(**fields)
    if fields["sections"] and rng.random() < 0.6:
        first_page = rng.randint(20, 120)
        last_page = rng.randint(121, 130)
        mx = templates["reviewer_mtus"].format(**fields, first_page=first_page, last_page=last_page)
    else:
        mx = templates["reviewer_non_mtus"].format(**fields)
    return ca, mx


def _guidelines_2016(rng: random.Random, fields: dict) -> tuple[str, str]:
    templates = GUIDELINES["2016"]
    if fields["sections"] and rng.random() < 0.7:
        ca = rng.choice(templates["claims_administrator_mtus"]).format(**fields)
        return ca, templates["reviewer_mtus"].format(**fields)
    return (
        templates["claims_administrator_non_mtus"].format(**fields),
        templates["reviewer_non_mtus"].format(**fields),
    )


def _case_sentences(rng: random.Random, subj: str, ctx: _LetterContext, req: _Req) -> list[str]:
    """The pool of case-specific sentences a rationale samples its body from."""
    part = req.counted[2] if req.counted else rng.choice(BODY_PARTS)[0]
    pain = rng.randint(5, 9)
    when = _fmt_date_prose(rng, ctx.ur)
    diagnosis = rng.choice(DIAGNOSES)
    sessions = rng.randint(6, 24)
    pain_with = pain - rng.randint(1, 4)
    fields = {
        "subj": subj,
        "Subj": _cap(subj),
        "He": _cap(ctx.pronouns["he"]),
        "what": TOPICS[req.topic].thing,
        "part": part,
        "date": when,
        "diagnosis": diagnosis,
        "sessions": sessions,
        "pain": pain,
        "pain_with": pain_with,
    }
    return [s.format(**fields) for s in RATIONALE["case_sentences"]]


def _rationale_sentences(
    rng: random.Random, req: _Req, decision: str, subj: str, ctx: _LetterContext, long: bool
) -> list[str]:
    """Guideline sentences, then case sentences, then the conclusion that matches `decision`."""
    guide = TOPICS[req.topic].guide
    first = rng.sample(guide, rng.randint(1, len(guide)))
    pool = _case_sentences(rng, subj, ctx, req)
    n = rng.randint(8, 18) if long else rng.choice([1, 2, 3, 3, 4, 5, 6, 8])
    body = rng.sample(pool, min(n, len(pool)))
    fields = {"request": _lower_first(req.label), "subj": subj}
    if decision == "Upheld":
        end = rng.choice(RATIONALE["upheld_endings"]).format(**fields)
    else:
        body.insert(0, rng.choice(RATIONALE["overturned_openings"]).format(**fields))
        end = rng.choice(RATIONALE["overturned_endings"]).format(**fields)
    if ctx.style == "2013":
        first = [s.replace("CA MTUS", "California MTUS") for s in first]
    return [*first, *body, end]


def _split_paragraphs(rng: random.Random, sentences: list[str], long: bool) -> list[str]:
    """One to four paragraphs; long rationales get more breaks."""
    k = 1 if len(sentences) < 5 else rng.randint(1, 2 if not long else 4)
    cuts = sorted(rng.sample(range(1, len(sentences)), k - 1)) if k > 1 else []
    paras, prev = [], 0
    for c in [*cuts, len(sentences)]:
        paras.append(" ".join(sentences[prev:c]))
        prev = c
    return paras


def _random_item(
    rng: random.Random, seq: int, req: _Req, ctx: _LetterContext, *, want_partial: bool
) -> tuple[ItemSpec, tuple[str, str] | None]:
    """One item and, if `want_partial` and it is a partial authorization, the (original, authorized) pair
    the case summary may repeat."""
    decision = "Overturned" if rng.random() < ctx.overturn_rate else "Upheld"
    kind = _item_kind(rng, req)
    request, original, authorized = _item_requests(rng, req, kind)
    partial = None
    if kind != "plain" and want_partial and rng.random() < 0.5:
        partial = (original, authorized)
    ca, mx = _guidelines(rng, req, ctx.style)
    subj = rng.choice(ctx.subjects)
    long = ctx.verbose or rng.random() < 0.12
    paras = _split_paragraphs(rng, _rationale_sentences(rng, req, decision, subj, ctx, long), long)
    item = Item(
        seq=seq,
        request=request,
        decision=decision,
        original_request=original,
        claims_administrator_guideline=ca,
        maximus_guideline=mx,
        decision_rationale=norm(" ".join(paras)),
    )
    uses_is = kind == "plain" or rng.random() < 0.9
    spec = ItemSpec(item, kind=kind, authorized=authorized, uses_is=uses_is, rationale_paragraphs=paras)
    return spec, partial


def _random_items(
    rng: random.Random, reqs: list[_Req], ctx: _LetterContext
) -> tuple[list[ItemSpec], tuple[str, str] | None]:
    """The letter's items, and the first partial authorization chosen for the summary (if any)."""
    items: list[ItemSpec] = []
    partial = None
    for seq, req in enumerate(reqs, 1):
        item, item_partial = _random_item(rng, seq, req, ctx, want_partial=partial is None)
        items.append(item)
        partial = partial or item_partial
    return items, partial


# --------------------------------------------------------------------------------------------------
# Letter level: header fields, reviewer, patient, case summary, layout.


def random_dates(
    rng: random.Random, style: str, injury: date | None = None, decided_in: tuple[date, date] | None = None
) -> tuple[date, date, date, date, date, str]:
    """Injury <= UR denial <= application received <= assigned <= decision, and the priority.

    :param rng: the random source.
    :param style: the letter style (its years).
    :param injury: the date of injury, if fixed.
    :param decided_in: (first, last): all five dates shifted together so that the decision falls in
        these days, as a night's letters do (decided in the weeks before they are published).
    :return: (injury, UR denial, received, assigned, decision, priority).
    """
    if injury is not None:
        received = injury + timedelta(days=rng.randint(30, 500))
    elif style == "notice2013":  # the notices were issued from July 2013 for a few months
        received = date(2013, 6, 1) + timedelta(days=rng.randrange(120))
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
    if decided_in is not None:
        first, last = decided_in
        shift = first + timedelta(days=rng.randint(0, (last - first).days)) - decision
        injury, ur, received, assigned, decision = (
            d + shift for d in (injury, ur, received, assigned, decision)
        )
    return injury, ur, received, assigned, decision, priority


def random_case_number(rng: random.Random, received: date) -> str:
    """A case number of the year the application was received.

    :param rng: the random source.
    :param received: the application's date.
    :return: e.g. CM16-0213037.
    """
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


def _item_count(rng: random.Random, n_items: int | None) -> int:
    n = n_items if n_items is not None else _random_n_items(rng)
    if not 1 <= n <= 99:
        raise ValueError("n_items must be between 1 and 99")
    return n


def _random_patient(rng: random.Random, style: str) -> tuple[str, int | None]:
    """(sex, age)."""
    sex = rng.choice(["male", "female"])
    age: int | None = rng.randint(19, 78)
    if style == "2016" and rng.random() < 0.02:
        age = None  # as in a real letter: "The injured worker is a female who ..."
    return sex, age


def _random_reviewer(rng: random.Random, style: str) -> tuple[str, list[str], str]:
    """(specialty, licensure states, the HOW THE IMR ... paragraph that goes with them)."""
    if style == "2016":
        specialty = rng.choice(SPECIALTIES_2016)
        states = rng.sample(STATES + ["California"] * 8, rng.choice([1, 1, 1, 2, 2, 3]))
        return specialty, list(dict.fromkeys(states)), BOILERPLATE_2016
    specialty = rng.choice(SPECIALTIES_2013)
    states = ["California"] if rng.random() < 0.85 else ["California", rng.choice(STATES)]
    return specialty, states, BOILERPLATE_2013.format(specialty=specialty, states=" and ".join(states))


def _summary_opening(
    rng: random.Random,
    style: str,
    patient: tuple[str, int | None],
    injury: date,
    injury_prose: str,
    part: str,
) -> tuple[str, str]:
    """The summary's first sentence and the subject (`the injured worker`, ...) the rest of it uses."""
    sex, age = patient
    if style == "2013":
        return SUMMARY["opening_2013"].format(
            age=age, sex=sex, injury=injury.strftime("%m/%d/%Y")
        ), "the patient"
    if age is None:
        return SUMMARY["opening_no_age"].format(sex=sex, injury=injury_prose), "the injured worker"
    template, subj = rng.choice(SUMMARY["openings_2016"])
    return template.format(age=age, sex=sex, injury=injury_prose, part=part), subj


def _summary_sentences(
    rng: random.Random,
    ctx: _LetterContext,
    opening: tuple[str, str],
    injury: date,
    part: str,
    reqs: list[_Req],
) -> list[str]:
    """The opening, the mechanism of injury, and a random selection of the clinical sentences."""
    first, subj = opening
    dx = rng.sample(DIAGNOSES, rng.randint(2, 5))
    tx = rng.sample(TREATMENTS, rng.randint(2, 5))
    visit = injury + timedelta(days=max(1, (ctx.ur - injury).days // 2))
    symptom = rng.choice(SUMMARY["symptoms"])
    mechanism = rng.choice(MECHANISMS).format(**ctx.pronouns, part=part)
    fields = {
        "Subj": _cap(subj),
        "He": _cap(ctx.pronouns["he"]),
        "part": part,
        "visit": _fmt_date_prose(rng, visit),
        "pain": rng.randint(4, 9),
        "diagnoses": _and_list(dx),
        "treatments": _and_list(tx),
        "symptom": symptom,
        "request": _lower_first(reqs[0].label),
    }
    keys = ("diagnoses", "evaluation", "findings", "treatments", "symptom", "plan")
    sents = [first, mechanism, *(SUMMARY[k].format(**fields) for k in keys)]
    n = rng.randint(3, len(sents))
    return sents[:2] + rng.sample(sents[2:], n - 2)


def _summary(
    rng: random.Random,
    ctx: _LetterContext,
    patient: tuple[str, int | None],
    injury: date,
    reqs: list[_Req],
    partial: tuple[str, str] | None,
) -> list[str]:
    """The clinical case summary's paragraphs (one or two)."""
    part = rng.choice(BODY_PARTS)[0]
    opening = _summary_opening(rng, ctx.style, patient, injury, _fmt_date_prose(rng, injury), part)
    sents = _summary_sentences(rng, ctx, opening, injury, part, reqs)
    if partial:
        # Real summaries repeat the partial-authorization wording; a parser must not take it for an item.
        sents.append(SUMMARY["partial"].format(original=partial[0], authorized=partial[1]))
    requests = _and_list([_lower_first(r.label) for r in reqs[:3]])
    sents.append(SUMMARY["utilization_review"].format(date=_fmt_date_prose(rng, ctx.ur), requests=requests))
    if len(sents) > 6 and rng.random() < 0.4:
        k = rng.randint(3, len(sents) - 2)
        return [" ".join(sents[:k]), " ".join(sents[k:])]
    return [" ".join(sents)]


def _random_layout(rng: random.Random, case_number: str) -> dict:
    """The LetterSpec fields that change how the letter looks but not what it says."""
    running = None
    if rng.random() < 0.5:
        running = rng.choice(RUNNING_HEADERS).format(case_number=case_number)
    return {
        "running_header": running,
        "licensure_sep": rng.choice([",", ", "]),
        "justified": rng.random() < 0.85,
        "footer_align": rng.choice(["center", "center", "right"]),
        # Extra space before the headings and the first item moves the page breaks around.
        "gaps": tuple(rng.choice([0.0, 0.0, 6.0, 14.0, 28.0]) for _ in range(4)),
    }


def dated_letter(case_number: str, dates: tuple[date, date, date, date, date, str], **fields) -> Letter:
    """A letter with the dates (and, unless `fields` say otherwise, the priority) `random_dates` drew.

    :param case_number: the letter's case number
    :param dates: what `random_dates` returned
    :param fields: the letter's other fields
    :return: the letter
    """
    injury, ur, received, assigned, decided, priority = dates
    return Letter(
        case_number=case_number,
        date_assigned=assigned,
        date_of_injury=injury,
        decision_date=decided,
        ur_denial_date=ur,
        application_received=received,
        **{"priority": priority, **fields},
    )


def random_spec(
    rng: random.Random,
    *,
    style: str = "2016",
    n_items: int | None = None,
    case_number: str | None = None,
    decided_in: tuple[date, date] | None = None,
) -> LetterSpec:
    """A random letter and how to render it. Everything comes from `rng`: equal seeds give equal specs.
    `decided_in` (first, last) puts the decision in those days (random_dates); not for notice2013,
    whose letters belong to 2013."""
    if style not in LETTER_FORMAT:
        raise ValueError(f"unknown style {style!r}")
    if style == "notice2013":
        return random_notice_spec(rng, n_items=n_items, case_number=case_number)
    dates = random_dates(rng, style, decided_in=decided_in)
    injury, ur, received, *_ = dates
    case_number = case_number or random_case_number(rng, received)
    sex, age = _random_patient(rng, style)
    specialty, states, boilerplate = _random_reviewer(rng, style)
    n = _item_count(rng, n_items)
    ctx = _LetterContext(
        style=style,
        pronouns=_pronouns(sex),
        ur=ur,
        subjects=SUBJECTS_2013 if style == "2013" else SUBJECTS_2016,
        # Some letters get long rationales throughout so that they run to several pages.
        verbose=rng.random() < 0.2,
        # Most letters uphold everything, as in the real index; some overturn all, some are mixed.
        overturn_rate=rng.choice([0.0, 0.0, 0.0, 0.1, 0.3, 0.6, 1.0]),
    )
    reqs = [_random_request(rng, ur, long=rng.random() < 0.07) for _ in range(n)]
    items, partial = _random_items(rng, reqs, ctx)
    summary = _summary(rng, ctx, (sex, age), injury, reqs, partial)
    letter = dated_letter(
        case_number,
        dates,
        reviewer_specialty=specialty,
        reviewer_licensure_states=states,
        patient_age=age,
        patient_sex=sex,
        items=[i.item for i in items],
        clinical_case_summary=norm(" ".join(summary)),
        letter_format=LETTER_FORMAT[style],
    )
    enrich_letter(letter)  # the truth carries the v2 fields, as `imr parse` prints them
    return LetterSpec(
        letter=letter,
        style=style,
        boilerplate=boilerplate,
        summary_paragraphs=summary,
        items=items,
        **_random_layout(rng, case_number),
    )


# --------------------------------------------------------------------------------------------------
# The first 2013 format: "Notice of Independent Medical Review Determination".


def _slash_date(d: date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def _notice_request(rng: random.Random, ur: date) -> tuple[_Req, str]:
    """A request and the text the decision sentence names it by (sometimes with its article, which
    the record keeps as written)."""
    req = _random_request(rng, ur)
    label = req.label
    if rng.random() < 0.25:
        article = NOTICE["articles"][1] if label[:1].lower() in "aeiou" else NOTICE["articles"][0]
        label = f"{article} {_lower_first(label)}"
    return req, label


def _notice_items(
    rng: random.Random, reqs: list[tuple[_Req, str]], ctx: _LetterContext, blocks: str
) -> list[ItemSpec]:
    """The items: request and decision always; the three block fields only when the blocks are
    labelled. Unlabelled (`none`) blocks still show a rationale, in `rationale_paragraphs`, but the
    record holds null: the letter does not say which text is which field."""
    specs = []
    for seq, (req, label) in enumerate(reqs, 1):
        decision = "Overturned" if rng.random() < ctx.overturn_rate else "Upheld"
        ca, mx = _guidelines(rng, req, "2013")
        subj = rng.choice(ctx.subjects)
        long = rng.random() < 0.12
        paras = _split_paragraphs(rng, _rationale_sentences(rng, req, decision, subj, ctx, long), long)
        item = Item(seq=seq, request=label, decision=decision)
        if blocks != "none":
            item.claims_administrator_guideline, item.maximus_guideline = ca, mx
            item.decision_rationale = norm(" ".join(paras))
        specs.append(ItemSpec(item, rationale_paragraphs=paras))
    return specs


def _notice_header(rng: random.Random, case_number: str, injury: date, priority: str) -> tuple[list, bool]:
    """(header rows, whether they state the priority). The date of injury is in the header of some
    notices only; the case summary states it in all of them."""
    rows = [(rng.choice(NOTICE["case_labels"]), case_number)]
    rows.append((NOTICE["claim_label"], f"{rng.randrange(10**9):09d}"))
    if rng.random() < 0.5:
        rows.append(("Date of Injury:", _slash_date(injury)))
    with_priority = rng.random() < 0.6
    if with_priority:
        rows.append(("Priority:", priority))
    return rows, with_priority


def random_notice_spec(
    rng: random.Random, *, n_items: int | None = None, case_number: str | None = None
) -> LetterSpec:
    """A random 2013 notice and how to render it (style `notice2013`; `random_spec` with that style
    comes here). Everything comes from `rng`.

    :param rng: the random source.
    :param n_items: the number of disputed items (default: 1-6, mostly few).
    :param case_number: the case number (default: drawn).
    :return: the spec; its `letter` is the ground truth.
    """
    dates = random_dates(rng, "notice2013")
    injury, ur, received, assigned, _, priority = dates
    case_number = case_number or random_case_number(rng, received)
    sex, age = _random_patient(rng, "2013")
    specialty = rng.choice(SPECIALTIES_2013)
    n = _item_count(rng, n_items if n_items is not None else rng.choice([1, 1, 2, 3, 4, 6]))
    ctx = _LetterContext(
        style="2013",
        pronouns=_pronouns(sex),
        ur=ur,
        subjects=SUBJECTS_2013,
        verbose=False,
        overturn_rate=rng.choice([0.0, 0.0, 0.3, 0.6, 1.0]),
    )
    reqs = [_notice_request(rng, ur) for _ in range(n)]
    blocks = rng.choice(["seed", "long", "none"])
    specs = _notice_items(rng, reqs, ctx, blocks)
    items = [sp.item for sp in specs]
    rows, with_priority = _notice_header(rng, case_number, injury, priority)
    opening = NOTICE["summary_opening"].format(age=age, sex=sex, injury=_slash_date(injury))
    summary = " ".join(
        _summary_sentences(rng, ctx, (opening, "the patient"), injury, "back", [r for r, _ in reqs])
    )
    verdicts = tuple(
        [
            rng.choice(NOTICE["verdicts_upheld" if i.decision == "Upheld" else "verdicts_overturned"])
            for i in items
        ]
        for _ in range(2)
    )
    notice = NoticeSpec(
        header_rows=rows,
        sentence_lead=rng.choice(NOTICE["sentence_leads"]),
        verdicts=verdicts,
        dates_paragraph=rng.choice(NOTICE["dates_paragraphs"]).format(
            received=_slash_date(received), ur=_slash_date(ur), assigned=_slash_date(assigned)
        ),
        list_intro=rng.choice(NOTICE["list_intros"]),
        disclaimer=rng.choice(NOTICE["disclaimers"]).format(ur=_slash_date(ur)),
        summary=norm(summary),
        blocks=blocks,
        restated=rng.choice(NOTICE["restated"]),
    )
    letter = dated_letter(
        case_number,
        dates,
        priority=priority if with_priority else None,
        reviewer_specialty=specialty,
        reviewer_licensure_states=["California"],
        patient_age=age,
        patient_sex=sex,
        items=items,
        clinical_case_summary=norm(summary),
        letter_format="notice_2013",
    )
    enrich_letter(letter)
    return LetterSpec(
        letter=letter,
        style="notice2013",
        boilerplate=BOILERPLATE_2013.format(specialty=specialty, states="California"),
        items=specs,
        justified=rng.random() < 0.85,
        footer_align=rng.choice(["center", "right"]),
        notice=notice,
    )
