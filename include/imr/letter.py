"""One letter through the stages that need no warehouse: parse -> enrich -> validate.

This is what a parser worker process runs for each document (`imr.parse.workers`), so the CLI's
`imr parse`, the pipeline's lanes and the tests get the same record from the same bytes."""

from __future__ import annotations

from .enrich import enrich_letter
from .parse.letter_parser import parse_pdf
from .parse.limits import DEFAULT_LIMITS, Limits
from .records import Letter
from .validate import validate


def from_pdf(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Letter:
    """The validated, enriched record of one letter's bytes, in this process.

    :param data: the PDF's bytes.
    :param limits: size and page bounds (time and memory are the worker process's).
    :return: the record with its enriched item fields and its warnings.
    :raises LetterError: with the rejection code of the first stage that refuses the letter.
    """
    return validate(enrich_letter(parse_pdf(data, limits)))
