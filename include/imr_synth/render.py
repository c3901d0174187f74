"""Drawing a `LetterSpec` as a PDF with reportlab, in the layout of the real DWC letters: a bordered header
table in Helvetica 11, Times 12 sections with bold centred headings, `Page N of M` footers and an optional
running header. The only module besides `badfiles` that needs reportlab."""

from __future__ import annotations

import contextlib
import functools
import io
from datetime import date
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

from imr.records import Letter

from .phrases import (
    CREDENTIALS_INTRO,
    DECISION_ELIGIBLE,
    DECISION_REMAINING,
    HEADING_HOW,
    HEADING_ISSUES,
    HEADING_SUMMARY,
    ISSUES_INTRO,
    LABEL_CLAIMS_ADMINISTRATOR,
    LABEL_MAXIMUS,
    LABEL_RATIONALE,
    NOTICE,
    SUMMARY_INTRO,
)
from .spec import ItemSpec, LetterSpec, spec_from_letter

PAGE_W, PAGE_H = LETTER_PAGE
MARGIN = 72.0


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
    forms = {"remaining": DECISION_REMAINING, "eligible": DECISION_ELIGIBLE}
    text = it.request
    if s.kind in forms:
        text = forms[s.kind].format(original=it.original_request, authorized=s.authorized, request=it.request)
    return f"<b>{escape(text)}{colon}</b> {it.decision}"


def _how_section(spec: LetterSpec, st: dict[str, ParagraphStyle]) -> list:
    """HOW THE IMR FINAL DETERMINATION WAS MADE: the boilerplate and, in 2016 letters, the credentials."""
    body, tight, heading = st["body"], st["tight"], st["heading"]
    L = spec.letter
    out: list = [_para(HEADING_HOW, heading), _para(escape(spec.boilerplate), body)]
    if spec.style != "2016":
        return out
    out.append(_para(CREDENTIALS_INTRO, tight))
    if L.reviewer_licensure_states:
        states = escape(spec.licensure_sep.join(L.reviewer_licensure_states))
        out.append(_para("State(s) of Licensure: " + states, tight))
    if L.reviewer_specialty:
        out.append(_para("Certification(s)/Specialty: " + escape(L.reviewer_specialty), tight))
    out.append(Spacer(1, 13.8))
    return out


def _item_flowables(spec: LetterSpec, s: ItemSpec, body: ParagraphStyle) -> list:
    """One item: the decision line, the two guideline paragraphs and the rationale, each tagged for the
    layout log."""
    it = s.item
    out: list = []
    if not spec.omit_decision_lines:
        out.append(_para(_decision_markup(s), body, ("decision", it.seq)))
    if it.claims_administrator_guideline is not None:
        markup = f"<b>{LABEL_CLAIMS_ADMINISTRATOR}</b> " + escape(it.claims_administrator_guideline)
        out.append(_para(markup, body, ("ca", it.seq)))
    if it.maximus_guideline is not None:
        markup = f"<b>{LABEL_MAXIMUS}</b> " + escape(it.maximus_guideline)
        out.append(_para(markup, body, ("maximus", it.seq)))
    paras = s.rationale_paragraphs or ([it.decision_rationale] if it.decision_rationale else [])
    for k, p in enumerate(paras):
        markup = (f"<b>{LABEL_RATIONALE}</b> " if k == 0 else "") + escape(p)
        out.append(_para(markup, body, ("rationale", it.seq, k)))
    return out


def _notice_header(spec: LetterSpec, st: dict[str, ParagraphStyle]) -> list:
    """The notice's title block: organization, title, `Dated:`, and a label/value table."""
    heading = st["heading"]
    dated = spec.letter.decision_date
    out: list = [
        _para(escape(NOTICE["organization"]), heading),
        _para(escape(NOTICE["title"]), heading),
        _para(f"Dated: {dated.month}/{dated.day}/{dated.year}", st["tight"]),
        Spacer(1, 10),
    ]
    rows = [[label + " ", value] for label, value in spec.notice.header_rows]
    table = Table(rows, colWidths=[150, 200], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 11, 13),
                ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 11, 13),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return [*out, table, Spacer(1, 14)]


def _notice_sentences(spec: LetterSpec, copy: int, body: ParagraphStyle) -> list:
    """One copy of the numbered decision list."""
    n = spec.notice
    return [
        _para(escape(f"{s.item.seq}) {n.sentence_lead} {s.item.request} {n.verdicts[copy][k]}"), body)
        for k, s in enumerate(spec.items)
    ]


def _notice_blocks(spec: LetterSpec, body: ParagraphStyle) -> list:
    """Per item: the request restated, then the labelled paragraphs (`seed`/`long` labels), or
    unlabelled prose (`none`)."""
    n = spec.notice
    out: list = []
    for s in spec.items:
        it = s.item
        if n.blocks == "none":
            out.append(_para(escape(NOTICE["unlabelled_lead"].format(n=it.seq)), body))
            out += [_para(escape(p), body) for p in s.rationale_paragraphs]
            continue
        ca, mx, rat = NOTICE["block_labels"][n.blocks]
        out.append(_para(f"<b>{escape(n.restated.format(n=it.seq, request=it.request))}</b>", body))
        out.append(_para(f"<b>{escape(ca)}</b> " + escape(it.claims_administrator_guideline), body))
        out.append(_para(f"<b>{escape(mx)}</b> " + escape(it.maximus_guideline), body))
        for k, p in enumerate(s.rationale_paragraphs):
            out.append(_para((f"<b>{escape(rat)}</b> " if k == 0 else "") + escape(p), body))
    return out


def _notice_flowables(spec: LetterSpec) -> list:
    st = _STYLES[spec.justified]
    body, heading, tight = st["body"], st["heading"], st["tight"]
    n = spec.notice
    out = [Spacer(1, 6), *_notice_header(spec, st), *_notice_sentences(spec, 0, body)]
    out += [_para(escape(NOTICE["heading_decision"]), heading), _para(escape(n.dates_paragraph), body)]
    out += [_para(escape(n.list_intro), body), *_notice_sentences(spec, 1, body)]
    out += [
        _para(f"<b>{escape(NOTICE['heading_qualifications'])}</b>", tight),
        _para(escape(spec.boilerplate), body),
    ]
    out += [_para(f"<b>{escape(NOTICE['heading_summary'])}</b>", tight), _para(escape(n.disclaimer), body)]
    out.append(_para(escape(f'"{n.summary}"'), body))
    return out + _notice_blocks(spec, body)


def _flowables(spec: LetterSpec) -> list:
    if spec.notice is not None:
        return _notice_flowables(spec)
    st = _STYLES[spec.justified]
    body, heading = st["body"], st["heading"]
    out: list = [
        Spacer(1, 6),
        _header_table(spec.letter, spec.omit_case_number),
        Spacer(1, 14 + spec.gaps[0]),
    ]
    out += _how_section(spec, st)
    out.append(Spacer(1, spec.gaps[1]))
    out += [_para(HEADING_SUMMARY, heading), _para(SUMMARY_INTRO, body)]
    out += [_para(escape(p), body) for p in spec.summary_paragraphs]
    out.append(Spacer(1, spec.gaps[2]))
    out += [_para(HEADING_ISSUES, heading), _para(ISSUES_INTRO, body), Spacer(1, spec.gaps[3])]
    for s in spec.items:
        out += _item_flowables(spec, s, body)
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


def render_pdf(
    spec: LetterSpec, *, encrypt: StandardEncryption | None = None, log: list | None = None
) -> bytes:
    """The letter's PDF. `encrypt` as reportlab takes it; `log`, if given, receives `(tag, page)` for every
    tagged paragraph (or part of one) as it is placed: decision lines, guidelines, rationale paragraphs."""
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
    return render_pdf(spec, encrypt=_empty_password() if encrypt_empty_password else None)


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
