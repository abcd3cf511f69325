"""The double-entry chargeback ledger: one entry per cost event.

The paying department (`principal`) is debited, the department owning the agent
(`owner`) is credited, by the event's cost. When both are the same department
the entry is internal: booked and kept in spend, left out of chargebacks.

>>> from datetime import UTC, datetime
>>> from decimal import Decimal
>>> event = CostEvent(event_id="e-1", ts=datetime(2026, 11, 2, tzinfo=UTC),
...     session_id="s-1", agent="database", principal="marketing",
...     owner="engineering", cost_usd=Decimal("0.05"))
>>> entry = Bookkeeper().book(event)
>>> entry.debit, entry.credit, entry.amount_usd, entry.period, entry.internal
('marketing', 'engineering', Decimal('0.050000000'), '2026-11', False)
"""

import uuid
from datetime import datetime
from typing import Any

from models.events import CostEvent
from models.periods import (
    DEFAULT_CUTOFF_S,
    Placement,
    check_cutoff,
    place_in_period,
)
from models.records import LedgerEntry

LEDGER_NAMESPACE = uuid.UUID("c562066e-0820-4eab-a8e3-c47d6c5cb68a")
"""Fixed for good: changing it would give every replayed event a new entry id."""


def entry_id_for(event_id: str) -> str:
    """The entry id of an event's ledger entry: the same on every replay.

    >>> entry_id_for("e-1") == entry_id_for("e-1") != entry_id_for("e-2")
    True
    """
    return str(uuid.uuid5(LEDGER_NAMESPACE, event_id))


def entry_for(event: CostEvent, placement: Placement) -> LedgerEntry:
    """The ledger entry for a priced `event`, booked where `placement` says."""
    return LedgerEntry(
        entry_id=entry_id_for(event.event_id),
        ts=event.ts,
        period=placement.period,
        adjusts=placement.adjusts,
        debit=event.payer,
        credit=event.payee,
        amount_usd=event.cost,
        event_id=event.event_id,
        agent=event.agent,
        model=event.model,
        internal=event.payer == event.payee,
    )


def ledger_keys(entry: LedgerEntry) -> tuple[str, ...]:
    """The departments whose positions `entry` moves: the keys on `spend.ledger`.

    An entry between two departments is published once under each, so that
    each department's partition sees both its debits and its credits.
    """
    if entry.internal:
        return (entry.debit,)
    return (entry.debit, entry.credit)


class Bookkeeper:
    """Books the events of one partition, keeping its watermark.

    The watermark is the highest event time seen on the partition; lateness is
    judged against it, never against the wall clock, so a backfill is booked
    as it happened. Keep one per input partition, and store `to_dict()` with
    the partition's other state: a replay that starts from a lost watermark
    can book a late event in its own period rather than as an adjustment (the
    entry id stays the same, so nothing is counted twice).
    """

    def __init__(
        self, cutoff_s: float = DEFAULT_CUTOFF_S, watermark: datetime | None = None
    ) -> None:
        check_cutoff(cutoff_s)
        self.cutoff_s = cutoff_s
        self.watermark = watermark

    def book(self, event: CostEvent) -> LedgerEntry:
        """Advance the watermark to `event.ts` if later, then book the event."""
        if self.watermark is None or event.ts > self.watermark:
            self.watermark = event.ts
        placement = place_in_period(event.ts, self.watermark, self.cutoff_s)
        return entry_for(event, placement)

    def to_dict(self) -> dict[str, Any]:
        """The state to keep between runs, JSON-ready."""
        mark = None if self.watermark is None else self.watermark.isoformat()
        return {"watermark": mark}

    @classmethod
    def from_dict(
        cls, value: dict[str, Any], cutoff_s: float = DEFAULT_CUTOFF_S
    ) -> "Bookkeeper":
        """Restore a `Bookkeeper` from `to_dict()`; the cut-off is configuration."""
        mark = value.get("watermark")
        watermark = None if mark is None else datetime.fromisoformat(mark)
        return cls(cutoff_s=cutoff_s, watermark=watermark)
