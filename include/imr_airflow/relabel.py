"""The imr_relabel task: hands the warehouse connection to `imr.warehouse.relabel.relabel`, which
does the work in batches of letters, one transaction each; a retry resumes where the last attempt
stopped, since only items not yet of the current classifier version are relabelled."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from airflow.sdk import get_current_context, task

from imr.config import POOL_WAREHOUSE
from imr.warehouse import refresh_insights
from imr.warehouse.relabel import relabel
from imr_airflow.connections import warehouse_connection
from imr_airflow.tasks import RETRY

log = logging.getLogger(__name__)


@task(pool=POOL_WAREHOUSE, **RETRY)
def relabel_items() -> dict[str, Any]:
    """Relabels the stored items; XCom carries the run's counts, never letter text."""
    ctx = get_current_context()
    params = ctx["params"]
    with warehouse_connection() as conn:
        result = relabel(
            conn,
            batch_letters=int(params["batch_letters"]),
            run_id=f"{ctx['run_id']}",
            force=bool(params.get("force")),
        )
        # The relabelled months, from the base tables until now, come from the aggregates again.
        refreshed = refresh_insights(conn)
    log.info(
        "relabelled %d item(s) of %d letter(s) to classifier %s; %d label(s) changed",
        result.items,
        result.letters,
        result.classifier_version,
        result.labels_changed,
    )
    log.info("insights aggregates: %s", refreshed.as_json())
    return asdict(result)
