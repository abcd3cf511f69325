"""JSON Schemas of the contract's records, for gateways and consumers."""

from typing import Any

from models.events import CostEvent
from models.records import (
    AdminCommand,
    BreakerTrip,
    DlqRecord,
    GrantCommand,
    GrantStatus,
    LedgerEntry,
    TaskRecord,
)
from models.validation import Record

RECORDS: dict[str, type[Record]] = {
    "cost-event": CostEvent,
    "grant-command": GrantCommand,
    "task-record": TaskRecord,
    "admin-command": AdminCommand,
    "breaker-trip": BreakerTrip,
    "grant-status": GrantStatus,
    "ledger-entry": LedgerEntry,
    "dlq-record": DlqRecord,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Each record's JSON Schema as it is accepted on the wire.

    >>> sorted(json_schemas()["cost-event"]["required"])[:3]
    ['agent', 'event_id', 'principal']
    """
    return {name: model.model_json_schema() for name, model in RECORDS.items()}
