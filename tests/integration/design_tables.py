"""DESIGN.md's ClickHouse tables that `streams/schema.py` does not create yet.

The dashboards read them; until the capability that writes a table lands, the
tests create it from DESIGN.md's columns (named as the writer's records name
them) so the panels' SQL runs, and skip only the check that it holds data.
A table leaves `PENDING` by itself once `schema.TABLES` creates it.
"""

import re

from streams import schema

DESIGN_DDL = {
    "breaker_trips": """
        CREATE TABLE IF NOT EXISTS {db}.breaker_trips (
            trip_id String, ts DateTime64(3, 'UTC'), session_id String,
            agent String, principal String, rule String, window_s Float64,
            spend_usd Decimal(38, 9), threshold_usd Decimal(38, 9)
        ) ENGINE = ReplacingMergeTree ORDER BY trip_id""",
    "grant_activity": """
        CREATE TABLE IF NOT EXISTS {db}.grant_activity (
            ts DateTime64(3, 'UTC'), grant_id String, parent_id String,
            kind String, amount_usd Decimal(38, 9), balance_usd Decimal(38, 9)
        ) ENGINE = MergeTree ORDER BY (grant_id, ts)""",
    "ledger_entries": """
        CREATE TABLE IF NOT EXISTS {db}.ledger_entries (
            entry_id String, ts DateTime64(3, 'UTC'), period String,
            debit String, credit String, amount_usd Decimal(38, 9),
            event_id String, agent String, internal Bool, adjusts String
        ) ENGINE = ReplacingMergeTree ORDER BY entry_id""",
    "shadow_predictions": """
        CREATE TABLE IF NOT EXISTS {db}.shadow_predictions (
            task_id String, ts DateTime64(3, 'UTC'), agent String,
            model_version UInt64,
            predicted_steps Float64, predicted_steps_lower Float64,
            predicted_steps_upper Float64, actual_steps UInt64,
            predicted_tokens Float64, predicted_tokens_lower Float64,
            predicted_tokens_upper Float64, actual_tokens UInt64,
            predicted_cost_usd Decimal(38, 9),
            predicted_cost_usd_lower Decimal(38, 9),
            predicted_cost_usd_upper Decimal(38, 9), actual_cost_usd Decimal(38, 9)
        ) ENGINE = ReplacingMergeTree ORDER BY task_id""",
}

WRITERS = {
    "breaker_trips": "the circuit breaker (issue 3)",
    "grant_activity": "the budget grants (issue 4)",
    "ledger_entries": "the chargeback ledger (issue 5)",
    "shadow_predictions": "the shadow model (issue 6)",
}


def schema_tables() -> set[str]:
    """The tables `streams/schema.py` creates."""
    return {
        match
        for ddl in schema.TABLES
        for match in re.findall(r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)", ddl)
    }


PENDING = sorted(set(DESIGN_DDL) - schema_tables())
"""DESIGN.md tables whose writer has not landed: the tests create them empty."""


def ddl_of(table: str) -> str:
    """The table's DDL: the writer's from `schema.TABLES`, else DESIGN.md's."""
    pattern = re.compile(rf"CREATE TABLE IF NOT EXISTS \{{db\}}\.{table}\b")
    for ddl in schema.TABLES:
        if pattern.search(ddl):
            return ddl
    return DESIGN_DDL[table]


def pending_reason(table: str) -> str:
    """Why a panel on `table` may be empty: no writer yet."""
    return (
        f"{table} is not in streams/schema.py yet: nothing writes it until "
        f"{WRITERS[table]} lands; its panels' SQL ran, their data is not checked"
    )
