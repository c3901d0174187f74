"""Enriched item fields of `imr parse` on the 72 development letters, scored by the shared
`score_enrichment.py` (category, subcategory over the high-confidence labels; citations per item and
source). Skips without the corpus; IMR_REQUIRE_CORPUS=1 makes that a failure (conftest.corpus_dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imr.enrich import LABEL_BASES, folds
from imr.enrich.taxonomy import is_valid
from support import helpers

pytestmark = pytest.mark.corpus

MIN_CATEGORY = 0.97
MIN_SUBCATEGORY = 0.95
MIN_CITATIONS = 0.99


@pytest.fixture(scope="module")
def parsed(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ACTUAL file for the scorer: `imr parse` JSON lines, one record per letter."""
    return helpers.parse_to_jsonl(corpus_dir, tmp_path_factory.mktemp("enrich") / "actual.jsonl")


def test_enrichment_scores_on_real_corpus(corpus_dir: Path, parsed: Path) -> None:
    expected = corpus_dir / "expected-enrichment.jsonl"
    if not expected.is_file():
        pytest.skip(f"{expected} is absent")
    score = helpers.score(corpus_dir, "score_enrichment.py", expected, parsed)
    # Differences name case, seq and labels only: no letter text in the log.
    summary = (
        f"category {score['category_accuracy']:.2%}, subcategory {score['subcategory_accuracy']:.2%} "
        f"of {score['high_confidence_items']} high-confidence labels (all items "
        f"{score['category_accuracy_all_items']:.2%} / {score['subcategory_accuracy_all_items']:.2%}); "
        f"citations exact {score['citations_exact']:.2%} of {score['citation_comparisons']}; "
        f"first differences: {[d.split(' ', 1)[0] for d in score['differences'][:10]]}"
    )
    print(summary)
    assert score["items_matched"] == score["items_expected"], summary
    assert score["category_accuracy"] >= MIN_CATEGORY, summary
    assert score["subcategory_accuracy"] >= MIN_SUBCATEGORY, summary
    assert score["citations_exact"] >= MIN_CITATIONS, summary


def test_every_parsed_item_carries_valid_enriched_fields(parsed: Path) -> None:
    items = [it for line in parsed.read_text().splitlines() for it in json.loads(line)["items"]]
    assert items
    for it in items:
        assert is_valid(it["category"], it["subcategory"]), (it["category"], it["subcategory"])
        assert it["label_basis"] in LABEL_BASES
        assert set(it["citations"]) == {"claims_administrator", "expert_reviewer"}
        for source in it["citations"].values():
            assert source["evidence"] in ("cited", "none")
            assert (source["evidence"] == "cited") == bool(source["citations"])


def test_k_fold_accuracy_by_letter(corpus_dir: Path) -> None:
    """Every labelled letter falls in exactly one fold, the same one on every run, and each
    held-out fold is scored on its own (the figures are printed for the report)."""
    if not (corpus_dir / "expected-enrichment.jsonl").is_file():
        pytest.skip("expected-enrichment.jsonl is absent")
    items = folds.load_labelled(corpus_dir)
    scores = folds.score_folds(items, k=5)
    print(
        [
            (s.fold, s.letters, s.items, f"{s.category_accuracy:.2%}", f"{s.subcategory_accuracy:.2%}")
            for s in scores
        ]
    )
    assert sum(s.items for s in scores) == len(items)
    assert sum(s.letters for s in scores) == len({it.case_number for it in items})
    assert all(s.letters for s in scores), "a fold without letters"
    for s in scores:
        assert s.category_accuracy >= MIN_CATEGORY and s.subcategory_accuracy >= MIN_SUBCATEGORY, s.fold


def test_no_development_item_is_labelled_by_default(parsed: Path) -> None:
    """Every item of the 72 letters is labelled by a rule or its rationale: a default label there
    would be a guess counted as right only by luck."""
    items = [it for line in parsed.read_text().splitlines() for it in json.loads(line)["items"]]
    bases = {it["label_basis"] for it in items}
    assert bases <= {"rule", "rationale"}, bases
