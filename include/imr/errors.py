"""Classified failures. A rejection makes a letter unloadable; it goes to quarantine with its code."""

from __future__ import annotations

# Stable codes: stored in imr.s3_objects.error_code and imr.parse_failures; never rename one.
REJECTION_CODES = {
    "not_pdf": "the file is not a PDF",
    "encrypted": "the PDF needs a password to open",
    "no_text_layer": "the PDF has no text layer (scanned image?)",
    "not_an_imr_letter": "the document is not an IMR Final Determination letter",
    "header_missing_field": "a required header field is missing",
    "item_structure": "the disputed items could not be lined up with their decisions",
    "timeout": "parsing took longer than the per-letter time limit",
    "too_large": "the file exceeds the size, page or memory limit",
    "pdf_error": "the PDF is malformed and could not be read",
    "object_missing": "the S3 object was deleted after it was listed",
    # A bug in the parser, not in the letter: reprocess these after a parser fix.
    "internal_error": "the parser failed unexpectedly",
}


class LetterError(Exception):
    """A letter that cannot be loaded. `code` is one of REJECTION_CODES."""

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        self.code = code
        self.message = message or REJECTION_CODES[code]
        super().__init__(f"{code}: {self.message}")
