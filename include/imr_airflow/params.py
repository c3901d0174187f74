"""DAG params shared by the ingestion DAGs (each DAG adds its own)."""

from __future__ import annotations

import os

from airflow.sdk import Param

from imr.alerts import QuarantineThresholds
from imr.parse.limits import Limits

# The task SDK of Airflow 3 cannot read a pool (pools live in the metadata database, which tasks do
# not reach), so "as many lanes as the imr_warehouse pool has slots" is read from the setting the
# deployment creates the pool with (IMR_WAREHOUSE_POOL_SLOTS: docker/airflow-init.sh,
# scripts/airflow_env.sh), defaulting to the same 4. More lanes than slots would only queue.
DEFAULT_POOL_SLOTS = 4
# A lane's lease on a batch (seconds): must outlast one letter's parse timeout plus its download.
DEFAULT_LEASE_S = 120.0
# Upper bounds of what a trigger may ask for (Airflow validates the params' JSON schema when a run
# is created, so a run with more is refused before it starts). Real letters parse in ~0.1 s: 10
# minutes per letter is generous and still lets one bad PDF hold a lane for a bounded time; the
# largest batch keeps one batch's keys (claimed, leased, loaded in one transaction) small.
MAX_TIMEOUT_S = 600
MAX_BATCH_SIZE = 5000
MAX_LEASE_S = 3600


def pool_slots() -> int:
    """The imr_warehouse pool's slots as the deployment configures them."""
    return max(1, int(os.environ.get("IMR_WAREHOUSE_POOL_SLOTS") or DEFAULT_POOL_SLOTS))


def common_params(prefix_help: str = "key prefix") -> dict[str, Param]:
    """The params every ingesting DAG takes: bucket, prefix, batch size, lanes, timeout.

    :param prefix_help: how the DAG describes its prefix.
    :return: the params by name.
    """
    return {
        "bucket": Param("", type="string", description="S3 bucket; empty: the `imr_bucket` Variable"),
        "prefix": Param("", type="string", description=f"{prefix_help}; empty: the `imr_prefix` Variable"),
        "batch_size": Param(
            200, type="integer", minimum=1, maximum=MAX_BATCH_SIZE, description="letters per batch"
        ),
        "max_lanes": Param(
            0,
            type="integer",
            minimum=0,
            description="parallel mapped lanes; 0: the imr_warehouse pool slots (<= core.max_map_length)",
        ),
        "lease_s": Param(
            DEFAULT_LEASE_S,
            type="number",
            minimum=5,
            maximum=MAX_LEASE_S,
            description="seconds before a dead lane's batch goes to another lane (renewed while worked)",
        ),
        "timeout_s": Param(
            Limits.timeout_s,
            type="number",
            minimum=1,
            maximum=MAX_TIMEOUT_S,
            description="hard per-letter parse timeout (s)",
        ),
        **quarantine_params(),
    }


def quarantine_params() -> dict[str, Param]:
    """The quarantine alert's thresholds (imr.alerts.QuarantineThresholds): an alert, never a failure."""
    d = QuarantineThresholds()
    return {
        "quarantine_alert_share": Param(
            d.share, type="number", minimum=0, maximum=1, description="alert above this quarantined share"
        ),
        "quarantine_alert_min": Param(
            d.min_count, type="integer", minimum=1, description="... when at least this many are quarantined"
        ),
        "parser_gap_alert_share": Param(
            d.gap_share,
            type="number",
            minimum=0,
            maximum=1,
            description="alert above this share of parser-gap codes (not_an_imr_letter, item_structure, ...)",
        ),
        "parser_gap_alert_min": Param(
            d.gap_min_count, type="integer", minimum=1, description="... when at least this many have one"
        ),
    }


def quarantine_thresholds(params: dict) -> QuarantineThresholds:
    """The run's thresholds from its params (defaults where a param is absent)."""
    d = QuarantineThresholds()
    return QuarantineThresholds(
        share=float(params.get("quarantine_alert_share", d.share)),
        min_count=int(params.get("quarantine_alert_min", d.min_count)),
        gap_share=float(params.get("parser_gap_alert_share", d.gap_share)),
        gap_min_count=int(params.get("parser_gap_alert_min", d.gap_min_count)),
    )


DISCOVERY_MODES = ("auto", "events", "listing")


def discovery_params() -> dict[str, Param]:
    """The nightly run's discovery: drain the bucket's S3 notifications (events) or list the prefix
    (listing); docs/discovery.md."""
    from imr.discovery import DEFAULT_MAX_MESSAGES

    return {
        "discovery": Param(
            "auto",
            type="string",
            enum=list(DISCOVERY_MODES),
            description="events: drain the imr_events_queue_url queue; listing: list the prefix;"
            " auto: events when that Variable is set, else listing",
        ),
        "events_max_messages": Param(
            DEFAULT_MAX_MESSAGES,
            type="integer",
            minimum=1,
            description="events: messages drained at most (the rest wait for the next run)",
        ),
    }
