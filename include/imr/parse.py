"""One letter end to end in this process: bytes -> text lines -> record -> warnings."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LetterError
from .parser import parse_lines
from .pdftext import extract_lines
from .records import Letter
from .validate import validate


@dataclass(frozen=True)
class Limits:
    """Bounds for one letter. Real letters are 2-10 pages, 50-300 KB, parse in ~0.1 s."""

    max_bytes: int = 20 * 1024 * 1024
    max_pages: int = 100
    timeout_s: float = 30.0
    memory_mb: int = 1024


DEFAULT_LIMITS = Limits()


def parse_pdf(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Letter:
    """Parses and validates one letter. Raises LetterError with a rejection code.

    Not safe against hostile input on its own: time and memory bounds are enforced by the
    caller's worker process (imr.workers)."""
    if len(data) > limits.max_bytes:
        raise LetterError("too_large", f"{len(data)} bytes exceeds the {limits.max_bytes}-byte limit")
    return validate(parse_lines(extract_lines(data, max_pages=limits.max_pages)))
