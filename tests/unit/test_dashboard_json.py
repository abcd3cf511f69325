"""The dashboards in `dashboards/` are well-formed for Grafana and the plugin.

What runs the SQL on the engine is `tests/integration/test_dashboards.py`.
"""

import json
import re
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.grafana_sql import ALL, QueryContext, expand

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
PROVISIONING = DASHBOARDS / "provisioning"
PLUGIN = "grafana-clickhouse-datasource"
THEMES = {"spend", "breaker", "grants", "chargeback", "shadow"}
FORMATS = {"timeseries": 0, "table": 1}
"""The plugin's query types and the Grafana formats it sends with them."""

Dashboard = dict[str, Any]


def load() -> dict[str, Dashboard]:
    return {p.stem: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")}


def panels(dashboard: Dashboard) -> list[dict[str, Any]]:
    return [
        nested
        for panel in dashboard["panels"]
        for nested in [panel, *panel.get("panels", [])]
    ]


def queries(dashboard: Dashboard) -> list[str]:
    sql = [t["rawSql"] for p in panels(dashboard) for t in p.get("targets", [])]
    return sql + [v["query"] for v in dashboard["templating"]["list"]]


def provisioned_datasource() -> dict[str, Any]:
    config = yaml.safe_load(
        (PROVISIONING / "datasources" / "clickhouse.yaml").read_text()
    )
    [datasource] = config["datasources"]
    return dict(datasource)


DASHBOARD_ITEMS = sorted(load().items())


def test_one_dashboard_per_theme_with_unique_uids_and_titles() -> None:
    dashboards = load()
    assert set(dashboards) == THEMES
    uids = [d["uid"] for d in dashboards.values()]
    titles = [d["title"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid) for uid in uids)


def test_the_datasource_is_the_plugin_with_a_fixed_uid() -> None:
    datasource = provisioned_datasource()
    assert datasource["type"] == PLUGIN
    assert datasource["jsonData"]["defaultDatabase"] == "spendstream"
    assert "password" in datasource["secureJsonData"]


@pytest.mark.parametrize(("name", "dashboard"), DASHBOARD_ITEMS)
def test_versions_are_integers_grafana_migrates_from(
    name: str, dashboard: Dashboard
) -> None:
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36, "datasource references as objects"
    assert isinstance(dashboard["version"], int) and dashboard["version"] >= 1


@pytest.mark.parametrize(("name", "dashboard"), DASHBOARD_ITEMS)
def test_every_query_uses_the_provisioned_datasource(
    name: str, dashboard: Dashboard
) -> None:
    want = {"type": PLUGIN, "uid": provisioned_datasource()["uid"]}
    users = [*panels(dashboard), *dashboard["templating"]["list"]]
    users += [t for p in panels(dashboard) for t in p.get("targets", [])]
    assert users
    for user in users:
        assert user["datasource"] == want, user.get("title") or user.get("name")


@pytest.mark.parametrize(("name", "dashboard"), DASHBOARD_ITEMS)
def test_panels_have_unique_ids_titles_and_places_that_do_not_overlap(
    name: str, dashboard: Dashboard
) -> None:
    found = panels(dashboard)
    ids, titles = [p["id"] for p in found], [p["title"] for p in found]
    assert len(set(ids)) == len(ids) and len(set(titles)) == len(titles)
    for panel in found:
        grid = panel["gridPos"]
        assert {k: type(grid[k]) for k in "hwxy"} == dict.fromkeys("hwxy", int)
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
    for a, b in combinations([p["gridPos"] for p in found], 2):
        apart_x = a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
        apart_y = a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
        assert apart_x or apart_y, (a, b)


@pytest.mark.parametrize(("name", "dashboard"), DASHBOARD_ITEMS)
def test_targets_are_sql_with_the_format_of_their_query_type(
    name: str, dashboard: Dashboard
) -> None:
    for panel in panels(dashboard):
        [target] = panel["targets"]
        assert target["refId"] == "A" and target["editorType"] == "sql"
        assert target["format"] == FORMATS[target["queryType"]], panel["title"]
        if panel["type"] == "timeseries":
            assert target["queryType"] == "timeseries", panel["title"]


@pytest.mark.parametrize(("name", "dashboard"), DASHBOARD_ITEMS)
def test_variables_are_defined_and_used(name: str, dashboard: Dashboard) -> None:
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    used = {
        name
        for sql in queries(dashboard)
        for name in re.findall(r"\$\{?([a-z]\w*)", sql)
    }
    assert used == defined
    for variable in dashboard["templating"]["list"]:
        assert variable["multi"] and variable["includeAll"], variable["name"]


@pytest.mark.parametrize(("name", "dashboard"), DASHBOARD_ITEMS)
def test_every_query_expands_with_the_plugin_macros(
    name: str, dashboard: Dashboard
) -> None:
    variables = {v["name"]: [ALL] for v in dashboard["templating"]["list"]}
    november = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    ctx = QueryContext(*november, interval_ms=60_000, variables=variables)
    for sql in queries(dashboard):
        expanded = expand(sql, ctx)
        assert "$" not in expanded, expanded
        assert "spendstream." in expanded, "tables are named with their database"
