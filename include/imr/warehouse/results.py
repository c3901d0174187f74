"""What the loader takes and what it returns: `ObjectResult` (one S3 object's parse result,
`Parsed` or `Failed`) in, `BatchLoad` (one batch's counts) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from imr.errors import LetterError
from imr.records import Letter


@dataclass(frozen=True)
class Parsed:
    """The parser read a letter from the object."""

    letter: Letter


@dataclass(frozen=True)
class Failed:
    """The object cannot be loaded: a rejection code (errors.REJECTION_CODES) and a message for logs."""

    code: str
    message: str

    @classmethod
    def from_error(cls, exc: LetterError) -> Failed:
        """The failure of a rejection.

        :param exc: the rejection.
        :return: its code and message as a `Failed`.
        """
        return cls(exc.code, exc.message)


class ObjectResult(NamedTuple):
    """What parsing one S3 object produced, as the loader takes it: the key and ETag the manifest
    listed, sha256 (hex digest of the object's bytes: required with Parsed; None for a failure
    before download) and the result, Parsed or Failed. The pipeline builds these where the worker
    results arrive (imr.pipeline)."""

    key: str
    etag: str
    sha256: str | None
    result: Parsed | Failed


@dataclass(frozen=True)
class BatchLoad:
    """What `load_batch` did with one batch.

    Objects per new status: `loaded`, `duplicate`, `quarantined` (letters that failed
    `imr.validate.record_rejection` included); `quarantined_by_code` is the quarantined ones per
    error code (sums to `quarantined`). `stale`: results whose ETag the manifest no longer has (the
    object changed meanwhile: it is pending again). `changed`: keys with no result because their
    listed version was gone at download, released to pending. `letters_written`, `items_written`:
    rows (re)written into imr.letters and imr.items (a case loaded again unchanged writes none)."""

    loaded: int
    duplicate: int
    quarantined: int
    stale: int
    changed: int
    letters_written: int
    items_written: int
    quarantined_by_code: dict[str, int] = field(default_factory=dict)
