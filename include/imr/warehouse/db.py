"""Connections and transactions for the warehouse: the one transaction helper every `imr` module
uses (`transaction`), the DSN connection the CLI opens, and the COPY writer with the value
clean-up PostgreSQL needs (no NUL in text, bare ETags)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from itertools import islice
from typing import Any

# A function that writes rows into a table on a cursor: copy_rows here, or the benchmark's
# executemany baseline (bench/loader_baseline.py).
Writer = Callable[[Any, str, Sequence[str], Iterable[Sequence]], None]


@contextmanager
def transaction(conn) -> Iterator[Any]:
    """One transaction on `conn`, whatever its autocommit setting: yields a cursor, commits on
    success, else rolls back. Reads use it too, so a connection never stays idle in a transaction
    (holding a snapshot) after a query."""
    autocommit = conn.autocommit
    if autocommit:
        conn.autocommit = False
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        if autocommit:
            conn.autocommit = True


def connect(dsn: str | None = None):
    """A psycopg2 connection to `dsn`, else to $IMR_WAREHOUSE_DSN (see `scripts/devservices.py env`).
    Raises LookupError when neither is set."""
    import psycopg2

    dsn = dsn or os.environ.get("IMR_WAREHOUSE_DSN")
    if not dsn:
        raise LookupError("no warehouse DSN (pass --dsn or set IMR_WAREHOUSE_DSN)")
    return psycopg2.connect(dsn)


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Successive lists of at most `size` items.

    :param items: any iterable.
    :param size: the largest chunk.
    :return: an iterator of lists.
    """
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def bare_etag(etag: str | None) -> str | None:
    """S3 returns ETags in double quotes (ListObjectsV2 and GetObject alike); store them bare so a
    quoted and an unquoted spelling of the same ETag compare equal."""
    return etag.strip('"') if etag is not None else None


def clean_text(s: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; PDF text extraction occasionally yields one.
    """The text without NUL characters, which PostgreSQL text cannot hold.

    :param s: text or any other value (returned as is).
    :return: the cleaned value.
    """
    return s.replace("\x00", "") if isinstance(s, str) else s


def _copy_text(value: Any) -> str:
    """One value in COPY text format (NULL is \\N; backslash, tab, newline and CR escaped)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        s = "t" if value else "f"
    elif isinstance(value, (list, tuple)):
        s = _array_literal(value)
    elif isinstance(value, (date, datetime)):
        s = value.isoformat()
    else:
        s = str(value)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _array_literal(values: Sequence) -> str:
    """A text[] literal: every element double-quoted so commas, braces and spaces survive."""
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
        else:
            parts.append('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def copy_rows(cur, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Bulk-write rows with COPY FROM STDIN: one round trip instead of one per row."""
    buf = io.BytesIO()
    for row in rows:
        line = "\t".join(_copy_text(v) for v in row) + "\n"
        buf.write(line.encode("utf-8", "replace"))  # "replace": lone surrogates cannot be encoded
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
