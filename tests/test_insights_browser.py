"""The "IMR Insights" page in a real Airflow UI, driven by headless Chromium (Playwright).

An isolated `airflow standalone` (tests/support/standalone.py, as for the monitor's browser test,
with the same `page`/`shots` fixtures) serves a warehouse that `imr insights` filled:
the 72 development letters of ../shared/corpus/dwc-2016 when they are there, else letters from
`imr generate`. Their ground truth (expected.jsonl: decision and application dates, priority, items)
gives the totals and the timeliness histogram exactly; the category table must show what
`imr insights` printed from the analytics views. Then the decision-date filter is applied and the
page must show the letters decided in the range only. The screenshot goes to docs/insights.png.

Needs /usr/bin/chromium and the `playwright` package (skips without them), like the monitor's test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date
from math import ceil
from pathlib import Path

import pytest

from support.standalone import ARTIFACTS, api, assert_refuses_anonymous, require_browser, standalone_airflow

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]
DOCS_SHOT = REPO / "docs" / "insights.png"
IMR = [sys.executable, "-m", "imr"]


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
    require_browser()
    letters, expected = _letters_dir(corpus_dir_optional, tmp_path_factory.mktemp("letters"))
    cli = []

    def fill(warehouse_dsn: str) -> None:
        # The README's command: parse, load into the (empty) warehouse, print the headline figures.
        run = subprocess.run(
            [*IMR, "insights", str(letters), "--dsn", warehouse_dsn],
            check=True,
            capture_output=True,
            text=True,
        )
        cli.append(run.stdout)

    # The page reads the warehouse only: no DAG needs to run (they stay paused).
    home = tmp_path_factory.mktemp("airflow_home")
    with standalone_airflow(services, admin_dsn, home, "standalone-insights.log", prepare=fill) as instance:
        yield instance | {"expected": expected, "cli": cli[0]}


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
    shutil.copyfile(ARTIFACTS / "insights.png", DOCS_SHOT)

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
    shown = api(airflow, "GET", "/imr-monitor/api/insights/categories", params={"from": first, "to": last})
    assert shown.status_code == 200 and shown.json()["letters"] == len(in_range)
    assert categories_shown(frame) == [
        [
            c["category"] or "(not classified)",
            str(c["items"]),
            str(c["overturned"]),
            f"{c['overturn_rate']:.1%}",
        ]
        for c in shown.json()["categories"]
    ]
    mix = api(airflow, "GET", "/imr-monitor/api/insights/pharmaceuticals", params={"from": first, "to": last})
    assert [row[:2] for row in table(frame, "table-pharmaceuticals")] == [
        [c["drug_class"], str(c["items"])] for c in mix.json()["drug_classes"]
    ]
    shots("insights-filtered")


def test_insights_refuses_anonymous_requests(airflow):
    assert_refuses_anonymous(airflow, "/imr-monitor/api/insights/categories", "/imr-monitor/insights/")
