"""The `imr` commands the README documents: db upgrade and generate (parse is in test_rejections)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _imr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imr", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_db_upgrade_is_idempotent(pg_dsn: str) -> None:
    first = _imr("db", "upgrade", "--dsn", pg_dsn)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied: 0001_")
    second = _imr("db", "upgrade", "--dsn", pg_dsn)
    assert second.returncode == 0 and "nothing (schema is current)" in second.stdout


def test_generate_writes_letters_truth_and_bad_files(tmp_path: Path) -> None:
    out = _imr("generate", str(tmp_path), "--count", "3", "--seed", "5")
    assert out.returncode == 0, out.stderr
    truth = [json.loads(line) for line in (tmp_path / "expected.jsonl").read_text().splitlines()]
    assert len(truth) == 3 and all((tmp_path / "letters" / Path(t["file"]).name).exists() for t in truth)
    bad = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert {"not_pdf", "encrypted", "timeout", "item_structure"} <= {b["error_code"] for b in bad}
    parsed = _imr("parse", *(str(tmp_path / "letters" / Path(t["file"]).name) for t in truth))
    assert parsed.returncode == 0
    assert [json.loads(line)["case_number"] for line in parsed.stdout.splitlines()] == [
        t["case_number"] for t in truth
    ]
