"""Accuracy of `imr parse` on the 72 real, hand-checked letters, scored by the project's one metric.

The parser scores 100% of fields and 72/72 letters fully correct (README); any regression from that
fails, there is no tolerance band for one to hide in."""

import json
from pathlib import Path

import pytest

from support import helpers

pytestmark = pytest.mark.corpus

CORPUS_LETTERS = 72


def test_imr_parse_scores_on_real_corpus(corpus_dir: Path, tmp_path: Path) -> None:
    actual = helpers.parse_to_jsonl(corpus_dir, tmp_path / "actual.jsonl")
    score = helpers.score(corpus_dir, "score_records.py", corpus_dir / "expected.jsonl", actual)
    summary = (
        f"field accuracy {score['field_accuracy']:.4%}, letters all correct "
        f"{score['letters_all_correct']}/{score['letters_expected']}; first mismatches: "
        f"{score['mismatches'][:5]}"
    )
    print(summary)
    pdfs = len(list(corpus_dir.glob("*.pdf")))
    assert pdfs == score["letters_expected"] == CORPUS_LETTERS, (
        f"{pdfs} PDFs, {score['letters_expected']} expected"
    )
    assert score["letters_matched"] == CORPUS_LETTERS, summary
    assert score["mismatches"] == [], summary
    # Nothing extra or doubled either: extra items and records do not lower the field accuracy.
    for key in ("letters_missing", "extra_records", "extra_items", "duplicate_actual_case_numbers"):
        assert score[key] == [], f"{key}: {score[key][:5]}"
    assert score["fields_correct"] == score["fields_total"] > 0, summary
    assert score["field_accuracy"] == 1.0, summary
    assert score["letters_all_correct"] == CORPUS_LETTERS, summary
    # Contract v3: the 2016-17 letters all have the reviewer's credentials block.
    formats = {json.loads(line)["letter_format"] for line in actual.read_text().splitlines()}
    assert formats == {"final_2016"}, formats


def test_real_letters_carry_no_spurious_warnings(corpus_dir: Path) -> None:
    """Hand-checked letters have consistent dates and rationales: warnings there are false alarms
    (there are none today, so none may appear)."""
    from imr.parse.workers import parse_many

    files = sorted(corpus_dir.glob("*.pdf"))
    results = list(parse_many(((f.name, f) for f in files), jobs=2))
    codes = [w.code for r in results if r.ok for w in r.letter.warnings if w.code != "field_missing"]
    assert all(r.ok for r in results)
    assert codes == [], codes
