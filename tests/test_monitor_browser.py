"""The "IMR Ingestion" monitor in a real Airflow UI, driven by headless Chromium (Playwright).

An isolated `airflow standalone` (tests/support/standalone.py: scripts/standalone.sh with its own
AIRFLOW_HOME, metadata database, warehouse database, bucket and port) runs on the embedded
services. Its scheduler runs imr_ingest_nightly by itself (catchup=False: one run for the latest
interval) over a bucket holding a few bad files next to real letters; then a user logs in, opens
"IMR Ingestion", filters, follows a log link, and queues a failure for imr_reprocess_failures.
The screenshots go to artifacts/ (docs/monitor.png is a copy of a good one).

Needs /usr/bin/chromium (apt-get install -y chromium) and the `playwright` package (skips without
them); never `playwright install`.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg2
import pytest

from imr_devtools.scratch import migrate
from support.standalone import (
    STARTUP_TIMEOUT,
    api,
    assert_refuses_anonymous,
    require_browser,
    standalone_airflow,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]
EVIL_KEY = "letters/<script>alert(\"x\")</script>'q'.pdf"
BAD_FILES = {
    "letters/not-a-pdf.pdf": b"This is a text file with a .pdf name.\n",
    "letters/truncated.pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Ty",
    EVIL_KEY: b"<script>alert('x')</script> \"quotes\" & 'apostrophes'\n",
}
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def airflow(services, admin_dsn, s3_client, drop_bucket, corpus_dir_optional, tmp_path_factory):
    """A running isolated `airflow standalone` whose scheduler runs imr_ingest_nightly over a bucket of
    bad files and real letters: {"url", "password", "token", "bucket", "log", "warehouse_dsn"}."""
    require_browser()
    bucket = f"imr-browser-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    try:
        for key, body in BAD_FILES.items():
            s3_client.put_object(Bucket=bucket, Key=key, Body=body)
        if corpus_dir_optional is not None:
            for pdf in sorted(corpus_dir_optional.glob("*.pdf"))[:3]:
                s3_client.put_object(Bucket=bucket, Key=f"letters/{pdf.name}", Body=pdf.read_bytes())
        extra_env = {
            "AIRFLOW_VAR_IMR_BUCKET": bucket,
            "AIRFLOW_VAR_IMR_PREFIX": "letters/",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        }
        home = tmp_path_factory.mktemp("airflow_home")
        # Set-up migrates the warehouse, as make standalone's services-start does for the default one.
        with standalone_airflow(
            services, admin_dsn, home, "standalone.log", extra_env=extra_env, prepare=migrate
        ) as instance:
            _unpause(instance["url"], instance["token"], "imr_ingest_nightly", instance["log"])
            yield instance | {"bucket": bucket}
    finally:
        drop_bucket(s3_client, bucket)


def _unpause(url: str, token: str, dag_id: str, log_path: Path) -> None:
    """Unpause the DAG as soon as the dag-processor has stored it (404 until then)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        r = httpx.patch(
            f"{url}/api/v2/dags/{dag_id}",
            json={"is_paused": False},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if r.status_code == 200:
            return
        time.sleep(2)
    pytest.fail(f"{dag_id} could not be unpaused within {STARTUP_TIMEOUT}s; see {log_path}")


def _wait_for_run(airflow, dag_id: str, run_id: str | None = None) -> dict:
    """The DAG's run (the newest, or `run_id`) once it is finished."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        r = api(airflow, "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-run_after"})
        if r.status_code == 200:
            runs = [x for x in r.json()["dag_runs"] if run_id is None or x["dag_run_id"] == run_id]
            if runs and runs[0]["state"] in ("success", "failed"):
                return runs[0]
        time.sleep(2)
    pytest.fail(f"no finished run of {dag_id} within {RUN_TIMEOUT}s; see {airflow['log']}")


@pytest.fixture(scope="module")
def nightly_run(airflow) -> dict:
    """The run the scheduler made of imr_ingest_nightly (its failures are what the page shows)."""
    return _wait_for_run(airflow, "imr_ingest_nightly")


def test_failures_filter_log_link_and_reprocess(airflow, nightly_run, page, shots):
    from playwright.sync_api import expect

    url = airflow["url"]
    # The nav entry "IMR Ingestion" shows the monitor inside the UI.
    page.goto(f"{url}/")
    page.get_by_role("link", name="IMR Ingestion").click()
    page.wait_for_url(lambda u: "/plugin/imr-ingestion" in u)
    frame = page.frame_locator("iframe[title='IMR Ingestion']")
    table = frame.locator("#failures")
    for key in BAD_FILES:
        expect(table.locator("td.key", has_text=key)).to_have_count(1)
    # Letter-derived text shows as text: the key's <script> is visible, nothing ran.
    expect(table.locator("td.key", has_text='<script>alert("x")</script>')).to_have_text(EVIL_KEY)
    expect(frame.locator("#chart-codes")).to_be_visible()
    expect(frame.locator("#chart-trend")).to_be_visible()
    shots("monitor")

    # Filter by error code: only the two files that are not PDFs stay.
    frame.locator("#f-error-code").select_option("not_pdf")
    frame.locator("#apply").click()
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("td.key", has_text="truncated.pdf")).to_have_count(0)
    # The frame's URL is mirrored in the UI's address bar (empty filters left out).
    page.wait_for_url(lambda u: "error_code=not_pdf" in u and "since=" not in u)

    # Queue one failure for reprocessing: confirmation with the new run.
    row = table.locator("tr", has_text="not-a-pdf.pdf")
    row.locator("input.pick").check()
    expect(frame.locator("#reprocess")).to_have_text("Reprocess 1 selected")
    frame.locator("#reprocess").click()
    expect(frame.locator("#status")).to_contain_text("Queued 1 object(s) for reprocessing in run manual__")
    expect(row.locator(".badge")).to_have_text("queued")
    shots("monitor-queued")
    # The run Airflow made has the key in its conf.
    runs = api(airflow, "GET", "/api/v2/dags/imr_reprocess_failures/dagRuns").json()["dag_runs"]
    assert [r["conf"] for r in runs] == [{"bucket": airflow["bucket"], "keys": ["letters/not-a-pdf.pdf"]}]
    assert "admin" in (runs[0].get("note") or "")

    # A log link opens the task instance's log in the UI itself, not nested in the frame.
    frame.locator("#f-error-code").select_option("")
    frame.locator("#f-state").select_option("all")
    frame.locator("#apply").click()
    log_link = table.locator("tr", has_text="truncated.pdf").locator("a.log-link")
    log_link.click()
    run_path = f"/dags/imr_ingest_nightly/runs/{quote(nightly_run['dag_run_id'], safe='')}"
    page.wait_for_url(lambda u: f"{run_path}/tasks/process_lane" in u)
    expect(page.locator("iframe")).to_have_count(0)
    expect(page.get_by_text("process_lane").first).to_be_visible()


def test_dag_run_tab_filters_to_the_run(airflow, nightly_run, page, shots):
    from playwright.sync_api import expect

    run_id = nightly_run["dag_run_id"]
    page.goto(f"{airflow['url']}/dags/imr_ingest_nightly/runs/{quote(run_id, safe='')}")
    page.get_by_role("link", name="Parse failures").click()
    frame = page.frame_locator("iframe[title='Parse failures']")
    expect(frame.locator("#f-run-id")).to_have_value(run_id)
    expect(frame.locator("#failures td.key")).to_have_count(len(BAD_FILES))
    shots("monitor-dag-run")


def test_monitor_refuses_anonymous_requests(airflow):
    assert_refuses_anonymous(airflow, "/imr-monitor/api/failures", "/imr-monitor/")


# --------------------------------------------------------------------------- runs in progress

# A real imr_backfill run, slowed to a watchable pace: one lane, batches of 10, and copies of the
# letter that never finishes parsing (killed at the run's 6 s per-letter timeout) spread through it.
# The timeout leaves a busy machine's real letters (and a worker restarted after a kill) ample time.
PROGRESS_LETTERS = 180
PROGRESS_COPIES = 8  # byte-identical copies of loaded letters under other keys: duplicate
PROGRESS_SLOW = 3  # copies of the synthetic `timeout` letter: quarantined after 6 s each


def _progress_objects(tmp: Path) -> dict[str, bytes]:
    """backfill/2016/... keys: letters, copies next to their originals, bad files (one per rejection
    class, the slow one several times) spread through the listing so every state shows early."""
    import imr_synth

    imr_synth.write_sample_set(tmp, count=PROGRESS_LETTERS, seed=11, include_bad=True)
    letters = sorted((tmp / "letters").glob("*.pdf"))
    objects = {f"backfill/2016/{p.name}": p.read_bytes() for p in letters}
    step = len(letters) // (PROGRESS_COPIES + 1)
    for i in range(1, PROGRESS_COPIES + 1):
        src = letters[i * step]
        objects[f"backfill/2016/{src.stem}-copy.pdf"] = src.read_bytes()
    bad = sorted((tmp / "bad").glob("*.pdf"))
    step = len(letters) // (len(bad) + PROGRESS_SLOW + 1)
    slow = (tmp / "bad" / "timeout.pdf").read_bytes()
    extra = [(f"timeout-{n}", slow) for n in range(1, PROGRESS_SLOW)]
    for i, (name, body) in enumerate([(p.stem, p.read_bytes()) for p in bad] + extra, start=1):
        objects[f"backfill/2016/{letters[i * step].stem}-{name}.pdf"] = body
    return objects


def test_runs_in_progress(airflow, nightly_run, page, shots, s3_client, tmp_path):
    """A backfill watched while it runs: the section shows the run with its counts, bar, rate and
    ETA, the numbers move without a reload, and the section says "No run in progress." once it ends.
    The screenshot of the run in progress is docs/monitor-progress.png."""
    from playwright.sync_api import expect

    objects = _progress_objects(tmp_path)
    for key, body in objects.items():
        s3_client.put_object(Bucket=airflow["bucket"], Key=key, Body=body)
    _unpause(airflow["url"], airflow["token"], "imr_backfill", airflow["log"])
    conf = {"prefix": "backfill/", "batch_size": 10, "max_lanes": 1, "timeout_s": 6}
    r = api(airflow, "POST", "/api/v2/dags/imr_backfill/dagRuns", json={"logical_date": None, "conf": conf})
    assert r.status_code in (200, 201), r.text
    run_id = r.json()["dag_run_id"]

    # The API reports the run once its plan claimed the keys; wait for some letters and a rate.
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        runs = api(airflow, "GET", "/imr-monitor/api/progress").json()["runs"]
        run = next((x for x in runs if x["run_id"] == run_id), None)
        if run and run["done"] >= 20 and run["eta_s"]:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{run_id} never showed progress; see {airflow['log']}")
        time.sleep(0.5)
    assert run["total"] == len(objects) and run["dag_id"] == "imr_backfill"
    assert sum(run["counts"].values()) == len(objects) and run["rate_per_s"] > 0

    page.goto(f"{airflow['url']}/")
    page.get_by_role("link", name="IMR Ingestion").click()
    frame = page.frame_locator("iframe[title='IMR Ingestion']")
    block = frame.locator(f'.run-progress[data-run-id="{run_id}"]')
    expect(block).to_be_visible()
    expect(block.locator('[data-field="dag_id"]')).to_have_text("imr_backfill")
    expect(block.locator('[data-field="eta"]')).to_have_text(re.compile(r"^\d+ (s|min \d\d s)$"))
    expect(block.locator('[data-field="rate"]')).to_have_text(re.compile(r"letters/s$"))
    expect(frame.locator("#progress-none")).to_be_hidden()
    # Refreshed while the run goes: the loaded count moves with no reload of the page.
    loaded = block.locator('[data-field="loaded"]')
    before = loaded.text_content()
    expect(loaded).not_to_have_text(before, timeout=30_000)
    expect(block.locator('rect[data-seg="loaded"]')).not_to_have_attribute("width", "0")
    shots("monitor-progress")

    # When the run is over the section says so, still without a reload.
    expect(frame.locator("#progress-none")).to_be_visible(timeout=RUN_TIMEOUT * 1000)
    expect(block).to_have_count(0)
    assert _wait_for_run(airflow, "imr_backfill", run_id)["state"] == "success"
    with psycopg2.connect(airflow["warehouse_dsn"]) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT status, coalesce(error_code, ''), count(*) FROM imr.s3_objects"
            " WHERE key LIKE 'backfill/%' GROUP BY 1, 2 ORDER BY 1, 2"
        )
        rows = cur.fetchall()
    counts = {status: sum(n for s, _, n in rows if s == status) for status, _, _ in rows}
    bad = len(objects) - PROGRESS_LETTERS - PROGRESS_COPIES
    assert counts == {"loaded": PROGRESS_LETTERS, "duplicate": PROGRESS_COPIES, "quarantined": bad}, rows
