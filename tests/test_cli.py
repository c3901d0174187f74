"""The `imr` commands the README documents: db upgrade and generate (parse is in test_rejections)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from imr import cli


def _imr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imr", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_db_upgrade_is_idempotent(pg_dsn: str) -> None:
    first = _imr("db", "upgrade", "--dsn", pg_dsn)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied: 0001_")
    second = _imr("db", "upgrade", "--dsn", pg_dsn)
    assert second.returncode == 0 and "nothing (schema is current)" in second.stdout


def test_generate_writes_letters_truth_and_bad_files(tmp_path: Path) -> None:
    out = _imr("generate", str(tmp_path), "--count", "3", "--seed", "5")
    assert out.returncode == 0, out.stderr
    truth = [json.loads(line) for line in (tmp_path / "expected.jsonl").read_text().splitlines()]
    assert len(truth) == 3 and all((tmp_path / "letters" / Path(t["file"]).name).exists() for t in truth)
    bad = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert {"not_pdf", "encrypted", "timeout", "item_structure"} <= {b["error_code"] for b in bad}
    parsed = _imr("parse", *(str(tmp_path / "letters" / Path(t["file"]).name) for t in truth))
    assert parsed.returncode == 0
    assert [json.loads(line)["case_number"] for line in parsed.stdout.splitlines()] == [
        t["case_number"] for t in truth
    ]


@pytest.fixture
def without_reportlab(monkeypatch: pytest.MonkeyPatch):
    """An interpreter where reportlab is not installed: `import reportlab` raises ModuleNotFoundError (a
    None entry in sys.modules), and imr_synth is imported afresh. Everything is restored afterwards."""
    before = {name for name in sys.modules if name.partition(".")[0] == "imr_synth"}
    for name in list(sys.modules):
        root = name.partition(".")[0]
        if root == "imr_synth":
            monkeypatch.delitem(sys.modules, name)
        elif root == "reportlab":
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "reportlab", None)
    yield
    for name in [n for n in sys.modules if n.partition(".")[0] == "imr_synth" and n not in before]:
        del sys.modules[name]  # half-imported during the test; monkeypatch restores the originals


@pytest.mark.usefixtures("without_reportlab")
def test_generate_without_the_dev_dependencies_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModuleNotFoundError):
        import reportlab  # noqa: F401 - the fixture works

    assert cli.main(["generate", str(tmp_path / "out"), "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert "imr generate: needs reportlab, a development dependency" in err
    assert "make setup" in err
    assert not (tmp_path / "out").exists()


def test_runtime_package_does_not_import_the_generator() -> None:
    """Every module of `imr` imports without reportlab or imr_synth (only `imr generate` needs them)."""
    code = (
        "import importlib, pkgutil, sys, imr\n"
        "for m in pkgutil.iter_modules(imr.__path__):\n"
        "    if m.name != '__main__':\n"
        "        importlib.import_module('imr.' + m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('reportlab', 'imr_synth')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.integration
def test_insights_loads_letters_and_prints_headline_figures(pg_dsn: str, tmp_path: Path) -> None:
    assert _imr("generate", str(tmp_path), "--count", "4", "--seed", "3", "--no-bad").returncode == 0
    truth = [json.loads(line) for line in (tmp_path / "expected.jsonl").read_text().splitlines()]
    items = [i for t in truth for i in t["items"]]
    out = _imr("insights", str(tmp_path / "letters"), "--dsn", pg_dsn)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"letters: 4, items: {len(items)}"
    pharma = sum(i["category"] == "Pharmaceuticals" for i in items)
    assert lines[1].startswith("pharmaceutical share of items: ") and f"({pharma}/{len(items)})" in lines[1]
    assert "overturn rate by category:" in lines and lines[-3].startswith("median days application received")
    # The default share line counts what the loader stored as label_basis = 'default'.
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE label_basis = 'default'), count(*) FROM imr.items")
        default, stored = cur.fetchone()
    conn.close()
    assert stored == len(items)
    share = f"{default / stored:.1%}"
    assert lines[-1] == f"share of items labelled by default: {share} ({default}/{stored})"
    # Running it again on the same scratch database loads nothing twice.
    again = _imr("insights", str(tmp_path / "letters"), "--dsn", pg_dsn)
    assert again.returncode == 0 and again.stdout == out.stdout
