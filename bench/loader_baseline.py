"""The warehouse loader's benchmark baseline: `load_batch` with its staging rows sent row by row
(cursor.executemany) instead of COPY. Same data, same merge; only the client-to-server transfer
differs. Benchmark-only, so it lives here and not in `imr.warehouse`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from imr.warehouse import BatchLoad, ObjectResult, load_batch


def insert_rows(cur, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """The row-at-a-time writer (a drop-in for imr.warehouse.db.copy_rows)."""
    placeholders = ", ".join(["%s"] * len(columns))
    cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", list(rows))


def load_rows_executemany(
    conn, bucket: str, results: Iterable[ObjectResult], run_id: str, *args, **kwargs
) -> BatchLoad:
    """load_batch (same arguments) with the executemany writer: the COPY benchmark's baseline."""
    return load_batch(conn, bucket, results, run_id, *args, write=insert_rows, **kwargs)
