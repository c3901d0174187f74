"""Files the loader must reject, one per rejection class (`BAD_FILE_CODES`): a web page, an encrypted
letter, a scan without text, an invoice, letters missing the case number or the decision lines, a letter
that is slow for pdfminer, one over the page limit, and a truncated PDF."""

from __future__ import annotations

import io
import random

from reportlab.lib.pagesizes import letter as LETTER_PAGE
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen.canvas import Canvas

from .content import random_spec
from .phrases import HEADING_HOW, NOTICE
from .render import MARGIN, PAGE_H, PAGE_W, render_pdf, render_spec

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
    "notice_quoted": "not_an_imr_letter",
}


def not_pdf() -> bytes:
    """A web server's 404 page saved under a .pdf name."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1>\n"
        b"<p>The requested document was not found on this server.</p>\n</body></html>\n"
    )


def no_text_layer(rng: random.Random) -> bytes:
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


# The invoice's services: (CPT code, description, units, unit price).
_INVOICE_LINES = [
    ("99213", "Office visit, established patient", 1, 145.0),
    ("97110", "Therapeutic exercises", 4, 58.5),
    ("97140", "Manual therapy techniques", 2, 52.0),
    ("72148", "MRI lumbar spine without contrast", 1, 890.0),
    ("J1030", "Methylprednisolone acetate 40 mg", 1, 24.75),
]


def _invoice_heading(c: Canvas, rng: random.Random) -> float:
    """The practice, the title and the billing details; returns the y below them."""
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
    return y - 15


def _invoice_table(c: Canvas, y: float) -> None:
    """The services with their amounts and the total."""
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
    for cpt, desc, units, price in _INVOICE_LINES:
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


def not_an_imr_letter(rng: random.Random) -> bytes:
    """A medical bill: real text, dates and money, but none of an IMR letter's structure."""
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=LETTER_PAGE, invariant=1)
    _invoice_table(c, _invoice_heading(c, rng))
    c.setFont("Helvetica", 9)
    c.drawString(
        MARGIN, 100, "Payment is due within 30 days. Please include the invoice number with your payment."
    )
    c.drawCentredString(PAGE_W / 2, 40, "Page 1 of 1")
    c.showPage()
    c.save()
    return buf.getvalue()


def notice_quoted(rng: random.Random) -> bytes:
    """A petition appealing a 2013 notice: it names the notice in its subject line, carries an IMR case
    number and quotes the decision sentence word for word, but has neither the notice's title nor its
    decision heading as lines of their own (imr.notice2013.is_notice), nor any later layout's headings."""
    spec = random_spec(rng, style="notice2013", n_items=1)
    letter, item = spec.letter, spec.letter.items[0]
    dated = f"{letter.decision_date.month}/{letter.decision_date.day}/{letter.decision_date.year}"
    verdict = NOTICE["verdicts_upheld"][0] if item.decision == "Upheld" else NOTICE["verdicts_overturned"][0]
    quote = f'"1) {NOTICE["sentence_leads"][0]} {item.request} {verdict}"'
    lines = [
        ("Helvetica-Bold", 13, "WORKERS' COMPENSATION APPEALS BOARD, STATE OF CALIFORNIA"),
        ("Helvetica-Bold", 12, "PETITION APPEALING ADMINISTRATIVE DETERMINATION"),
        ("Helvetica", 11, f"IMR Case Number: {letter.case_number}"),
        ("Helvetica", 11, f"RE: {NOTICE['title']} dated {dated}"),
        ("Times-Roman", 12, "Applicant appeals the determination, which reads in relevant part:"),
    ]
    closing = (
        "Applicant contends that the determination was made without the medical records submitted by the "
        "treating physician and asks the Board to set it aside."
    )
    words = f"{quote} {closing}".split()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=LETTER_PAGE, invariant=1)
    y = 720.0
    for font, size, text in lines:
        c.setFont(font, size)
        c.drawString(MARGIN, y, text)
        y -= 22
    c.setFont("Times-Roman", 12)
    line = ""
    for w in words:
        if len(line) + len(w) > 85:
            c.drawString(MARGIN, y, line)
            y -= 13.8
            line = w
        else:
            line = f"{line} {w}".strip()
    c.drawString(MARGIN, y, line)
    c.drawCentredString(PAGE_W / 2, 40, "Page 1 of 1")
    c.showPage()
    c.save()
    return buf.getvalue()


def timeout(n_ops: int = 20000, n_calls: int = 75) -> bytes:
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


def too_large(rng: random.Random, pages: int = 150) -> bytes:
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
    encrypted = render_pdf(
        random_spec(rng, n_items=2), encrypt=StandardEncryption("imr-secret", "imr-owner", strength=128)
    )
    header = random_spec(rng, n_items=2)
    header.omit_case_number = True
    items = random_spec(rng, n_items=3)
    items.omit_decision_lines = True
    whole = render_spec(random_spec(rng, n_items=4))
    return {
        "not_pdf": not_pdf(),
        "encrypted": encrypted,
        "no_text_layer": no_text_layer(rng),
        "not_an_imr_letter": not_an_imr_letter(rng),
        "header_missing_field": render_spec(header),
        "item_structure": render_spec(items),
        "timeout": timeout(),
        "too_large": too_large(rng),
        "truncated": whole[: len(whole) // 2],
        "notice_quoted": notice_quoted(rng),
    }
