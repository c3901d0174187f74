"""The "IMR Insights" page and its JSON API (plugins/imr_monitor/insights.py) through Airflow's own
api-server app, with the monitor's fixtures (tests/support/airflow_app.py: the plugin mounted from
plugins/, the SimpleAuthManager, real JWTs, a fresh warehouse per test) and the letters of
tests/support/insights_letters.py, whose figures are known exactly."""

from __future__ import annotations

import html as htmllib
import re

import pytest

from support.airflow_app import PREFIX, auth
from support.builders import ingest, item, make, obj, ok
from support.insights_letters import load_letters
from support.routes import INSIGHTS_ROUTES

pytestmark = pytest.mark.integration

API = f"{PREFIX}/api/insights"
SPRING = {"from": "2016-02-10", "to": "2016-04-01"}


@pytest.fixture
def loaded(wh_conn):
    load_letters(wh_conn)
    return wh_conn


def get(client, tokens, path: str, role: str = "viewer", **params) -> dict:
    r = client.get(f"{API}/{path}", params=params, headers=auth(tokens, role))
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------- the JSON API


def test_categories(client, tokens, loaded):
    body = get(client, tokens, "categories")
    assert (body["from"], body["to"], body["letters"], body["items"]) == (None, None, 6, 11)
    assert [(c["category"], c["items"], c["upheld"], c["overturned"]) for c in body["categories"]] == [
        ("Pharmaceuticals", 5, 3, 2),
        ("Diagnostic Testing", 2, 1, 1),
        ("Rehabilitation", 2, 1, 1),
        ("Surgery", 1, 0, 1),
        (None, 1, 1, 0),
    ]
    assert body["categories"][0]["overturn_rate"] == 0.4
    spring = get(client, tokens, "categories", **SPRING)
    assert (spring["from"], spring["to"], spring["letters"], spring["items"]) == (
        "2016-02-10",
        "2016-04-01",
        3,
        5,
    )
    assert [(c["category"], c["items"], c["overturn_rate"]) for c in spring["categories"]] == [
        ("Pharmaceuticals", 3, 1 / 3),
        ("Rehabilitation", 1, 1.0),
        ("Surgery", 1, 1.0),
    ]


def test_pharmaceuticals(client, tokens, loaded):
    body = get(client, tokens, "pharmaceuticals")
    assert (body["items"], body["pharmaceutical_items"], body["opioid_items"]) == (11, 5, 3)
    assert (body["pharmaceutical_share"], body["opioid_share_of_pharmaceuticals"]) == (5 / 11, 0.6)
    assert [(c["drug_class"], c["opioid"], c["items"], c["overturned"]) for c in body["drug_classes"]] == [
        ("Opioids", True, 3, 2),
        ("Muscle Relaxant", False, 1, 0),
        ("NSAID", False, 1, 0),
    ]
    spring = get(client, tokens, "pharmaceuticals", **SPRING)
    assert (
        spring["pharmaceutical_items"],
        spring["opioid_items"],
        spring["opioid_share_of_pharmaceuticals"],
    ) == (
        3,
        1,
        1 / 3,
    )


def test_guidelines(client, tokens, loaded):
    body = get(client, tokens, "guidelines")
    assert (body["items"], body["items_citing"]) == (11, 9)
    assert [(f["family"], f["items"], f["overturned"]) for f in body["families"]] == [
        ("MTUS", 5, 2),
        ("ODG", 3, 3),
        ("ACOEM", 2, 1),
    ]
    assert [(g["family"], g["title"], g["items"], g["overturn_rate"]) for g in body["guidelines"]] == [
        ("MTUS", "Chronic Pain Medical Treatment", 4, 0.25),
        ("ODG", None, 3, 1.0),
        ("ACOEM", None, 2, 0.5),
        ("MTUS", "Opioid Treatment", 2, 1.0),
    ]
    spring = get(client, tokens, "guidelines", **SPRING)
    assert (spring["items"], spring["items_citing"]) == (5, 4)
    assert [(g["family"], g["items"]) for g in spring["families"]] == [("MTUS", 2), ("ODG", 2), ("ACOEM", 1)]


def test_timeliness(client, tokens, loaded):
    body = get(client, tokens, "timeliness")
    assert (body["bin_days"], body["limit_days"], len(body["bins"])) == (5, 30, 19)
    assert {b["label"]: (b["letters"], b["expedited"]) for b in body["bins"] if b["letters"]} == {
        "<= 5": (1, 1),
        "26-30": (2, 0),
        "36-40": (1, 0),
        "> 90": (1, 0),
    }
    assert (body["all"]["letters"], body["all"]["median_days"], body["all"]["over_30_days"]) == (6, 30.0, 2)
    assert [p["priority"] for p in body["by_priority"]] == ["Expedited", "Standard"]
    # From 2017: the one letter decided after 126 days.
    late = get(client, tokens, "timeliness", **{"from": "2017-01-01"})
    assert [(b["label"], b["letters"]) for b in late["bins"] if b["letters"]] == [("> 90", 1)]
    assert (late["from"], late["to"], late["all"]["share_over_30_days"]) == ("2017-01-01", None, 1.0)


AQUATIC = ["aquatic therapy", "Rehabilitation", "Physical Therapy/Occupational Therapy (PT/OT)"]
BONE = ["bone density scan", "Diagnostic Testing", "Imaging/Radiology"]
CREAM = ["compounded cream", "Pharmaceuticals", "NSAID"]


def label_figures(body: dict) -> tuple:
    return (
        [(b["basis"], b["items"]) for b in body["bases"]],
        [[r["request"], r["category"], r["subcategory"], r["items"]] for r in body["default_requests"]],
    )


def test_labels(client, tokens, loaded):
    body = get(client, tokens, "labels")
    assert (body["from"], body["to"], body["items"], body["default_items"]) == (None, None, 11, 5)
    assert body["default_share"] == 5 / 11 and body["top"] == 20
    bases, requests = label_figures(body)
    assert bases == [("rule", 4), ("rationale", 1), ("default", 5), (None, 1)]
    # Labelled by default twice each (a variant spelling counts with it), then once.
    assert requests == [[*AQUATIC, 2], [*BONE, 2], [*CREAM, 1]]
    spring = get(client, tokens, "labels", **SPRING)  # CM16-0000502, -503, -504
    assert (spring["from"], spring["to"], spring["items"], spring["default_items"]) == (
        "2016-02-10",
        "2016-04-01",
        5,
        2,
    )
    assert label_figures(spring) == (
        [("rule", 2), ("rationale", 1), ("default", 2)],
        [[*AQUATIC, 1], [*CREAM, 1]],
    )


def test_labels_top_is_capped(client, tokens, loaded):
    assert label_figures(get(client, tokens, "labels", top=1))[1] == [[*AQUATIC, 2]]
    assert get(client, tokens, "labels", top=100)["top"] == 100
    for top in ("0", "101", "all"):
        r = client.get(f"{API}/labels", params={"top": top}, headers=auth(tokens))
        assert r.status_code == 422, (top, r.text)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2016-13-01"}, "'from' must be a date"),
        ({"to": "yesterday"}, "'to' must be a date"),
        ({"from": "2016-04-02", "to": "2016-04-01"}, "must not be after"),
        ({"from": "x" * 41}, None),  # longer than any date: refused before parsing
    ],
)
def test_bad_range_is_422(client, tokens, loaded, params, message):
    for path in ("categories", "pharmaceuticals", "guidelines", "timeliness", "labels"):
        r = client.get(f"{API}/{path}", params=params, headers=auth(tokens))
        assert r.status_code == 422, (path, r.text)
        if message:
            assert message in r.json()["detail"]


def test_range_values_are_never_sql(client, tokens, loaded):
    r = client.get(f"{API}/categories", params={"from": "2016-01-01' OR '1'='1"}, headers=auth(tokens))
    assert r.status_code == 422
    assert get(client, tokens, "categories")["letters"] == 6


# --------------------------------------------------------------------------- the page


def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells of the table with this id."""
    body = re.search(rf'<table id="{table_id}"[^>]*>.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [
        [
            htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_page_shows_charts_and_tables(client, tokens, loaded):
    r = client.get(f"{PREFIX}/insights/", headers=auth(tokens, "viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for chart in ("chart-categories", "chart-pharmaceuticals", "chart-guidelines", "chart-timeliness"):
        assert f'<svg id="{chart}"' in html
    assert 'id="limit-line"' in html and ">30 days</text>" in html
    assert cells(html, "table-categories") == [
        ["Pharmaceuticals", "5", "3", "2", "40.0%"],
        ["Diagnostic Testing", "2", "1", "1", "50.0%"],
        ["Rehabilitation", "2", "1", "1", "50.0%"],
        ["Surgery", "1", "0", "1", "100.0%"],
        ["(not classified)", "1", "1", "0", "0.0%"],
    ]
    assert cells(html, "table-pharmaceuticals") == [
        ["Opioids", "3", "60.0%", "2", "66.7%"],
        ["Muscle Relaxant", "1", "20.0%", "0", "0.0%"],
        ["NSAID", "1", "20.0%", "0", "0.0%"],
    ]
    assert '<tr class="opioid"><td>Opioids</td>' in html and '<g class="row opioid">' in html
    # Families, and under MTUS its titles.
    assert cells(html, "table-guidelines") == [
        ["MTUS", "5", "45.5%", "3", "2", "40.0%"],
        ["Chronic Pain Medical Treatment", "4", "36.4%", "3", "1", "25.0%"],
        ["Opioid Treatment", "2", "18.2%", "0", "2", "100.0%"],
        ["ODG", "3", "27.3%", "0", "3", "100.0%"],
        ["ACOEM", "2", "18.2%", "1", "1", "50.0%"],
    ]
    assert cells(html, "table-timeliness-summary") == [
        ["All letters", "6", "5", "30", "91.6", "2", "40.0%"],
        ["Expedited", "1", "1", "3", "3", "0", "0.0%"],
        ["Standard", "5", "4", "35", "100.2", "2", "50.0%"],
    ]
    days, letters, expedited = cells(html, "table-timeliness")
    assert days[0] == "Days" and days[1:3] == ["<= 5", "6-10"] and days[-1] == "> 90"
    assert letters[1:] == ["1", "0", "0", "0", "0", "2", "0", "1", *["0"] * 10, "1"]
    assert expedited[1:] == ["1", *["0"] * 18]
    assert '<strong id="total-letters">6</strong>' in html
    assert '<strong id="default-share">45.5%</strong> of items (5 of 11)' in html
    assert cells(html, "table-label-basis") == [
        ["rule", "4", "36.4%"],
        ["rationale", "1", "9.1%"],
        ["default", "5", "45.5%"],
        ["(not recorded)", "1", "9.1%"],
    ]
    assert cells(html, "table-default-requests") == [[*AQUATIC, "2"], [*BONE, "2"], [*CREAM, "1"]]


def test_page_date_filter(client, tokens, loaded):
    html = client.get(f"{PREFIX}/insights/", params=SPRING, headers=auth(tokens)).text
    assert 'value="2016-02-10"' in html and 'value="2016-04-01"' in html
    assert '<strong id="total-letters">3</strong>' in html and '<strong id="total-items">5</strong>' in html
    assert [row[:2] for row in cells(html, "table-categories")] == [
        ["Pharmaceuticals", "3"],
        ["Rehabilitation", "1"],
        ["Surgery", "1"],
    ]
    assert cells(html, "table-timeliness-summary")[0] == ["All letters", "3", "3", "30", "38", "1", "33.3%"]
    bad = client.get(f"{PREFIX}/insights/", params={"from": "not-a-date"}, headers=auth(tokens))
    assert bad.status_code == 200 and 'class="error"' in bad.text and "must be a date" in bad.text
    assert 'id="chart-categories"' not in bad.text
    assert cells(html, "table-default-requests") == [[*AQUATIC, "1"], [*CREAM, "1"]]
    empty = client.get(f"{PREFIX}/insights/", params={"to": "2015-12-31"}, headers=auth(tokens)).text
    assert '<strong id="total-letters">0</strong>' in empty and "No items in this range." in empty
    assert "No item in this range was labelled by default." in empty and "table-default-requests" not in empty


def test_page_escapes_names_and_runs_no_script(client, tokens, wh_conn):
    """Category, drug class and guideline names come from letters: they show as text."""
    from datetime import date

    evil = '<script>alert("x")</script>&'
    guideline = {"family": "MTUS", "title": evil, "year": 2009, "sections": None}
    letter = make("CM16-0000999", date(2016, 5, 1), date(2016, 4, 1), None, "Standard", "x", [])
    letter.items = [item(1, "Pharmaceuticals", evil, "Upheld", [guideline], request=evil, basis="default")]
    assert ingest(wh_conn, "r", [obj("v/e.pdf")], [ok("v/e.pdf", letter)]).loaded == 1
    r = client.get(f"{PREFIX}/insights/", headers=auth(tokens))
    html = r.text
    assert "<script" not in html and "alert(&#34;x&#34;)" in html
    # The request text, lower-cased by the query, is in the default-requests table as text.
    assert cells(html, "table-default-requests") == [[evil.lower(), "Pharmaceuticals", evil, "1"]]
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"


def test_static_style_sheet(client, tokens):
    r = client.get(f"{PREFIX}/insights/static/insights.css", headers=auth(tokens, "viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert r.headers["cache-control"] == "private, max-age=300" and ".bar-opioid" in r.text
    assert client.get(f"{PREFIX}/insights/static/monitor.js", headers=auth(tokens)).status_code == 404


# --------------------------------------------------------------------------- authentication and authorization


@pytest.mark.parametrize("path", INSIGHTS_ROUTES)
def test_every_route_needs_an_authenticated_user(client, loaded, path):
    assert client.get(PREFIX + path).status_code == 401
    assert client.get(PREFIX + path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403


@pytest.fixture(scope="module")
def no_role_token(tokens) -> str:
    """A valid token of this deployment for a user without a role: authenticated, may read nothing."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="nobody", role=None))


@pytest.mark.parametrize("path", INSIGHTS_ROUTES)
def test_a_user_without_permission_is_refused(client, no_role_token, loaded, path):
    r = client.get(PREFIX + path, headers={"Authorization": f"Bearer {no_role_token}"})
    assert r.status_code == 403, r.text


@pytest.mark.parametrize("path", INSIGHTS_ROUTES)
def test_reading_is_the_monitors_permission(client, tokens, loaded, path, monkeypatch):
    """What is checked is the monitor's read permission: GET on imr_ingest_nightly's task instances."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    asked, original = [], SimpleAuthManager.is_authorized_dag

    def spy(self, *, method, user, access_entity=None, details=None):
        asked.append((method, access_entity.name if access_entity else None, details.id if details else None))
        return original(self, method=method, user=user, access_entity=access_entity, details=details)

    monkeypatch.setattr(SimpleAuthManager, "is_authorized_dag", spy)
    assert client.get(PREFIX + path, headers=auth(tokens, "viewer")).status_code == 200
    assert asked == [("GET", "TASK_INSTANCE", "imr_ingest_nightly")]


def test_viewer_and_admin_read(client, tokens, loaded):
    for role in ("viewer", "admin"):
        assert get(client, tokens, "categories", role)["letters"] == 6
        assert client.get(f"{PREFIX}/insights/", headers=auth(tokens, role)).status_code == 200


def test_session_cookie_is_accepted(client, tokens, loaded):
    client.cookies.set("_token", tokens["viewer"])
    assert client.get(f"{API}/timeliness").json()["all"]["letters"] == 6


def test_page_without_session_redirects_to_login(client):
    r = client.get(f"{PREFIX}/insights/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and "/auth/login" in r.headers["location"]
    # The JSON API answers 401 whatever the Accept header.
    r = client.get(f"{API}/categories", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 401


# --------------------------------------------------------------------------- registration


def test_plugin_registers_the_insights_nav_entry(client, tokens):
    r = client.get("/api/v2/plugins", headers=auth(tokens))
    assert r.status_code == 200, r.text
    [plugin] = [p for p in r.json()["plugins"] if p["name"] == "imr_monitor"]
    nav = [v for v in plugin["external_views"] if v["destination"] == "nav"]
    assert [(v["name"], v["href"], v["url_route"]) for v in nav] == [
        ("IMR Ingestion", f"{PREFIX}/", "imr-ingestion"),
        ("IMR Insights", f"{PREFIX}/insights/", "imr-insights"),
    ]
    # Top level: the UI does not fold the two entries into a "Plugins" menu.
    assert nav[1]["nav_top_level"] is True


def test_slow_read_answers_503(client, tokens, loaded, pg_dsn, monkeypatch):
    """Issue 15, finding 5: the Insights reads run under the UI's statement timeout too; a read stuck
    behind a lock another session holds on imr.letters is cancelled and the route answers 503."""
    import threading

    import psycopg2

    monkeypatch.setenv("IMR_UI_STATEMENT_TIMEOUT_MS", "300")
    holder = psycopg2.connect(pg_dsn)
    # Released after 20 s whatever happens: without a timeout the read fails the test, not hangs.
    release = threading.Timer(20, holder.rollback)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE imr.letters IN ACCESS EXCLUSIVE MODE")
        release.start()
        for path in ("/api/insights/categories", "/insights/"):
            r = client.get(PREFIX + path, headers=auth(tokens, "viewer"))
            assert r.status_code == 503, (path, r.status_code, r.text[:200])
            assert "did not answer in time" in r.json()["detail"]
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
    # Lock released: the same read answers.
    assert get(client, tokens, "categories")["letters"] == 6
