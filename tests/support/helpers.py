"""The corpus tests' helpers: `imr parse` into JSONL and the scorers of ../shared/tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


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


def score_pairs(tmp_path: Path, pairs: list[tuple[dict, dict]]) -> dict:
    """The project's one metric (../shared/tools/score_records.py) on (expected, actual) records;
    the test is skipped where the scorer is not there.

    :param tmp_path: where the two JSONL files are written
    :param pairs: (expected record, actual record) per letter
    :return: the scorer's report
    """
    scorer = Path(__file__).resolve().parents[3] / "shared" / "tools" / "score_records.py"
    if not scorer.exists():
        pytest.skip(f"scorer not found at {scorer}")
    exp, act = tmp_path / "expected.jsonl", tmp_path / "actual.jsonl"
    exp.write_text("".join(json.dumps(e) + "\n" for e, _ in pairs))
    act.write_text("".join(json.dumps(a) + "\n" for _, a in pairs))
    return run_scorer(scorer, exp, act)


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
