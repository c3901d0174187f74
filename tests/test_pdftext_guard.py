"""Guard on pdftext's fast path through pdfminer's internals.

`pdftext._GlyphCollector.render_string` re-implements pdfminer.six's `PDFTextDevice.render_string`
(the text matrix times the CTM, the text state's line matrix, char and word spacing, horizontal
scaling, rise, TJ kerning, `font.decode` / `char_width` / `to_unichr`) so that no layout object is
made per glyph. If a pdfminer upgrade changes any of that, the fast path would still run and quietly
put glyphs in the wrong place. This test draws the same pages through pdfminer's own path, its
`render_string` calling `PDFLayoutAnalyzer.render_char` (the LTChar the layout analysis is built on),
and requires the same glyphs: same text, baseline and x-extent within 0.01 pt, same size and weight.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LTChar
from pdfminer.pdfdevice import PDFTextDevice
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.utils import apply_matrix_pt

import imr_synth
from imr.parse import pdftext
from support.minipdf import one_page_pdf

TOLERANCE_PT = 0.01
# Glyph tuples as the fast collector records them: (baseline, x0, x1, size, text, bold).
BASE, X0, X1, SIZE, TEXT, BOLD = range(6)


class _ReferenceCollector(PDFPageAggregator):
    """pdfminer's own render_string -> render_char (LTChar), no layout analysis (laparams=None);
    records each horizontal glyph as the fast collector does."""

    def __init__(self, rsrcmgr: PDFResourceManager) -> None:
        super().__init__(rsrcmgr, laparams=None)
        self.glyphs: list[tuple[float, float, float, float, str, bool]] = []

    def handle_undefined_char(self, font, cid: int) -> str:  # noqa: ARG002 (pdfminer API)
        return ""  # the fast collector records an unmapped glyph as ""

    def render_char(self, matrix, font, fontsize, scaling, rise, cid, ncs, graphicstate) -> float:
        adv = super().render_char(matrix, font, fontsize, scaling, rise, cid, ncs, graphicstate)
        char = self.cur_item._objs[-1]
        assert isinstance(char, LTChar)
        if not font.is_vertical():
            # The glyph's origin on its baseline (rise included) and the end of its advance, in
            # device space, through the matrix pdfminer handed to render_char.
            x0, base = apply_matrix_pt(matrix, (0, rise))
            x1, _ = apply_matrix_pt(matrix, (adv, rise))
            name = char.fontname.lower()
            bold = "bold" in name or "black" in name or "heavy" in name
            self.glyphs.append((base, x0, x1, char.size, char.get_text(), bold))
        return adv


def _page_glyphs(data: bytes) -> list[tuple[list, list]]:
    """Per page: (fast collector's glyphs, reference collector's glyphs)."""
    doc = pdftext._open_document(data)
    out = []
    for page in PDFPage.create_pages(doc):
        per_page = []
        for device_cls in (pdftext._GlyphCollector, _ReferenceCollector):
            rsrc = PDFResourceManager(caching=True)
            device = device_cls(rsrc)
            PDFPageInterpreter(rsrc, device).process_page(page)
            per_page.append(device.glyphs)
        out.append(tuple(per_page))
    return out


def _mismatch(fast: list, ref: list) -> str | None:
    """The first difference between two glyph lists, or None."""
    if len(fast) != len(ref):
        return f"{len(fast)} glyphs from the fast collector, {len(ref)} from pdfminer's render_char"
    for i, (f, r) in enumerate(zip(fast, ref, strict=True)):
        if f[TEXT] != r[TEXT] or f[BOLD] != r[BOLD]:
            return f"glyph {i}: fast {f[TEXT]!r} bold={f[BOLD]}, pdfminer {r[TEXT]!r} bold={r[BOLD]}"
        for k, what in ((BASE, "baseline"), (X0, "x0"), (X1, "x1"), (SIZE, "size")):
            if abs(f[k] - r[k]) > TOLERANCE_PT:
                return f"glyph {i} {f[TEXT]!r}: {what} {f[k]:.3f} (fast) vs {r[k]:.3f} (pdfminer)"
    return None


def _assert_same_glyphs(name: str, data: bytes, min_glyphs: int = 200) -> int:
    pages = _page_glyphs(data)
    assert pages, f"{name}: no pages"
    total = 0
    for page_no, (fast, ref) in enumerate(pages):
        problem = _mismatch(fast, ref)
        assert problem is None, f"{name} page {page_no + 1}: {problem}"
        total += len(ref)
    assert total >= min_glyphs, f"{name}: only {total} glyphs; the comparison would prove little"
    return total


def test_reference_uses_pdfminers_own_string_rendering() -> None:
    """The reference must not re-implement what it checks; the fast collector must still be fast."""
    assert _ReferenceCollector.render_string is PDFTextDevice.render_string
    assert pdftext._GlyphCollector.render_string is not PDFTextDevice.render_string


def _corpus_sample(corpus_dir: Path) -> list[Path]:
    files = sorted(corpus_dir.glob("*.pdf"))
    assert len(files) >= 12
    return files[:: len(files) // 12][:12]  # twelve letters spread over the corpus, every page


@pytest.mark.corpus
def test_fast_glyphs_match_pdfminer_on_real_letters(corpus_dir: Path) -> None:
    files = _corpus_sample(corpus_dir)
    glyphs = sum(_assert_same_glyphs(f.name, f.read_bytes()) for f in files)
    assert glyphs > 10_000


@pytest.mark.parametrize(
    ("style", "encrypted"), [("2016", False), ("2013", False), ("2016", True), ("2013", True)]
)
def test_fast_glyphs_match_pdfminer_on_synthetic_letters(style: str, encrypted: bool) -> None:
    """Justified text (word spacing), bold runs, multi-page letters; encrypted with the empty
    password (AES, as the real letters) or not."""
    for seed in range(2):
        truth, _ = imr_synth.random_letter(random.Random(f"guard-{style}-{seed}"), style=style, n_items=4)
        pdf = imr_synth.render_letter(truth, style=style, encrypt_empty_password=encrypted)
        assert (b"/Encrypt" in pdf) == encrypted
        _assert_same_glyphs(f"{style} letter {seed}", pdf)


# Every text-state operator the fast path handles, most of which no letter uses: a scaled CTM, char
# spacing (Tc), word spacing (Tw), horizontal scaling (Tz), rise (Ts), TJ kerning followed by a Tj that
# must continue where the TJ ended (the line matrix), a bold font and a skewed text matrix (Tm).
TEXT_STATE_PAGE = b"""q 1.2 0 0 1.2 10 -40 cm
BT /F1 11 Tf 50 620 Td (Plain text on the first line of the page) Tj
0 -16 Td 1.5 Tc (Character spacing, one and a half points) Tj
0 -16 Td 0 Tc 7 Tw (Word spacing of seven points between words) Tj
0 -16 Td 0 Tw 140 Tz (Horizontally scaled by 140 percent) Tj
0 -16 Td 100 Tz 4 Ts (Raised by four) Tj -3 Ts ( and lowered by three) Tj 0 Ts
0 -16 Td [(K) 120 (erned) -250 (TJ array) 80 (, negative and positive)] TJ ( then a Tj after it) Tj
/F2 12 Tf 0 -16 Td (Bold font at twelve points) Tj
1 0 0.25 1 60 300 Tm (Skewed text matrix with a rise) Tj
ET Q
"""


def test_fast_glyphs_match_pdfminer_on_every_text_state_operator() -> None:
    _assert_same_glyphs("text-state page", one_page_pdf(TEXT_STATE_PAGE), min_glyphs=250)
    # The same page as a Flate-compressed stream.
    _assert_same_glyphs("text-state page (Flate)", one_page_pdf(TEXT_STATE_PAGE, flate=True), min_glyphs=250)


def test_the_comparison_catches_a_small_shift() -> None:
    """The guard itself can fail: a glyph moved by 0.05 pt, or one glyph lost, is reported."""
    _, pdf = imr_synth.random_letter(random.Random("guard-shift"), n_items=1)
    fast, ref = _page_glyphs(pdf)[0]
    assert _mismatch(fast, ref) is None
    shifted = [*fast[:10], (fast[10][BASE], fast[10][X0] + 0.05, *fast[10][X1:]), *fast[11:]]
    assert "x0" in _mismatch(shifted, ref)
    assert "glyphs" in _mismatch(fast[:-1], ref)
