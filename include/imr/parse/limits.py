"""The bounds one letter is parsed within (size, pages, wall time, memory): `Limits`, shared by the
CLI, the worker pool, the pipeline and the DAG params."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds for one letter. Real letters are 2-10 pages, 50-300 KB, parse in ~0.1 s."""

    max_bytes: int = 20 * 1024 * 1024
    max_pages: int = 100
    timeout_s: float = 30.0
    memory_mb: int = 1024


DEFAULT_LIMITS = Limits()
