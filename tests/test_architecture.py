"""The house by stage (docs/architecture.md): parse -> enrich -> validate -> warehouse -> read.

Every module under include/ is imported (so none is dead or broken), and its import statements are
read from its source with `ast`, lazy ones inside functions included, relative ones resolved. A
module of a stage imports nothing from a later stage; the business logic imports neither Airflow
nor the dev tooling; only `imr generate` reaches the synthetic-letter generator, and only lazily."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

INCLUDE = Path(__file__).resolve().parents[1] / "include"
# The stages in data-flow order; a module of one imports no module of a later one.
STAGES = ("imr.parse", "imr.enrich", "imr.validate", "imr.warehouse", "imr.read")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (for `from a import b`: a.b when that is a module, else a)
    lazy: bool  # inside a function, not at module level


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(INCLUDE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(INCLUDE.rglob("*.py"))}


def _is_module(name: str) -> bool:
    return name in MODULES


def _imports(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    lazy_nodes = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
    }
    out = []
    for node in ast.walk(tree):
        lazy = id(node) in lazy_nodes
        if isinstance(node, ast.Import):
            out += [Import(name, a.name, lazy) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append(Import(name, full if _is_module(full) else base, lazy))
    return out


MODULES = _modules()
IMPORTS = [i for name, path in MODULES.items() for i in _imports(name, path)]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _stage(name: str) -> int | None:
    return next((k for k, s in enumerate(STAGES) if _within(name, s)), None)


def test_every_module_of_include_imports() -> None:
    assert set(STAGES) <= set(MODULES)
    for name in MODULES:
        if name.endswith(".__main__"):  # runs the CLI when imported: found, not run
            assert importlib.util.find_spec(name) is not None
        else:
            importlib.import_module(name)


def test_the_import_graph_is_read() -> None:
    # The reader resolves relative imports: the parser's use of the record type is seen.
    assert Import("imr.parse.letter_parser", "imr.records", False) in IMPORTS
    assert Import("imr.warehouse.load", "imr.warehouse.merge", False) in IMPORTS


def test_no_stage_imports_a_later_stage() -> None:
    backwards = [
        (i.module, i.target)
        for i in IMPORTS
        if (a := _stage(i.module)) is not None and (b := _stage(i.target)) is not None and b > a
    ]
    assert backwards == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("imr.parse", ("imr.enrich", "imr.validate", "imr.warehouse", "imr.read")),
        ("imr.warehouse", ("imr.read",)),
        ("imr", ("airflow", "imr_devtools", "imr_airflow")),
    ],
)
def test_package_imports_none_of(package: str, forbidden: tuple[str, ...]) -> None:
    found = [
        (i.module, i.target)
        for i in IMPORTS
        if _within(i.module, package) and any(_within(i.target, f) for f in forbidden)
    ]
    assert found == []


def test_only_imr_generate_imports_imr_synth_lazily() -> None:
    users = {
        (i.module, i.lazy) for i in IMPORTS if _within(i.target, "imr_synth") and _within(i.module, "imr")
    }
    assert users == {("imr.cli", True)}


def test_the_parse_stage_loads_no_later_stage_at_run_time() -> None:
    # Beyond the source: what importing the parse stage actually puts in sys.modules.
    code = (
        "import sys, imr.parse.letter_parser, imr.parse.workers\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in"
        " (['imr', 'enrich'], ['imr', 'validate'], ['imr', 'warehouse'], ['imr', 'read'])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
