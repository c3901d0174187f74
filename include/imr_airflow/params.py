"""DAG params shared by the ingestion DAGs (each DAG adds its own)."""

from __future__ import annotations

from airflow.sdk import Param

from imr.limits import Limits

# Airflow maps at most this many lanes per run, so the UI's task list stays short whatever the backlog.
MAX_LANES = 32


def common_params(prefix_help: str = "key prefix") -> dict[str, Param]:
    return {
        "bucket": Param("", type="string", description="S3 bucket; empty: the `imr_bucket` Variable"),
        "prefix": Param("", type="string", description=f"{prefix_help}; empty: the `imr_prefix` Variable"),
        "batch_size": Param(200, type="integer", minimum=1, maximum=5000, description="letters per batch"),
        "max_lanes": Param(
            MAX_LANES, type="integer", minimum=1, maximum=MAX_LANES, description="parallel mapped lanes"
        ),
        "timeout_s": Param(
            Limits.timeout_s, type="number", minimum=1, description="hard per-letter parse timeout (s)"
        ),
    }
