"""`make bench`: parser speed and memory against baselines measured in the same run.

Each measurement runs in its own subprocess pinned to one core, so peak RSS is per method and the
methods see the same machine state; rounds interleave the methods so background noise hits all of
them alike. Figures are printed as ratios to pdfminer.six's own `extract_text`.

    python bench/run.py [--rounds 3] [--corpus DIR] [--skip-pipeline] [--pipeline-rounds 2] [--skip-discovery]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path(os.environ.get("IMR_CORPUS_DIR", ROOT.parent / "shared" / "corpus" / "dwc-2016"))


def _quiet_pdfminer() -> None:
    import logging

    logging.getLogger("pdfminer").setLevel(logging.ERROR)


def _method(name: str):
    _quiet_pdfminer()
    if name == "imr":
        from imr.errors import LetterError
        from imr.letter import from_pdf

        def run(data: bytes) -> None:
            with contextlib.suppress(LetterError):
                from_pdf(data)

        return run
    if name == "pdfminer":
        import io

        from pdfminer.high_level import extract_text

        return lambda data: extract_text(io.BytesIO(data))
    if name == "pdfplumber":
        import io

        import pdfplumber

        def run(data: bytes) -> None:
            with pdfplumber.open(io.BytesIO(data)) as pdf:
                for page in pdf.pages:
                    page.extract_text()

        return run
    raise SystemExit(f"unknown method {name}")


def child(name: str, corpus: Path) -> None:
    """One method over every letter, in this (pinned) process; prints JSON."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    datas = [p.read_bytes() for p in sorted(corpus.glob("*.pdf"))]
    fn = _method(name)
    fn(datas[0])  # warm imports and caches out of the timing
    start = time.perf_counter()
    for d in datas:
        fn(d)
    secs = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"method": name, "letters": len(datas), "seconds": secs, "peak_rss_mb": peak_kb / 1024}))


def run_child(name: str, corpus: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--corpus", str(corpus)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli_wall(corpus: Path, jobs: int, copies: int) -> float:
    """Wall time of `imr parse --jobs N` over the corpus listed `copies` times."""
    args = [str(corpus)] * copies
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "imr", "parse", "--quiet", "--jobs", str(jobs), *args],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - start


def parser_bench(corpus: Path, rounds: int) -> dict:
    methods = ("imr", "pdfminer", "pdfplumber")
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for _ in range(rounds):
        for m in methods:
            runs[m].append(run_child(m, corpus))
    res = {}
    for m in methods:
        secs = statistics.median(r["seconds"] for r in runs[m])
        n = runs[m][0]["letters"]
        res[m] = {
            "ms_per_letter": 1000 * secs / n,
            "letters_per_s": n / secs,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[m]),
        }
    base = res["pdfminer"]["ms_per_letter"]
    for m in methods:
        res[m]["cost_vs_pdfminer"] = res[m]["ms_per_letter"] / base
    copies = 3
    n_letters = copies * len(list(corpus.glob("*.pdf")))
    walls = {j: statistics.median(cli_wall(corpus, j, copies) for _ in range(rounds)) for j in (1, 2)}
    res["cli"] = {f"jobs{j}_letters_per_s": n_letters / w for j, w in walls.items()}
    res["cli"]["jobs2_speedup"] = walls[1] / walls[2]
    return res


def print_parser(res: dict, corpus: Path) -> None:
    print(f"\nParser on {corpus} (one core each, median of rounds)")
    print(f"{'method':<22}{'ms/letter':>10}{'letters/s':>11}{'x pdfminer':>12}{'peak RSS MB':>13}")
    labels = {
        "imr": "imr parse+validate",
        "pdfminer": "pdfminer extract_text",
        "pdfplumber": "pdfplumber extract",
    }
    for m, label in labels.items():
        r = res[m]
        print(
            f"{label:<22}{r['ms_per_letter']:>10.1f}{r['letters_per_s']:>11.1f}{r['cost_vs_pdfminer']:>12.2f}"
            f"{r['peak_rss_mb']:>13.0f}"
        )
    c = res["cli"]
    print(
        f"imr parse CLI: --jobs 1 {c['jobs1_letters_per_s']:.1f} letters/s, --jobs 2 "
        f"{c['jobs2_letters_per_s']:.1f} letters/s, speedup {c['jobs2_speedup']:.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--pipeline-letters", type=int, default=3000)
    ap.add_argument(
        "--pipeline-rounds", type=int, default=2, help="backfill runs, each between parse-only runs"
    )
    ap.add_argument("--skip-discovery", action="store_true", help="skip bench/discovery_bench.py (~8 min)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.corpus)
        return 0
    if not (args.corpus / "expected.jsonl").exists():
        print(f"corpus not found at {args.corpus}: set IMR_CORPUS_DIR", file=sys.stderr)
        return 2
    figures = {"parser": parser_bench(args.corpus, args.rounds)}
    print_parser(figures["parser"], args.corpus)
    if not args.skip_pipeline:
        from pipeline_bench import run_pipeline_bench

        figures["pipeline"] = run_pipeline_bench(args.pipeline_letters, rounds=args.pipeline_rounds)
    if not args.skip_discovery:
        from discovery_bench import run_discovery_bench

        figures["discovery"] = run_discovery_bench()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
