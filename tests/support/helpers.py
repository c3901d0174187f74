"""The corpus tests' helpers: `imr parse` into JSONL and the scorers of ../shared/tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_scorer(scorer: Path, expected: Path, actual: Path) -> dict:
    """One of the scorers of ../shared/tools on two JSONL files, its --json report.

    :param scorer: the scorer's file (score_records.py, score_enrichment.py)
    :param expected: the ground truth (EXPECTED)
    :param actual: the parser's output (ACTUAL)
    :return: the report
    """
    report = subprocess.run(
        [sys.executable, str(scorer), str(expected), str(actual), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(report.stdout)


def score(corpus_dir: Path, tool: str, expected: Path, actual: Path) -> dict:
    """A scorer of ../shared/tools (score_records.py, score_enrichment.py) on two JSONL files."""
    return run_scorer(corpus_dir.parent.parent / "tools" / tool, expected, actual)


def parse_to_jsonl(folder: Path, actual: Path) -> Path:
    """`imr parse --jobs 2` over a folder of letters into a JSONL file (the scorers' ACTUAL)."""
    with actual.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "imr", "parse", "--jobs", "2", "--quiet", str(folder)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return actual
