"""imr.pipeline on the embedded PostgreSQL and the S3 endpoint: a batch's log line accounts for every
quarantined object by its error code, including letters the parser read but the loader's validation
rejected (issue 11)."""

from __future__ import annotations

import random
import re

import pytest

import imr_synth
from imr import pipeline, warehouse
from imr.parse.letter_parser import parse_pdf
from imr.parse.workers import ParserPool
from imr.s3_io import iter_pages
from imr.validate import record_rejection
from imr_synth.render import render_spec

pytestmark = pytest.mark.integration


def _letter_over_130() -> bytes:
    """A well-formed letter whose patient is 150: the parser reads it (with an unusual_age warning),
    imr.validate.record_rejection refuses it (header_missing_field)."""
    spec = imr_synth.random_spec(random.Random(7))
    first = spec.summary_paragraphs[0]
    spec.summary_paragraphs[0] = re.sub(r"\b\d{1,3} year old", "150 year old", first, count=1)
    pdf = render_spec(spec)
    letter = parse_pdf(pdf)
    assert letter.patient_age == 150 and record_rejection(letter)[0] == "header_missing_field"
    return pdf


def test_batch_line_breaks_down_every_quarantined_object(wh_conn, s3_client, bucket) -> None:
    _, good = imr_synth.random_letter(random.Random(1))
    for key, body in {
        "letters/good.pdf": good,
        "letters/too-old.pdf": _letter_over_130(),
        "letters/not-a-pdf.pdf": b"hello, not a PDF",
    }.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    for page in iter_pages(s3_client, bucket):
        warehouse.register_objects(wh_conn, bucket, page, "run1")
    (batch_id,) = warehouse.claim_batches(wh_conn, bucket, "run1", batch_size=10)

    with ParserPool(1) as pool:
        report = pipeline.ingest_batch(s3_client, wh_conn, batch_id, pool)

    assert (report.objects, report.load.loaded, report.load.quarantined) == (3, 1, 2)
    assert report.load.quarantined_by_code == {"header_missing_field": 1, "not_pdf": 1}
    assert sum(report.load.quarantined_by_code.values()) == report.load.quarantined
    assert "2 quarantined (header_missing_field=1, not_pdf=1)" in report.line()


class _CountingS3:
    """A boto3 S3 client whose ListObjectsV2 paginator notes, as each page is requested, how many
    manifest rows another connection can already see committed."""

    def __init__(self, s3_client, committed) -> None:
        self._s3 = s3_client
        self._committed = committed
        self.seen_at_page: list[int] = []

    def get_paginator(self, name: str):
        paginator = self._s3.get_paginator(name)
        outer = self

        class _Paginator:
            def paginate(self, **kwargs):
                pages = iter(paginator.paginate(**kwargs))
                while True:
                    outer.seen_at_page.append(outer._committed())
                    try:
                        yield next(pages)
                    except StopIteration:
                        return

        return _Paginator()


def test_discover_commits_each_page_before_listing_the_next(wh_conn, pg_dsn, s3_client, bucket) -> None:
    """Discovery streams: page n of the listing is requested only after pages 1..n-1 are committed to
    the manifest. Anything that collected the listing before writing (the whole archive in memory)
    would see 0 rows at every request and fail here."""
    import psycopg2

    for n in range(7):
        s3_client.put_object(Bucket=bucket, Key=f"letters/{n}.pdf", Body=b"")
    watcher = psycopg2.connect(pg_dsn)
    watcher.autocommit = True

    def committed() -> int:
        with watcher.cursor() as cur:
            cur.execute("SELECT count(*) FROM imr.s3_objects")
            return cur.fetchone()[0]

    s3 = _CountingS3(s3_client, committed)
    try:
        assert pipeline.discover(s3, wh_conn, bucket, "letters/", "run1", page_size=2) == 7
    finally:
        watcher.close()
    # pages of 2, 2, 2, 1; the short last page is written once the paginator says it has no more
    assert s3.seen_at_page == [0, 2, 4, 6, 6]
    assert pipeline.discover(s3_client, wh_conn, bucket, "letters/", "run2", page_size=2) == 0
