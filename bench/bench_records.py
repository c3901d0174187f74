"""Real-shaped records for the warehouse benchmarks (archive_bench.py, write_ceiling.py): the corpus
letters parsed once and cached as JSON in .run/, and a fixed mix of them (the "pool") whose mean
items and citations per letter match the archive's (~2.9 items, ~6 citations per letter), so that a
replicated warehouse has the archive's proportions, not the sample's.

Replicas get distinct case numbers CMyy-nnnnnnn with nnnnnnn = REPLICA_BASE + n: above every number
imr_synth generates (< 400,000), so a nightly run of generated letters on a replicated warehouse
loads new cases, never overwrites the archive's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from imr.parse.workers import parse_many
from imr.records import DATE_FIELDS, Letter

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("IMR_RUN_DIR", ROOT / ".run"))
CORPUS = Path(os.environ.get("IMR_CORPUS_DIR", ROOT.parent / "shared" / "corpus" / "dwc-2016"))
CACHE = RUN_DIR / "bench-records.json"

ITEMS_PER_LETTER = 2.9
CITATIONS_PER_LETTER = 6.0
REPLICA_BASE = 1_000_000
# Decision dates of the replicas: spread over 2013-01-01 .. 2026-12-31 (5,113 days).
FIRST_DAY = "2013-01-01"
N_DAYS = 5113
DAY_STRIDE = 7919  # prime, coprime with N_DAYS: consecutive replicas land far apart in time


def corpus_records(refresh: bool = False) -> list[dict]:
    """The corpus letters as contract dicts (parsed with the real parser once, then read from CACHE)."""
    if CACHE.exists() and not refresh:
        return json.loads(CACHE.read_text())
    files = sorted(CORPUS.glob("*.pdf"))
    if not files:
        raise SystemExit(f"no corpus PDFs in {CORPUS} (set IMR_CORPUS_DIR)")
    records = [r.letter.to_dict() for r in parse_many(((f.name, f) for f in files), jobs=2) if r.ok]
    records.sort(key=lambda d: d["case_number"])
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(records))
    return records


def n_citations(record: dict) -> int:
    """Parsed citations of a record, both sources, all items."""
    return sum(
        len(((i.get("citations") or {}).get(s) or {}).get("citations") or [])
        for i in record["items"]
        for s in ("claims_administrator", "expert_reviewer")
    )


def pool(records: list[dict]) -> list[int]:
    """Indexes into `records`, every record at least once, with the richer ones repeated until the
    mix's mean items and citations per letter reach ITEMS_PER_LETTER and CITATIONS_PER_LETTER.
    Replica n uses records[pool[n % len(pool)]]. Deterministic."""
    items = [len(r["items"]) for r in records]
    cites = [n_citations(r) for r in records]
    picked = list(range(len(records)))
    for _ in range(20 * len(records)):  # bounded: the corpus's richest letters are 3-4x its mean
        n = len(picked)
        short_items = sum(items[i] for i in picked) < ITEMS_PER_LETTER * n
        short_cites = sum(cites[i] for i in picked) < CITATIONS_PER_LETTER * n
        if not (short_items or short_cites):
            break
        ranked = sorted(
            range(len(records)),
            key=lambda i: (
                short_items * items[i] / ITEMS_PER_LETTER + short_cites * cites[i] / CITATIONS_PER_LETTER,
                -i,
            ),
        )
        picked.append(ranked[-1 - n % 5])  # one of the five richest, in turn: not one letter repeated
    return picked


def case_number(n: int, year: int) -> str:
    """Replica n's case number (year: its decision year)."""
    return f"CM{year % 100:02d}-{REPLICA_BASE + n:07d}"


def replica_key(n: int) -> str:
    return f"letters/archive/{REPLICA_BASE + n:07d}.pdf"


def replica_sha256(n: int) -> str:
    return hashlib.sha256(replica_key(n).encode()).hexdigest()


def decision_day(n: int) -> date:
    """Replica n's decision date (the SQL builder computes the same)."""
    return date.fromisoformat(FIRST_DAY) + timedelta(days=(n * DAY_STRIDE) % N_DAYS)


class Replicator:
    """Replica n of the pool as a Letter, as the SQL builder (archive_bench.py) writes it: the pool's
    record n % len(pool), decided on decision_day(n) with its other dates shifted alike, case number
    case_number(n, that year). For feeding the real load_batch with pre-parsed records."""

    def __init__(self, records: list[dict]) -> None:
        self.letters = [Letter.from_dict(r) for r in records]
        self.pool = pool(records)

    def letter(self, n: int) -> Letter:
        base = self.letters[self.pool[n % len(self.pool)]]
        day = decision_day(n)
        shift = day - base.decision_date if base.decision_date else None
        dates = {
            f: getattr(base, f) + shift if shift is not None and getattr(base, f) is not None else None
            for f in DATE_FIELDS
        }
        dates["decision_date"] = day
        return replace(base, case_number=case_number(n, day.year), **dates)
