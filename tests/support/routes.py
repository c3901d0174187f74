"""The Insights page's routes (plugins/imr_monitor/insights.py), one list for the tests that walk them
all: in-process (test_insights_api.py) and on the native stack (stack/test_stack_auth.py)."""

INSIGHTS_ROUTES = (
    "/insights/",
    "/insights/static/insights.css",
    "/api/insights/categories",
    "/api/insights/pharmaceuticals",
    "/api/insights/guidelines",
    "/api/insights/timeliness",
    "/api/insights/labels",
)
