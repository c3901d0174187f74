"""Synthetic IMR Final Determination letters with known ground truth, for tests, benchmarks, the demo and
`imr generate`. Development tooling, not runtime: it needs reportlab (a development dependency), and the
runtime package `imr` imports it only inside `imr generate`.

The layout copies the real DWC letters (../shared/corpus): a bordered 2-column header table in
Helvetica 11 (bold labels, `Application` / `Received:` wrapping in its cell), then Times 12 sections
with bold centred headings and, per disputed item, a bold decision line followed by the two guideline
paragraphs and the decision rationale.  On top of what the 2016 corpus shows, the synthetic letters add
things a parser must survive: a `Page N of M` footer on every page, an optional running header with the
case number, justified text, line ends at embedded hyphens, long requests wrapping over 2-3 lines, and
items that cross page breaks anywhere.  All prose comes from phrase lists; it only has to be plausible.

Style `notice2013` renders the first 2013 format instead ("Notice of Independent Medical Review
Determination", ../shared/format-2013-notice.md): title block, numbered decision sentences given twice
(with run-together words such as `notmedically`), dates in prose, a quoted case summary, and per-item
blocks with one of two label sets or unlabelled (then the truth has null guidelines and rationale).

Ground truth is exact: every text field of the returned `Letter` is the rendered text with whitespace
collapsed, so a perfect parser scores 100% with ../shared/tools/score_records.py.

Modules, each owning one concern: `phrases` (+ `phrases.json`: the words), `spec` (record plus rendering
choices), `content` (random specs), `render` (reportlab), `seed` (the 2013-era seed letter), `badfiles`
(one file per rejection class) and `samples` (random letters and sample sets on disk).
"""

from .badfiles import BAD_FILE_CODES, PAGE_LIMIT, bad_files
from .content import random_spec
from .phrases import BOILERPLATE_2013, BOILERPLATE_2016, HEADING_HOW, HEADING_ISSUES, HEADING_SUMMARY
from .render import render_letter, render_pdf, render_spec
from .samples import random_letter, write_sample_set
from .seed import seed_letter_pdf
from .spec import ItemSpec, LetterSpec, spec_from_letter

__all__ = [
    "BAD_FILE_CODES",
    "BOILERPLATE_2013",
    "BOILERPLATE_2016",
    "HEADING_HOW",
    "HEADING_ISSUES",
    "HEADING_SUMMARY",
    "PAGE_LIMIT",
    "ItemSpec",
    "LetterSpec",
    "bad_files",
    "random_letter",
    "random_spec",
    "render_letter",
    "render_pdf",
    "render_spec",
    "seed_letter_pdf",
    "spec_from_letter",
    "write_sample_set",
]
