"""The Grafana dashboards in `dashboards/`: their SQL, and running it on the store.

Grafana runs a panel's SQL through the ClickHouse plugin; `run` expands it the
same way (`models.grafana_sql`) and runs it on a `Store`, so tests see what a
panel would show.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.grafana_sql import QueryContext, expand
from streams.store import Store

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS_DIR = ROOT / "dashboards"
DATASOURCE_UID = "spendstream-clickhouse"
"""The uid under which `dashboards/provisioning` provisions ClickHouse."""


@dataclass(frozen=True)
class PanelSql:
    """One query of a dashboard: a panel's target or a variable's query."""

    dashboard: str
    title: str
    kind: str
    sql: str

    def __str__(self) -> str:
        return f"{self.dashboard}: {self.title}"


@dataclass(frozen=True)
class Answer:
    """What the panel receives: column names and rows."""

    columns: list[str]
    rows: list[Any]


def load_dashboards(folder: Path = DASHBOARDS_DIR) -> dict[str, dict[str, Any]]:
    """Every dashboard JSON in `folder`, by file stem."""
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted(folder.glob("*.json"))
    }


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, the ones inside collapsed rows included."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def panel_queries(dashboard: dict[str, Any]) -> list[PanelSql]:
    """The SQL of every panel target."""
    return [
        PanelSql(dashboard["uid"], panel["title"], panel["type"], target["rawSql"])
        for panel in panels_of(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[PanelSql]:
    """The SQL of every query variable."""
    return [
        PanelSql(dashboard["uid"], f"${var['name']}", "variable", _sql_of(var))
        for var in dashboard.get("templating", {}).get("list", [])
        if var.get("type") == "query"
    ]


def _sql_of(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return str(query if isinstance(query, str) else query["rawSql"])


def run(store: Store, query: PanelSql, ctx: QueryContext) -> Answer:
    """Expand `query` as the plugin would under `ctx` and run it on `store`."""
    columns, rows = store.query_table(expand(query.sql, ctx))
    return Answer(columns, rows)
