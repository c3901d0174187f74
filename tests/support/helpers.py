"""Small helpers shared by test modules (fixtures live in the conftest files)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str, module_name: str | None = None) -> ModuleType:
    """scripts/<name>.py as a module. scripts/ is not a package (and on sys.path its names would
    shadow tests/stack): the module is loaded from its file and registered, so that `import
    devservices` in another script, and dataclasses looking their module up, find it."""
    module_name = module_name or name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def score(corpus_dir: Path, tool: str, expected: Path, actual: Path) -> dict:
    """A scorer of ../shared/tools (score_records.py, score_enrichment.py) on two JSONL files."""
    scorer = corpus_dir.parent.parent / "tools" / tool
    report = subprocess.run(
        [sys.executable, str(scorer), str(expected), str(actual), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(report.stdout)


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
