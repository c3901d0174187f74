"""Every rejection class gets its code within the time bound, in a batch whose good letters still parse."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import imr_synth
from imr.parse.limits import Limits
from imr.parse.workers import parse_many

TIMEOUT_S = 3.0
# Per-letter deadline plus the cost of killing and replacing one worker.
SLACK_S = 2.0


def test_batch_with_every_rejection_class() -> None:
    bad = imr_synth.bad_files()
    good = [imr_synth.random_letter(random.Random(f"batch-{i}")) for i in range(6)]
    docs: list[tuple[str, bytes]] = []
    for i, (_, pdf) in enumerate(good):  # interleave so bad files sit between good ones
        docs.append((f"good-{i}", pdf))
        if i < len(bad):
            docs.append(list(bad.items())[i])
    docs += list(bad.items())[len(good) :]
    limits = Limits(timeout_s=TIMEOUT_S, max_pages=100)

    start = time.monotonic()
    results = {r.source: r for r in parse_many(docs, jobs=2, limits=limits)}
    elapsed = time.monotonic() - start

    assert set(results) == {name for name, _ in docs}  # nothing lost
    for name, expected_code in imr_synth.BAD_FILE_CODES.items():
        r = results[name]
        assert not r.ok and r.error_code == expected_code, (name, r.error_code, r.message)
        assert r.seconds <= TIMEOUT_S + SLACK_S, (name, r.seconds)
    for i, (truth, _) in enumerate(good):
        r = results[f"good-{i}"]
        assert r.ok, (r.error_code, r.message)
        assert r.letter.case_number == truth.case_number
        assert [it.request for it in r.letter.items] == [it.request for it in truth.items]
    # One worker was killed for the timeout file; the batch as a whole was not held up by it.
    assert elapsed < TIMEOUT_S + 30


def test_cli_reports_failures_per_file_and_exit_status(tmp_path: Path) -> None:
    truth, pdf = imr_synth.random_letter(random.Random("cli"), n_items=2)
    (tmp_path / "good.pdf").write_bytes(pdf)
    (tmp_path / "bad.pdf").write_bytes(imr_synth.bad_files()["not_pdf"])
    out = subprocess.run(
        [sys.executable, "-m", "imr", "parse", str(tmp_path / "good.pdf"), str(tmp_path / "bad.pdf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["case_number"] == truth.case_number and rows[0]["file"].endswith("good.pdf")
    assert rows[1] == {
        "file": str(tmp_path / "bad.pdf"),
        "error_code": "not_pdf",
        "message": "the file does not start with a PDF header",
    }
    only_good = subprocess.run(
        [sys.executable, "-m", "imr", "parse", "--format", "table", str(tmp_path / "good.pdf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert only_good.returncode == 0 and truth.case_number in only_good.stdout
