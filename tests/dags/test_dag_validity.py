"""The DAG policy, over every DAG the DagBag of dags/ finds (discovered here, never a list of ids):
each file imports without errors and defines a DAG; each DAG has tags, an owner of its own, retries
in its default_args, documentation (doc_md) and a schedule written out in its file (None included),
so that a new DAG cannot leave one of them to Airflow's defaults."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from support.dagbag import DAGS, dag_bag

BAG = dag_bag()
DAG_FILES = sorted(p.relative_to(DAGS).as_posix() for p in DAGS.glob("*.py"))
DAG_IDS = sorted(BAG.dags)
AIRFLOW_DEFAULT_OWNER = "airflow"


def _dag_call(dag) -> ast.Call:
    """The `@dag(...)` or `DAG(...)` call that made `dag` in its file: the one with its dag_id, or the
    decorator of the function named like it."""
    tree = ast.parse(Path(dag.fileloc).read_text(), dag.fileloc)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
            "dag",
            "DAG",
        ):
            ids = [
                k.value.value
                for k in node.keywords
                if k.arg == "dag_id" and isinstance(k.value, ast.Constant)
            ]
            if ids == [dag.dag_id]:
                return node
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == dag.dag_id:
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call):
                    return deco
    raise AssertionError(f"no dag(...) call for {dag.dag_id} in {dag.fileloc}")


def test_dags_were_found() -> None:
    assert DAG_FILES, "dags/ has no DAG files"
    assert DAG_IDS, f"the DagBag found no DAG: {BAG.import_errors}"


@pytest.mark.parametrize("rel_path", DAG_FILES)
def test_file_imports_and_defines_a_dag(rel_path: str) -> None:
    errors = {Path(path).relative_to(DAGS).as_posix(): e for path, e in BAG.import_errors.items()}
    assert rel_path not in errors, f"{rel_path} failed to import:\n{errors.get(rel_path)}"
    defined = [d.dag_id for d in BAG.dags.values() if Path(d.fileloc) == DAGS / rel_path]
    assert defined, f"{rel_path} defines no DAG"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_has_tags(dag_id: str) -> None:
    assert BAG.dags[dag_id].tags, f"{dag_id} has no tags"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_has_an_owner_of_its_own(dag_id: str) -> None:
    dag = BAG.dags[dag_id]
    owner = dag.default_args.get("owner")
    assert owner and owner != AIRFLOW_DEFAULT_OWNER, f"{dag_id}: default_args sets no owner ({dag.owner})"
    assert {t.owner for t in dag.tasks} == {owner}, f"{dag_id}: tasks with another owner"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_sets_retries_in_default_args(dag_id: str) -> None:
    retries = BAG.dags[dag_id].default_args.get("retries")
    assert isinstance(retries, int) and retries >= 0, f"{dag_id}: default_args has no retries"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_is_documented(dag_id: str) -> None:
    doc = BAG.dags[dag_id].doc_md
    assert doc and doc.strip(), f"{dag_id} has no doc_md"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_writes_its_schedule_out(dag_id: str) -> None:
    """Airflow's default (None) is allowed, but only when the file says so."""
    call = _dag_call(BAG.dags[dag_id])
    assert "schedule" in {k.arg for k in call.keywords}, f"{dag_id}: no schedule= in its dag(...) call"
