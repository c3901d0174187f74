"""PDF -> positioned text lines, on pdfminer.six's content-stream interpreter.

pdfminer's default layout analysis (LAParams) is skipped on purpose: it splits the header table's
labels and values into separate blocks, breaks justified lines with wide word gaps into several
boxes, and costs about a fifth of the time (measured: 21% of pdfminer's `extract_text` on the 72
corpus letters, timing `LTPage.analyze`). The device below records each glyph's position as the
interpreter draws it; lines are rebuilt from baselines and words from horizontal gaps.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass

from pdfminer.pdfdevice import PDFTextDevice
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdfexceptions import PDFException
from pdfminer.pdffont import PDFUnicodeNotDefined
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser, PDFSyntaxError
from pdfminer.pdftypes import resolve1
from pdfminer.psexceptions import PSException

from ..errors import LetterError
from ..facts import CASE_NUMBER_IN_TEXT

# A gap wider than this many em between glyphs on one baseline starts a new fragment (table cell,
# column); a narrower gap above WORD_GAP_EM is a word space.
FRAGMENT_GAP_EM = 1.2
WORD_GAP_EM = 0.12
# Glyphs whose baselines differ by less than this many em are on one line (bold labels and regular
# values in the header table sit about 1 pt apart).
SAME_LINE_EM = 0.35
# Running headers/footers live in the top and bottom margins.
MARGIN_SHARE = 0.09

_PAGE_NUMBER = re.compile(
    r"^(page\s*)?\d{1,4}\s*(of|/)\s*\d{1,4}$|^page\s*\d{1,4}$|^-?\s*\d{1,4}\s*-?$", re.I
)


# Later pages of a letter often carry the case number in a running header ("Case Number: CM17-...").
_RUNNING_CASE = CASE_NUMBER_IN_TEXT


@dataclass(frozen=True)
class Fragment:
    """A run of glyphs on one baseline: its horizontal extent, text and weight."""

    x0: float
    x1: float
    text: str
    bold: bool


@dataclass(frozen=True)
class Line:
    """A rebuilt text line: its page, vertical position, font size and fragments."""

    page: int
    y: float  # distance from the top of the page, so lines sort top to bottom
    size: float
    fragments: tuple[Fragment, ...]

    @property
    def text(self) -> str:
        """The line's text, fragments joined by a space."""
        return " ".join(f.text for f in self.fragments)

    @property
    def x0(self) -> float:
        """The line's left edge."""
        return self.fragments[0].x0

    @property
    def bold(self) -> bool:
        """Whether every fragment is bold."""
        return all(f.bold for f in self.fragments)


class _GlyphCollector(PDFTextDevice):
    """Records (baseline, x0, x1, size, text, bold) per glyph; creates no layout objects."""

    def __init__(self, rsrcmgr: PDFResourceManager) -> None:
        super().__init__(rsrcmgr)
        self.glyphs: list[tuple[float, float, float, float, str, bool]] = []
        self._bold_cache: dict[int, bool] = {}

    def _is_bold(self, font) -> bool:
        key = id(font)
        hit = self._bold_cache.get(key)
        if hit is None:
            name = (getattr(font, "fontname", "") or "").lower()
            hit = "bold" in name or "black" in name or "heavy" in name
            self._bold_cache[key] = hit
        return hit

    def render_string(self, textstate, seq, ncs, graphicstate) -> None:  # noqa: ARG002 (pdfminer API)
        a, b, c, d, e, f = self.ctm
        ta, tb, tc, td, te, tf = textstate.matrix
        # Combined text->device matrix (mult_matrix(textstate.matrix, ctm)) inlined for speed.
        ma, mb = ta * a + tb * c, ta * b + tb * d
        mc, md = tc * a + td * c, tc * b + td * d
        me, mf = te * a + tf * c + e, te * b + tf * d + f
        font = textstate.font
        fontsize = textstate.fontsize
        scaling = textstate.scaling * 0.01
        charspace = textstate.charspace * scaling
        wordspace = 0 if font.is_multibyte() else textstate.wordspace * scaling
        dxscale = 0.001 * fontsize * scaling
        x, y = textstate.linematrix
        y += textstate.rise
        size = abs(fontsize * md) or abs(fontsize * mb) or fontsize
        bold = self._is_bold(font)
        glyphs = self.glyphs
        vertical = font.is_vertical()
        need_charspace = False
        for obj in seq:
            if isinstance(obj, (int, float)):
                x -= obj * dxscale
                need_charspace = True
                continue
            if not isinstance(obj, bytes):
                continue
            for cid in font.decode(obj):
                if need_charspace:
                    x += charspace
                try:
                    text = font.to_unichr(cid)
                except PDFUnicodeNotDefined:
                    text = ""
                adv = font.char_width(cid) * fontsize * scaling
                if not vertical:
                    dx0 = x * ma + y * mc + me
                    dx1 = dx0 + adv * ma
                    base = x * mb + y * md + mf
                    glyphs.append((base, dx0, dx1, size, text, bold))
                x += adv
                if cid == 32 and wordspace:
                    x += wordspace
                need_charspace = True
        textstate.linematrix = (x, textstate.linematrix[1])


def _open_document(data: bytes) -> PDFDocument:
    # Some producers put junk before the header; pdfminer copes if "%PDF" is near the start.
    if not data.lstrip()[:5].startswith(b"%PDF") and b"%PDF-" not in data[:1024]:
        raise LetterError("not_pdf", "the file does not start with a PDF header")
    try:
        return PDFDocument(PDFParser(io.BytesIO(data)), password="")
    except PDFPasswordIncorrect as exc:
        raise LetterError("encrypted", "the PDF needs a password to open") from exc
    except PDFEncryptionError as exc:
        raise LetterError("encrypted", f"unsupported PDF encryption: {exc}") from exc
    except (PDFSyntaxError, PSException, PDFException, ValueError, KeyError, TypeError) as exc:
        raise LetterError("pdf_error", f"the PDF structure could not be read ({type(exc).__name__})") from exc


def _glyph_lines(glyphs: list, page_no: int, page_height: float) -> list[Line]:
    if not glyphs:
        return []
    glyphs.sort(key=lambda g: (-g[0], g[1]))
    lines: list[Line] = []
    bucket: list = []
    base = glyphs[0][0]
    for g in glyphs:
        if bucket and abs(base - g[0]) > SAME_LINE_EM * max(g[3], 1.0):
            lines.append(_make_line(bucket, page_no, page_height))
            bucket = []
        if not bucket:
            base = g[0]
        bucket.append(g)
    lines.append(_make_line(bucket, page_no, page_height))
    return [ln for ln in lines if ln.fragments]


def _make_line(bucket: list, page_no: int, page_height: float) -> Line:
    bucket.sort(key=lambda g: g[1])
    size = Counter(round(g[3], 1) for g in bucket).most_common(1)[0][0] or 1.0
    frags: list[Fragment] = []
    parts: list[str] = []
    start = prev_x1 = None
    bold_n = n = 0
    prev_x0 = prev_text = None
    for _base, x0, x1, _gsize, text, bold in bucket:
        # Some producers fake bold by drawing each glyph twice, a fraction of a point apart.
        if text == prev_text and abs(x0 - prev_x0) < 0.1 * size and text.strip():
            continue
        prev_x0, prev_text = x0, text
        if prev_x1 is not None:
            gap = x0 - prev_x1
            if gap > FRAGMENT_GAP_EM * size:
                _close_fragment(frags, parts, start, prev_x1, bold_n, n)
                parts, start, bold_n, n = [], None, 0, 0
            elif gap > WORD_GAP_EM * size and parts and not parts[-1].endswith(" ") and text != " ":
                parts.append(" ")
        if start is None:
            start = x0
        parts.append(text)
        if text.strip():
            n += 1
            bold_n += bold
        prev_x1 = max(x1, prev_x1) if prev_x1 is not None else x1
    _close_fragment(frags, parts, start, prev_x1, bold_n, n)
    y = page_height - bucket[0][0]
    return Line(page=page_no, y=y, size=size, fragments=tuple(frags))


# Presentation forms some producers emit: ligatures as their letters, soft hyphens dropped,
# no-break spaces as spaces.
_PRESENTATION = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\u00ad": None,
        "\u00a0": " ",
    }
)


def _close_fragment(frags: list, parts: list, x0, x1, bold_n: int, n: int) -> None:
    text = " ".join("".join(parts).translate(_PRESENTATION).split())
    if text:
        frags.append(Fragment(x0=x0, x1=x1, text=text, bold=n > 0 and bold_n * 2 >= n))


def _drop_running_lines(pages: list[list[Line]], heights: list[float]) -> list[Line]:
    """Drops page numbers and headers/footers repeated in the margins of several pages."""

    def margin(ln: Line) -> bool:
        h = heights[ln.page]
        return ln.y < h * MARGIN_SHARE or ln.y > h * (1 - MARGIN_SHARE)

    def shape(ln: Line) -> str:
        return re.sub(r"\d+", "#", ln.text.lower())

    repeated = Counter()
    for lines in pages:
        repeated.update({shape(ln) for ln in lines if margin(ln)})
    kept: list[Line] = []
    for lines in pages:
        for ln in lines:
            if margin(ln) and (
                _PAGE_NUMBER.match(ln.text.strip())
                or (len(pages) > 1 and repeated[shape(ln)] > 1)
                or (ln.page > 0 and _RUNNING_CASE.search(ln.text) and len(ln.text) < 60)
            ):
                continue
            if re.fullmatch(r"page\s*\d{1,4}\s*of\s*\d{1,4}", ln.text.strip(), re.I):
                continue
            kept.append(ln)
    return kept


def _declared_pages(doc: PDFDocument) -> int | None:
    """The page tree's /Count, read without walking the pages (a broken tree yields None)."""
    try:
        count = resolve1(resolve1(doc.catalog["Pages"]).get("Count"))
        return int(count) if count is not None else None
    except (KeyError, TypeError, ValueError, AttributeError, PDFException, PSException):
        return None


def extract_lines(data: bytes, *, max_pages: int = 100) -> list[Line]:
    """All text lines of a PDF in reading order (page, then top to bottom), running page
    headers/footers removed. Raises LetterError for files that are not usable PDFs."""
    doc = _open_document(data)
    declared = _declared_pages(doc)
    if declared is not None and declared > max_pages:
        raise LetterError("too_large", f"{declared} pages; the limit is {max_pages}")
    rsrc = PDFResourceManager(caching=True)
    device = _GlyphCollector(rsrc)
    interp = PDFPageInterpreter(rsrc, device)
    pages: list[list[Line]] = []
    heights: list[float] = []
    try:
        for page_no, page in enumerate(PDFPage.create_pages(doc)):
            if page_no >= max_pages:
                raise LetterError("too_large", f"more than {max_pages} pages")
            device.glyphs = []
            interp.process_page(page)
            _x0, y0, _x1, y1 = page.mediabox
            height = abs(y1 - y0) or 792.0
            glyphs = [(g[0] - min(y0, y1), *g[1:]) for g in device.glyphs] if min(y0, y1) else device.glyphs
            pages.append(_glyph_lines(glyphs, page_no, height))
            heights.append(height)
    except LetterError:
        raise
    except (
        PDFSyntaxError,
        PSException,
        PDFException,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:
        raise LetterError("pdf_error", f"a page could not be read ({type(exc).__name__})") from exc
    if not pages:
        raise LetterError("pdf_error", "the PDF has no pages")
    lines = _drop_running_lines(pages, heights)
    if sum(len(ln.text) for ln in lines) < 40:
        raise LetterError("no_text_layer", f"{len(pages)} page(s) but no extractable text (scanned image?)")
    return lines
