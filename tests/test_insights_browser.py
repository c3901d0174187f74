"""The "IMR Insights" page in a real Airflow UI, driven by headless Chromium (Playwright).

An isolated `airflow standalone` (scripts/standalone.sh, as in test_monitor_browser.py, whose
helpers and `page`/`shots` fixtures this module uses) serves a warehouse that `imr insights` filled:
the 72 development letters of ../shared/corpus/dwc-2016 when they are there, else letters from
`imr generate`. Their ground truth (expected.jsonl: decision and application dates, priority, items)
gives the totals and the timeliness histogram exactly; the category table must show what
`imr insights` printed from the analytics views. Then the decision-date filter is applied and the
page must show the letters decided in the range only. The screenshot goes to docs/insights.png.

Needs /usr/bin/chromium and the `playwright` package (skips without them), like the monitor's test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date
from math import ceil
from pathlib import Path

import httpx
import pytest

import test_monitor_browser as mb

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]
DOCS_SHOT = REPO / "docs" / "insights.png"
IMR = [sys.executable, "-m", "imr"]

# The monitor test's fixtures, by name: `page` logs in to this module's `airflow`.
corpus_dir_optional = mb.corpus_dir_optional
page = mb.page
shots = mb.shots


def _letters_dir(corpus: Path | None, tmp: Path) -> tuple[Path, list[dict]]:
    """The letters to load and their ground truth."""
    if corpus is None:
        subprocess.run([*IMR, "generate", str(tmp), "--count", "40", "--seed", "7", "--no-bad"], check=True)
        corpus = tmp / "letters"
        expected = tmp / "expected.jsonl"
    else:
        expected = corpus / "expected.jsonl"
    return corpus, [json.loads(line) for line in expected.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def airflow(services, admin_dsn, corpus_dir_optional, tmp_path_factory):
    """A running isolated `airflow standalone` over a warehouse filled by `imr insights`:
    {"url", "password", "token", "expected" (the letters' ground truth), "cli" (its output)}."""
    mb._require_browser()
    tag = uuid.uuid4().hex[:10]
    meta_db, wh_db = f"airflow_test_{tag}", f"imr_test_{tag}"
    home = tmp_path_factory.mktemp("airflow_home")
    port = mb._free_port()
    password = secrets.token_urlsafe(12)
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    server = services["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[0]
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{server}/{meta_db}",
        "AIRFLOW_CONN_IMR_WAREHOUSE": f"{server.replace('postgresql+psycopg2://', 'postgresql://')}/{wh_db}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # The page reads the warehouse only: no DAG needs to run.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(mb._free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(mb._free_port()),
    }
    env_file = home / "standalone.env"
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    mb._admin_sql(admin_dsn, f"CREATE DATABASE {meta_db}")
    mb._admin_sql(admin_dsn, f"CREATE DATABASE {wh_db}")
    letters, expected = _letters_dir(corpus_dir_optional, tmp_path_factory.mktemp("letters"))
    # The README's command: parse, load into the (empty) warehouse, print the headline figures.
    cli = subprocess.run(
        [*IMR, "insights", str(letters), "--dsn", admin_dsn.replace("dbname=postgres", f"dbname={wh_db}")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    mb.ARTIFACTS.mkdir(exist_ok=True)
    log_path = mb.ARTIFACTS / "standalone-insights.log"
    log = open(log_path, "wb")  # noqa: SIM115 (the server writes it until the fixture ends)
    proc = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "standalone.sh")],
        cwd=REPO,
        env=os.environ | {"IMR_STANDALONE_ENV": str(env_file)},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, log_path)
        r = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        assert r.status_code in (200, 201), r.text
        yield {
            "url": url,
            "password": password,
            "token": r.json()["access_token"],
            "expected": expected,
            "cli": cli,
        }
    finally:
        mb._stop(proc)
        log.close()
        mb._admin_sql(admin_dsn, f"DROP DATABASE IF EXISTS {meta_db} WITH (FORCE)")
        mb._admin_sql(admin_dsn, f"DROP DATABASE IF EXISTS {wh_db} WITH (FORCE)")


def _wait_until_up(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + mb.STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"airflow standalone exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the api-server did not answer within {mb.STARTUP_TIMEOUT}s; see {log_path}")
        time.sleep(1)


# --------------------------------------------------------------------------- the ground truth


def _in(row: dict, first: str | None, last: str | None) -> bool:
    return (first is None or row["decision_date"] >= first) and (last is None or row["decision_date"] <= last)


def expected_bins(rows: list[dict]) -> tuple[list[str], list[str]]:
    """Letters and expedited letters per 5-day bin of days application -> decision (19 bins, the
    first "<= 5", the last "> 90"), as the page's table writes them."""
    letters, expedited = [0] * 19, [0] * 19
    for row in rows:
        if not (row.get("application_received") and row.get("decision_date")):
            continue
        days = (
            date.fromisoformat(row["decision_date"]) - date.fromisoformat(row["application_received"])
        ).days
        i = min(max(ceil(days / 5) - 1, 0), 18)
        letters[i] += 1
        expedited[i] += row.get("priority") == "Expedited"
    return [str(n) for n in letters], [str(n) for n in expedited]


def cli_categories(cli: str) -> list[list[str]]:
    """`imr insights`'s "overturn rate by category" lines as the page's table rows:
    [category, items, overturned, rate]."""
    rows = []
    for line in cli.splitlines():
        m = re.fullmatch(r"  (\S.*?)\s+(\d+\.\d%|n/a)\s+\((\d+)/(\d+)\)", line)
        if m:
            name, rate, overturned, items = m.groups()
            rows.append([name.replace("(none)", "(not classified)"), items, overturned, rate])
    return rows


def table(frame, table_id: str) -> list[list[str]]:
    return [
        [c.strip() for c in row.locator("td, th").all_inner_texts()]
        for row in frame.locator(f"#{table_id} tbody tr").all()
    ]


def categories_shown(frame) -> list[list[str]]:
    """[category, items, overturned, rate] of the page's category table."""
    return [
        [name, items, overturned, rate]
        for name, items, _up, overturned, rate in table(frame, "table-categories")
    ]


# --------------------------------------------------------------------------- the page


def test_insights_page_charts_tables_and_date_filter(airflow, page, shots):
    from playwright.sync_api import expect

    expected = airflow["expected"]
    page.set_viewport_size({"width": 1600, "height": 1750})
    page.goto(f"{airflow['url']}/")
    # Both entries are in the navigation; the Insights one opens the page in the UI's frame.
    expect(page.get_by_role("link", name="IMR Ingestion")).to_be_visible()
    page.get_by_role("link", name="IMR Insights").click()
    page.wait_for_url(lambda u: "/plugin/imr-insights" in u)
    frame = page.frame_locator("iframe[title='IMR Insights']")

    for chart in ("#chart-categories", "#chart-pharmaceuticals", "#chart-guidelines", "#chart-timeliness"):
        expect(frame.locator(chart)).to_be_visible()
    expect(frame.locator("#limit-line")).to_have_count(1)
    expect(frame.locator("#total-letters")).to_have_text(str(len(expected)))
    expect(frame.locator("#total-items")).to_have_text(str(sum(len(r["items"]) for r in expected)))
    # The category table (base tables, imr.read.insights) = what `imr insights` printed (the views).
    from_cli = cli_categories(airflow["cli"])
    assert from_cli and categories_shown(frame) == from_cli
    assert len(frame.locator("#chart-categories g.row").all()) == len(from_cli)
    opioid = re.search(r"opioid share of pharmaceuticals: (\S+)", airflow["cli"]).group(1)
    expect(frame.locator("#opioid-share")).to_have_text(opioid)
    letters, expedited = expected_bins(expected)
    _days, shown_letters, shown_expedited = table(frame, "table-timeliness")
    assert (shown_letters[1:], shown_expedited[1:]) == (letters, expedited)
    shots("insights")
    shutil.copyfile(mb.ARTIFACTS / "insights.png", DOCS_SHOT)

    # The filter: the middle half of the decision dates, both bounds inclusive.
    dates = sorted(r["decision_date"] for r in expected)
    first, last = dates[len(dates) // 4], dates[3 * len(dates) // 4]
    in_range = [r for r in expected if _in(r, first, last)]
    assert 0 < len(in_range) < len(expected)
    frame.locator("#f-from").fill(first)
    frame.locator("#f-to").fill(last)
    frame.locator("#apply").click()
    expect(frame.locator("#total-letters")).to_have_text(str(len(in_range)))
    expect(frame.locator("#total-items")).to_have_text(str(sum(len(r["items"]) for r in in_range)))
    expect(frame.locator("#f-from")).to_have_value(first)
    letters, expedited = expected_bins(in_range)
    _days, shown_letters, shown_expedited = table(frame, "table-timeliness")
    assert (shown_letters[1:], shown_expedited[1:]) == (letters, expedited)
    # Every table shows what the JSON API says for the same range.
    api = mb._api(airflow, "GET", "/imr-monitor/api/insights/categories", params={"from": first, "to": last})
    assert api.status_code == 200 and api.json()["letters"] == len(in_range)
    assert categories_shown(frame) == [
        [
            c["category"] or "(not classified)",
            str(c["items"]),
            str(c["overturned"]),
            f"{c['overturn_rate']:.1%}",
        ]
        for c in api.json()["categories"]
    ]
    mix = mb._api(
        airflow, "GET", "/imr-monitor/api/insights/pharmaceuticals", params={"from": first, "to": last}
    )
    assert [row[:2] for row in table(frame, "table-pharmaceuticals")] == [
        [c["drug_class"], str(c["items"])] for c in mix.json()["drug_classes"]
    ]
    shots("insights-filtered")


def test_insights_refuses_anonymous_requests(airflow):
    r = httpx.get(f"{airflow['url']}/imr-monitor/api/insights/categories", timeout=10)
    assert r.status_code == 401
    r = httpx.get(f"{airflow['url']}/imr-monitor/insights/", headers={"Accept": "text/html"}, timeout=10)
    assert r.status_code == 303 and "/auth/login" in r.headers["location"]
