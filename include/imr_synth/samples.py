"""Finished letters: `random_letter` (a record and its PDF) and `write_sample_set`, a directory of letters
with their ground truth (`expected.jsonl`) and the bad files with their rejection codes (`bad.jsonl`)."""

from __future__ import annotations

import json
import pathlib
import random
from datetime import date

from imr.records import Letter

from .badfiles import BAD_FILE_CODES, bad_files
from .content import random_spec
from .render import render_spec
from .spec import LetterSpec


def random_letter(
    rng: random.Random, *, style: str = "2016", n_items: int | None = None, case_number: str | None = None
) -> tuple[Letter, bytes]:
    """A random letter: its ground-truth record and its PDF."""
    spec = random_spec(rng, style=style, n_items=n_items, case_number=case_number)
    return spec.letter, render_spec(spec)


def _sample_spec(
    rng: random.Random, style: str, seen: set[str], decided_in: tuple[date, date] | None = None
) -> LetterSpec:
    """A random letter whose case number is not in `seen` yet (and is added to it)."""
    spec = random_spec(rng, style=style, decided_in=decided_in)
    while spec.letter.case_number in seen:
        spec = random_spec(rng, style=style, decided_in=decided_in)
    seen.add(spec.letter.case_number)
    return spec


def _write_letters(
    outdir: pathlib.Path, count: int, seed: int, decided_in: tuple[date, date] | None = None
) -> list[dict]:
    (outdir / "letters").mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    seen: set[str] = set()
    with (outdir / "expected.jsonl").open("w", encoding="utf-8") as out:
        for i in range(count):
            # One generator per letter: letter i does not change when count does.
            rng = random.Random(f"{seed}:{i}")
            style = "2013" if rng.random() < 0.25 else "2016"
            spec = _sample_spec(rng, style, seen, decided_in)
            encrypted = rng.random() < 0.3
            name = f"{spec.letter.case_number}.pdf"
            (outdir / "letters" / name).write_bytes(render_spec(spec, encrypt_empty_password=encrypted))
            row = spec.letter.to_dict()
            row["file"] = name
            out.write(json.dumps(row) + "\n")
            rows.append({**row, "path": f"letters/{name}", "style": style, "encrypted": encrypted})
    return rows


def _write_bad_files(outdir: pathlib.Path, seed: int) -> list[dict]:
    (outdir / "bad").mkdir(exist_ok=True)
    rows: list[dict] = []
    with (outdir / "bad.jsonl").open("w", encoding="utf-8") as out:
        for key, data in bad_files(seed).items():
            name = f"{key}.pdf"
            (outdir / "bad" / name).write_bytes(data)
            row = {"file": name, "error_code": BAD_FILE_CODES[key]}
            out.write(json.dumps(row) + "\n")
            rows.append({**row, "path": f"bad/{name}"})
    return rows


def write_sample_set(
    outdir: pathlib.Path,
    *,
    count: int,
    seed: int = 0,
    include_bad: bool = True,
    decided_in: tuple[date, date] | None = None,
) -> list[dict]:
    """Write `count` letters to outdir/letters/<case_number>.pdf (both styles, ~30% encrypted with the empty
    password), the bad files to outdir/bad/<key>.pdf, outdir/expected.jsonl (Letter.to_dict() + "file") and
    outdir/bad.jsonl ({"file", "error_code"}). Deterministic for a seed. Returns the rows of both files, each
    with "path" (relative to outdir) added, and for letters also "style" and "encrypted". `decided_in`
    (first, last): every letter decided in those days, as one night's letters are."""
    outdir = pathlib.Path(outdir)
    rows = _write_letters(outdir, count, seed, decided_in)
    if include_bad:
        rows += _write_bad_files(outdir, seed)
    return rows
