"""Panels' numbers on hand-made rows of the breaker, grants, ledger and shadow tables.

Frozen sessions, balances, net positions, coverage, on the tables as
`streams/schema.py` creates them.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from models.grafana_sql import ALL, QueryContext, VariableValue
from streams.dashboards import load_dashboards, panel_queries, run
from streams.store import Store

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PANELS = {str(q): q for d in load_dashboards().values() for q in panel_queries(d)}


def minutes_ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"chdb://{tmp_path / 'store'}")
    yield store
    store.close()


def insert(store: Store, table: str, rows: list[dict[str, Any]]) -> None:
    """One INSERT; a replayed row comes in an INSERT of its own, as it would."""
    names = list(rows[0])
    values = [[row[name] for name in names] for row in rows]
    store.client.insert(f"{store.db}.{table}", values, column_names=names)


def rows(store: Store, title: str, **selected: VariableValue) -> list[Any]:
    variables = {"department": [ALL], "agent": [ALL], "session": [ALL]}
    variables |= {"grant": [ALL], **selected}
    ctx = QueryContext(minutes_ago(60), NOW, 60_000, variables)
    return run(store, PANELS[title], ctx).rows


def trip(trip_id: str, session_id: str, agent: str, rule: str, ago: float) -> Any:
    return {
        "trip_id": trip_id,
        "ts": minutes_ago(ago),
        "session_id": session_id,
        "agent": agent,
        "principal": "research" if agent else "",
        "rule": rule,
        "window_s": 60.0,
        "spend_usd": Decimal("30.3"),
        "threshold_usd": Decimal("25"),
    }


def test_a_session_is_frozen_until_its_latest_decision_is_an_unfreeze(
    store: Store,
) -> None:
    insert(
        store,
        "breaker_trips",
        [
            trip("t1", "sess-a", "deep-researcher", "absolute", 50),
            trip("t2", "sess-b", "calendar-bot", "relative", 40),
            trip("t3", "sess-b", "", "unfreeze", 30),  # an unfreeze names no agent
            trip("t4", "sess-c", "ci-fixer", "absolute", -10),  # after the range
        ],
    )
    replayed = [trip("t1", "sess-a", "deep-researcher", "absolute", 50)]
    insert(store, "breaker_trips", replayed)
    frozen = rows(store, "spendstream-breaker: Sessions frozen now")
    assert [row[0] for row in frozen] == ["sess-a"]
    assert rows(store, "spendstream-breaker: Frozen now") == [(1,)]
    assert rows(store, "spendstream-breaker: Trips") == [(2,)]
    bot = {"agent": ["calendar-bot"]}
    assert rows(store, "spendstream-breaker: Sessions frozen now", **bot) == []


def entry(entry_id: str, debit: str, credit: str, usd: str, period: str) -> Any:
    return {
        "entry_id": entry_id,
        "ts": minutes_ago(20),
        "period": period,
        "debit": debit,
        "credit": credit,
        "amount_usd": Decimal(usd),
        "event_id": f"ev-{entry_id}",
        "agent": "db-agent",
        "internal": debit == credit,
    }


def test_flows_and_net_positions_of_the_month_count_each_entry_once(
    store: Store,
) -> None:
    november = [
        entry("e1", "marketing", "engineering", "0.05", "2026-11"),
        entry("e2", "marketing", "engineering", "0.05", "2026-11"),
        entry("e3", "support", "engineering", "1.00", "2026-11"),
        entry("e4", "marketing", "marketing", "0.50", "2026-11"),
    ]
    october = [entry("e5", "engineering", "finance", "2.00", "2026-10")]
    insert(store, "ledger_entries", november + october)
    replayed = [entry("e1", "marketing", "engineering", "0.05", "2026-11")]
    insert(store, "ledger_entries", replayed)

    flows = rows(store, "spendstream-chargeback: Flows between departments per month")
    assert flows == [
        ("2026-11", "support", "engineering", 1, Decimal("1.00")),
        ("2026-11", "marketing", "engineering", 2, Decimal("0.10")),
    ]
    net = rows(store, "spendstream-chargeback: Net positions")
    assert [(row[1], row[4]) for row in net] == [
        ("engineering", Decimal("1.10")),
        ("marketing", Decimal("-0.10")),
        ("support", Decimal("-1.00")),
    ]
    assert sum(row[4] for row in net) == 0
    assert rows(store, "spendstream-chargeback: Internal spend") == [(Decimal("0.5"),)]


def prediction(task_id: str, cost_usd: str, ago: float) -> Any:
    return {
        "task_id": task_id,
        "ts": minutes_ago(ago),
        "agent": "build-worker",
        "model_version": 3,
        "predicted_steps": 4.0,
        "predicted_steps_lower": 2.0,
        "predicted_steps_upper": 6.0,
        "actual_steps": 5,
        "predicted_tokens": 9000.0,
        "predicted_tokens_lower": 5000.0,
        "predicted_tokens_upper": 14000.0,
        "actual_tokens": 12000,
        "predicted_cost_usd": Decimal("0.10"),
        "predicted_cost_usd_lower": Decimal("0.05"),
        "predicted_cost_usd_upper": Decimal("0.20"),
        "actual_cost_usd": Decimal(cost_usd),
    }


def test_error_and_coverage_are_those_of_the_tasks(store: Store) -> None:
    insert(
        store,
        "shadow_predictions",
        [
            prediction("task-1", "0.12", 30),
            prediction("task-2", "0.40", 20),
        ],
    )
    insert(store, "shadow_predictions", [prediction("task-1", "0.12", 30)])
    assert rows(store, "spendstream-shadow: Tasks scored") == [(2,)]
    [[error_usd]] = rows(store, "spendstream-shadow: Mean absolute error, cost")
    assert error_usd == pytest.approx(0.16)
    assert rows(store, "spendstream-shadow: Cost interval coverage") == [(0.5,)]


def activity(grant_id: str, parent_id: str, kind: str, balance: str, ago: int) -> Any:
    return {
        "row_id": f"{kind}/{ago}",
        "ts": minutes_ago(ago),
        "grant_id": grant_id,
        "parent_id": parent_id,
        "kind": kind,
        "amount_usd": Decimal(0),
        "balance_usd": Decimal(balance),
    }


def test_balances_are_the_latest_and_exhaustion_and_refusals_counted(
    store: Store,
) -> None:
    insert(
        store,
        "grant_activity",
        [
            activity("g-team", "", "open", "10", 50),
            activity("g-1", "g-team", "open", "1", 45),
            activity("g-team", "", "fund_out", "9", 45),
            activity("g-1", "g-team", "spend", "0.25", 40),
            activity("g-1", "g-team", "exhausted", "0", 35),
            activity("g-1", "g-team", "refused", "0", 30),
            activity("g-1", "g-team", "refused", "0", 29),
        ],
    )
    balances = rows(store, "spendstream-grants: Balances")
    assert [(row[0], row[2], row[3]) for row in balances] == [
        ("g-team", Decimal("9"), "fund_out"),
        ("g-1", Decimal("0"), "refused"),
    ]
    assert rows(store, "spendstream-grants: Balance held in grants") == [
        (Decimal("9"),)
    ]
    exhausted = rows(store, "spendstream-grants: Exhausted grants")
    assert [row[:2] for row in exhausted] == [("g-1", "g-team")]
    assert rows(store, "spendstream-grants: Refusals") == [(2,)]
