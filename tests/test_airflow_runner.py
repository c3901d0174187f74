"""imr_devtools/airflow_runner.py is the one way code runs a DAG, and the shell scripts share one set-up
(`imr_airflow_prepare` in scripts/airflow_env.sh) with the pool name from imr.config. Fast, static
checks; the runner itself runs DAGs in test_demo.py, test_e2e_dags.py and the other e2e tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from imr.config import POOL_WAREHOUSE
from imr_devtools import airflow_runner

REPO = Path(__file__).resolve().parents[1]
SHELL_SCRIPTS = (REPO / "scripts" / "airflow.sh", REPO / "scripts" / "standalone.sh")


def test_metadata_uri_drops_the_sqlalchemy_driver() -> None:
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://postgres@127.0.0.1:6000/airflow"}
    assert airflow_runner.metadata_uri(env) == "postgresql://postgres@127.0.0.1:6000/airflow"
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:p@h:5432/meta"}
    assert airflow_runner.metadata_uri(env) == "postgresql://u:p@h:5432/meta"
    with pytest.raises(ValueError, match="not PostgreSQL"):
        airflow_runner.metadata_uri({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////tmp/airflow.db"})


def test_dsn_to_uri() -> None:
    assert (
        airflow_runner.dsn_to_uri("host=127.0.0.1 port=54329 user=postgres dbname=imr_test")
        == "postgresql://postgres@127.0.0.1:54329/imr_test"
    )
    assert (
        airflow_runner.dsn_to_uri("host=h port=1 user=imr_app password=a/b@c dbname=imr")
        == "postgresql://imr_app:a%2Fb%40c@h:1/imr"
    )


def _python_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((REPO / d).rglob("*.py")) if ".run" not in p.parts]


def test_no_other_code_runs_dags_or_parses_their_log() -> None:
    """`airflow dags test` and the "DagRun Finished" log line appear in the runner only."""
    runner = Path(airflow_runner.__file__).resolve()
    offenders = []
    for path in _python_files("scripts", "bench", "tests", "include/imr_devtools"):
        if path in (runner, Path(__file__).resolve()):
            continue
        text = path.read_text()
        if "DagRun Finished" in text or re.search(r"""["']dags["'],\s*["']test["']""", text):
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"run DAGs through imr_devtools/airflow_runner.py: {offenders}"


def test_shell_scripts_share_the_set_up_and_read_the_pool_from_config() -> None:
    env_sh = (REPO / "scripts" / "airflow_env.sh").read_text()
    assert env_sh.count("imr_airflow_prepare() {") == 1
    assert "from imr.config import POOL_WAREHOUSE" in env_sh
    for script in SHELL_SCRIPTS:
        lines = [ln.strip() for ln in script.read_text().splitlines() if not ln.strip().startswith("#")]
        text = "\n".join(lines)
        assert lines.count("imr_airflow_prepare") == 1, script.name
        assert "db migrate" not in text and "pools set" not in text, f"{script.name} repeats the set-up"
        assert POOL_WAREHOUSE not in text, f"{script.name} names the pool literally"
    for script in (*SHELL_SCRIPTS, REPO / "scripts" / "airflow_env.sh"):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


def test_local_runs_use_the_supervisor_interval_from_config() -> None:
    from imr.config import WORKER_MIN_HEARTBEAT_INTERVAL_S

    env_sh = (REPO / "scripts" / "airflow_env.sh").read_text()
    expected = f"AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL:-{WORKER_MIN_HEARTBEAT_INTERVAL_S}}}"
    assert expected in env_sh
