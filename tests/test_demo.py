"""The README's first command, `make run` (scripts/demo.py): twice on a fresh warehouse and bucket;
the second run finds nothing new and changes no count."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imr_devtools.airflow_runner import dsn_to_uri

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]


def _demo(env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_demo_twice_changes_nothing(pg_dsn, bucket, services) -> None:
    env = dict(
        os.environ,
        IMR_WAREHOUSE_DSN=pg_dsn,
        AIRFLOW_CONN_IMR_WAREHOUSE=dsn_to_uri(pg_dsn),
        AIRFLOW_VAR_IMR_BUCKET=bucket,
        AIRFLOW_VAR_IMR_PREFIX="letters/",
    )
    first = _demo(env)
    assert re.search(r"processed by this run: (\d+)", first).group(1) != "0"
    assert "quarantined timeout" in first and "quarantined not_pdf" in first
    assert "FAIL" not in first
    # The sample's bad files (10 of 70) trip the quarantine-rate alert, which never fails the run.
    assert re.search(r"ALERT  run_quarantine_share +observed 0\.14", first), first
    second = _demo(env)
    assert "processed by this run: 0 (nothing new)" in second

    def counts(out: str) -> list[str]:
        return [line for line in out.splitlines() if line.startswith(("loaded ", "  quarantined ", "rows: "))]

    strip_dq = [re.sub(r", imr\.dq_results \d+", "", line) for line in counts(first)]
    assert strip_dq == [re.sub(r", imr\.dq_results \d+", "", line) for line in counts(second)]
