"""Every panel's SQL, expanded as the plugin expands it, on what the pipeline wrote.

The demo fleet goes through a real worker on the real broker into the real
ClickHouse engine (chdb); each panel and variable query then runs there with
the dashboard's variables set to All.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from models.fleet import RUNAWAY_CALL_USD, RUNAWAY_LINKS, FleetTally, fleet_tasks, tally
from models.grafana_sql import ALL, QueryContext, VariableValue
from streams.dashboards import (
    Answer,
    PanelSql,
    load_dashboards,
    panel_queries,
    run,
    variable_queries,
)
from streams.demo_grants import charged_events, wait_settled
from streams.fleet import send_fleet
from streams.store import Store
from tests.integration.harness import (
    WorkerProcess,
    free_port,
    isolated_env,
    settings_of,
)
from tests.integration.shadow_client import wait_learnt

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARDS = load_dashboards()
PANELS = [q for d in DASHBOARDS.values() for q in panel_queries(d)]
VARIABLES = [q for d in DASHBOARDS.values() for q in variable_queries(d)]
ALL_SELECTED = {
    v["name"]: [ALL] for d in DASHBOARDS.values() for v in d["templating"]["list"]
}

SPEND_OVER_TIME = {"department", "agent", "model"}
COLUMNS = {
    "spendstream-spend: Spend": ["spend_usd"],
    "spendstream-spend: Events": ["events"],
    "spendstream-spend: Sessions": ["sessions"],
    "spendstream-spend: Peak minute": ["peak_usd_per_min"],
    **{
        f"spendstream-spend: Spend by {by}": ["time", by, "spend_usd"]
        for by in SPEND_OVER_TIME
    },
    **{
        f"spendstream-spend: Spend rate by {by} (USD/s)": ["time", by, "usd_per_s"]
        for by in SPEND_OVER_TIME
    },
    "spendstream-spend: Top sessions": [
        "session_id",
        "department",
        "agents",
        "events",
        "spend_usd",
        "first_minute",
        "last_minute",
    ],
    "spendstream-breaker: Trips": ["trips"],
    "spendstream-breaker: Frozen now": ["frozen_sessions"],
    "spendstream-breaker: Spend stopped at trips": ["spend_usd"],
    "spendstream-breaker: Trips by rule": ["time", "rule", "trips"],
    "spendstream-breaker: Trips by agent": ["time", "agent", "trips"],
    "spendstream-breaker: Sessions frozen now": [
        "session_id",
        "department",
        "agent",
        "rule",
        "frozen_at",
        "window_s",
        "spend_usd",
        "threshold_usd",
    ],
    "spendstream-breaker: Recent trips": [
        "ts",
        "session_id",
        "department",
        "agent",
        "rule",
        "window_s",
        "spend_usd",
        "threshold_usd",
    ],
    "spendstream-grants: Balance held in grants": ["balance_usd"],
    "spendstream-grants: Grants exhausted": ["exhausted_grants"],
    "spendstream-grants: Refusals": ["refusals"],
    "spendstream-grants: Balances": [
        "grant_id",
        "parent_id",
        "balance_usd",
        "last_change",
        "updated_at",
    ],
    "spendstream-grants: Balance over time": ["time", "grant_id", "balance_usd"],
    "spendstream-grants: Exhausted grants": ["grant_id", "parent_id", "exhausted_at"],
    "spendstream-grants: Refusals over time": ["time", "refusals"],
    "spendstream-chargeback: Charged across departments": ["amount_usd"],
    "spendstream-chargeback: Cross-department entries": ["entries"],
    "spendstream-chargeback: Internal spend": ["amount_usd"],
    "spendstream-chargeback: Flows between departments per month": [
        "period",
        "payer",
        "payee",
        "entries",
        "amount_usd",
    ],
    "spendstream-chargeback: Net positions": [
        "period",
        "department",
        "charged_to_others_usd",
        "charged_by_others_usd",
        "net_usd",
    ],
    "spendstream-chargeback: Net position by month": ["time", "department", "net_usd"],
    "spendstream-shadow: Tasks scored": ["tasks"],
    "spendstream-shadow: Mean absolute error, cost": ["cost_abs_error_usd"],
    "spendstream-shadow: Cost interval coverage": ["cost_coverage"],
    "spendstream-shadow: Model version": ["model_version"],
    "spendstream-shadow: Predicted and actual cost per task": [
        "time",
        "predicted_cost_usd",
        "actual_cost_usd",
    ],
    "spendstream-shadow: Predicted and actual steps and tokens": [
        "time",
        "predicted_steps",
        "actual_steps",
        "predicted_tokens",
        "actual_tokens",
    ],
    "spendstream-shadow: Relative error": [
        "time",
        "steps_error",
        "tokens_error",
        "cost_error",
    ],
    "spendstream-shadow: Interval coverage": [
        "time",
        "steps_coverage",
        "tokens_coverage",
        "cost_coverage",
    ],
    "spendstream-shadow: Recent predictions": [
        "ts",
        "task_id",
        "agent",
        "model_version",
        "predicted_cost_usd",
        "predicted_cost_usd_lower",
        "predicted_cost_usd_upper",
        "actual_cost_usd",
        "cost_covered",
        "predicted_steps",
        "actual_steps",
        "predicted_tokens",
        "actual_tokens",
    ],
}
"""The columns each panel reads, by `dashboard uid: panel title`."""


@dataclass(frozen=True)
class Demo:
    """The store a worker wrote from the demo fleet, and the fleet's own sums."""

    store: Store
    expected: FleetTally
    time_from: datetime
    time_to: datetime

    def context(self, **selected: VariableValue) -> QueryContext:
        variables = {**ALL_SELECTED, **selected}
        return QueryContext(self.time_from, self.time_to, 60_000, variables)


@pytest.fixture(scope="module")
def demo(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """Send the fleet through a worker; open its store once the worker stopped."""
    folder: Path = tmp_path_factory.mktemp("dashboards")
    env = isolated_env(kafka, f"t{uuid.uuid4().hex[:10]}.", folder)
    env["SPENDSTREAM_SHADOW_PUBLISH_TASKS"] = "10"  # model versions above 0
    worker = WorkerProcess.start(env, free_port(), folder / "worker.log")
    try:
        settings = settings_of(env)
        records = send_fleet(settings, 40, 7, Console(quiet=True))
        worker.wait_caught_up(len(records))
        base_url = f"http://127.0.0.1:{worker.port}"
        assert wait_settled(settings, base_url, charged_events(records))
        wait_learnt(worker, len(fleet_tasks(records)) // 2)
        assert worker.stop() == 0
    finally:
        worker.kill()
    store = Store.open(settings.clickhouse)
    first = min(record.at for record in records)
    now = datetime.now(UTC)
    yield Demo(store, tally(records), first - timedelta(minutes=5), now)
    store.close()


def holds_data(answer: Answer) -> bool:
    """Rows, and (for a stat's single row) a number that is neither 0 nor NaN."""
    numbers = [
        value
        for row in answer.rows
        for value in row
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    ]
    return bool(answer.rows) and (
        len(answer.rows) > 1 or any(n == n and n != 0 for n in numbers)
    )


def check_holds_data(query: PanelSql, answer: Answer) -> None:
    assert holds_data(answer), f"{query} shows nothing for the demo: {answer.rows}"


def test_every_panel_has_its_columns_listed() -> None:
    assert sorted(map(str, PANELS)) == sorted(COLUMNS)


@pytest.mark.parametrize("query", PANELS, ids=str)
def test_panel_sql_runs_and_shows_the_demo(demo: Demo, query: PanelSql) -> None:
    answer = run(demo.store, query, demo.context())
    assert answer.columns == COLUMNS[str(query)]
    if query.kind == "timeseries":
        assert all(isinstance(row[0], datetime) for row in answer.rows)
        assert [row[0] for row in answer.rows] == sorted(r[0] for r in answer.rows)
    check_holds_data(query, answer)


@pytest.mark.parametrize("query", VARIABLES, ids=str)
def test_variable_sql_lists_the_demo_values(demo: Demo, query: PanelSql) -> None:
    answer = run(demo.store, query, demo.context())
    assert len(answer.columns) == 1
    assert all(isinstance(row[0], str) and row[0] for row in answer.rows)
    check_holds_data(query, answer)


def panel(title: str) -> PanelSql:
    [found] = [q for q in PANELS + VARIABLES if str(q) == title]
    return found


def test_spend_panels_add_up_to_what_the_fleet_spent(demo: Demo) -> None:
    ctx = demo.context()
    [[spend_usd]] = run(demo.store, panel("spendstream-spend: Spend"), ctx).rows
    [[events]] = run(demo.store, panel("spendstream-spend: Events"), ctx).rows
    assert (spend_usd, events) == (demo.expected.cost_usd, demo.expected.counted)

    by_department: dict[str, Decimal] = {}
    over_time = run(demo.store, panel("spendstream-spend: Spend by department"), ctx)
    for _, department, usd in over_time.rows:
        by_department[department] = by_department.get(department, Decimal(0)) + usd
    assert by_department == demo.expected.by_principal_usd


def test_a_department_and_agent_narrow_the_panels_to_their_sessions(
    demo: Demo,
) -> None:
    ctx = demo.context(department=["research"], agent=["deep-researcher"])
    runaway_usd = RUNAWAY_LINKS * 2 * RUNAWAY_CALL_USD
    [[spend_usd]] = run(demo.store, panel("spendstream-spend: Spend"), ctx).rows
    top = run(demo.store, panel("spendstream-spend: Top sessions"), ctx).rows
    sessions = run(demo.store, panel("spendstream-spend: $session"), ctx).rows
    assert spend_usd == runaway_usd
    assert [(row[2], row[4]) for row in top] == [("deep-researcher", runaway_usd)]
    assert [row[0] for row in sessions] == [top[0][0]]
