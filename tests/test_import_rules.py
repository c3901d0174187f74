"""Who may import what, read from the source (AST) of every Python file in the repository:

* no test module imports another test module (shared code lives in tests/support and in conftest
  fixtures), and nothing imports a conftest;
* nothing outside tests/ imports from tests/ (scripts/ and bench/ use the installed imr_devtools);
* the code the production image runs (include/ but imr_devtools, dags/, plugins/) never imports the
  dev tooling;
* no code edits sys.path, and no import is let off ruff's E402 (imports after code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SKIP = {".venv", ".run", ".git", "artifacts", "node_modules"}


def _python_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*.py")) if not SKIP & set(p.relative_to(REPO).parts)]


def _imported(path: Path) -> set[str]:
    """Absolute module names a file imports (`from a.b import c` gives a.b and a.b.c)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _tests_modules() -> set[str]:
    """Top-level names a module of tests/ is importable as (pytest puts each test folder on the path)."""
    names = set()
    for path in _python_files(TESTS):
        names.add(path.stem)
        names |= {part for part in path.relative_to(TESTS).parts[:-1]}
    return names - {"__init__"}


def _is_test_module(name: str) -> bool:
    return any(part.startswith("test_") or part == "conftest" for part in name.split("."))


@pytest.mark.parametrize("path", _python_files(TESTS), ids=lambda p: str(p.relative_to(REPO)))
def test_no_test_module_imports_another(path: Path) -> None:
    bad = sorted(name for name in _imported(path) if _is_test_module(name))
    assert not bad, (
        f"{path.relative_to(REPO)} imports test modules {bad}: move the shared code to tests/support"
    )


def test_nothing_outside_tests_imports_from_tests() -> None:
    test_names = _tests_modules()
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imported(path) if n.split(".")[0] in test_names)
        for root in ("scripts", "bench", "include", "dags", "plugins")
        for path in _python_files(REPO / root)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_runtime_code_never_imports_the_dev_tooling() -> None:
    runtime = [p for root in ("include", "dags", "plugins") for p in _python_files(REPO / root)]
    runtime = [p for p in runtime if "imr_devtools" not in p.parts]
    assert runtime
    offenders = sorted(
        str(p.relative_to(REPO))
        for p in runtime
        if any(n.split(".")[0] == "imr_devtools" for n in _imported(p))
    )
    assert not offenders, f"the production image has no imr_devtools: {offenders}"


def _edits_sys_path(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
        for node in ast.walk(tree)
    )


def test_no_sys_path_edits_and_no_e402_suppression() -> None:
    suppression = "noqa: " + "E402"  # spelled apart, so that this file does not match itself
    files = _python_files(REPO)
    assert len(files) > 50
    path_edits = [
        str(p.relative_to(REPO)) for p in files if _edits_sys_path(ast.parse(p.read_text(), str(p)))
    ]
    assert not path_edits, f"sys.path used in {path_edits}: install the package or use pytest's pythonpath"
    suppressed = [str(p.relative_to(REPO)) for p in files if suppression in p.read_text()]
    assert not suppressed, f"E402 suppressed in {suppressed}"
