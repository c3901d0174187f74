"""Generalization of the request labels, measured by letter folds: the development letters'
labelled items (`expected-enrichment.jsonl`, joined to `expected.jsonl` for each item's rationale)
split into k folds by letter, and the classifier's category and subcategory accuracy on each fold.

The classifier has no fitted parameters, so a "held-out" fold is held out only from the person who
changes the rules: the figures mean something only for rule changes made while looking at the other
folds' errors. `python -m imr.enrich.folds CORPUS_DIR [--show-errors FOLD]` prints the table; errors
are shown only on request, one fold at a time, so a fold can be scored before anyone reads its misses.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .classify import classify


@dataclass(frozen=True)
class LabelledItem:
    """One development label and the text it was given for."""

    case_number: str
    seq: int
    request: str
    rationale: str | None
    category: str
    subcategory: str
    high_confidence: bool


@dataclass(frozen=True)
class FoldScore:
    """The classifier's accuracy on one fold."""

    fold: int
    letters: int
    items: int
    category_accuracy: float
    subcategory_accuracy: float
    errors: tuple[str, ...]  # "case#seq: expected -> got (rule)"; may quote the request


def fold_of(case_number: str, k: int = 5) -> int:
    """The fold of a letter: a hash of its case number, so a letter keeps its fold whatever other
    letters are added or removed (deterministic across runs and machines).

    :param case_number: the letter's case number, e.g. ``CM16-0213037``.
    :param k: the number of folds.
    :return: 0 .. k-1.
    """
    return int.from_bytes(hashlib.sha256(case_number.encode()).digest()[:4], "big") % k


def load_labelled(corpus_dir: Path, high_confidence_only: bool = True) -> list[LabelledItem]:
    """The development labels with the request and rationale each item was labelled from.

    :param corpus_dir: a directory holding ``expected.jsonl`` and ``expected-enrichment.jsonl``.
    :param high_confidence_only: keep only labels marked ``high`` (the ones the scorer counts).
    :return: the labelled items, in file order.
    """
    rationale: dict[tuple[str, int], str | None] = {}
    for line in (corpus_dir / "expected.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for item in record["items"]:
            rationale[(record["case_number"], item["seq"])] = item.get("decision_rationale")
    items = []
    for line in (corpus_dir / "expected-enrichment.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        high = row.get("label_confidence", "high") == "high"
        if high_confidence_only and not high:
            continue
        key = (row["case_number"], row["seq"])
        items.append(
            LabelledItem(
                key[0], key[1], row["request"], rationale.get(key), row["category"], row["subcategory"], high
            )
        )
    return items


def score_folds(items: list[LabelledItem], k: int = 5) -> list[FoldScore]:
    """Category and subcategory accuracy of the classifier on each fold.

    :param items: labelled items (`load_labelled`).
    :param k: the number of folds.
    :return: one score per fold, fold 0 first.
    """
    scores = []
    for fold in range(k):
        members = [it for it in items if fold_of(it.case_number, k) == fold]
        category = subcategory = 0
        errors = []
        for it in members:
            got = classify(it.request, it.rationale)
            category += got.category == it.category
            subcategory += got.category == it.category and got.subcategory == it.subcategory
            if (got.category, got.subcategory) != (it.category, it.subcategory):
                errors.append(
                    f"{it.case_number}#{it.seq}: {it.category}/{it.subcategory} -> "
                    f"{got.category}/{got.subcategory} ({got.rule})"
                )
        n = len(members)
        scores.append(
            FoldScore(
                fold,
                len({it.case_number for it in members}),
                n,
                category / n if n else 1.0,
                subcategory / n if n else 1.0,
                tuple(errors),
            )
        )
    return scores


def main(argv: list[str] | None = None) -> int:
    """Print the per-fold table (and one fold's misses on request).

    :param argv: the command line arguments (default: sys.argv[1:]).
    :return: the exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m imr.enrich.folds", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--show-errors", type=int, metavar="FOLD", help="also print this fold's misses")
    args = parser.parse_args(argv)
    scores = score_folds(load_labelled(args.corpus_dir), args.k)
    print("fold  letters  items  category  subcategory")
    for s in scores:
        print(
            f"{s.fold:>4}  {s.letters:>7}  {s.items:>5}  "
            f"{s.category_accuracy:>8.2%}  {s.subcategory_accuracy:>11.2%}"
        )
    if args.show_errors is not None:
        for line in scores[args.show_errors].errors:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
