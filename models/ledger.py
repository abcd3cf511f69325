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

import hashlib
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from models.events import CostEvent
from models.periods import (
    DEFAULT_CUTOFF_S,
    Placement,
    check_cutoff,
    closes_at,
    next_period,
    oldest_open_period,
    period_of,
    period_start,
)
from models.records import LedgerEntry

LEDGER_NAMESPACE = uuid.UUID("c562066e-0820-4eab-a8e3-c47d6c5cb68a")
"""Fixed for good: changing it would give every replayed event a new entry id."""

_NAMESPACE_BYTES = LEDGER_NAMESPACE.bytes


def entry_id_for(event_id: str) -> str:
    """The entry id of an event's ledger entry: the same on every replay.

    It is `uuid.uuid5(LEDGER_NAMESPACE, event_id)`, spelled out because the
    `uuid` module's objects cost a third of booking an event.

    >>> entry_id_for("e-1") == str(uuid.uuid5(LEDGER_NAMESPACE, "e-1"))
    True
    >>> entry_id_for("e-1") == entry_id_for("e-1") != entry_id_for("e-2")
    True
    """
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + event_id.encode()).digest()[:16])
    raw[6] = raw[6] & 0x0F | 0x50  # version 5
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    hex_ = raw.hex()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def entry_for(
    event: CostEvent,
    placement: Placement,
    source: str | None = None,
    source_seq: int | None = None,
) -> LedgerEntry:
    """The ledger entry for a priced `event`, booked where `placement` says.

    `source` and `source_seq` say where and in which order it was booked (see
    `Bookkeeper`); entries made by hand or in tests may leave them out.
    """
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
        source=source,
        source_seq=source_seq,
    )


def ledger_keys(entry: LedgerEntry) -> tuple[str, ...]:
    """The departments whose positions `entry` moves: the keys on `spend.ledger`.

    An entry between two departments is published once under each, so that
    each department's partition sees both its debits and its credits.
    """
    if entry.internal:
        return (entry.debit,)
    return (entry.debit, entry.credit)


class _Month(NamedTuple):
    """A period and its closed-open span of time."""

    period: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, ts: datetime) -> "_Month":
        period = period_of(ts)
        return cls(period, period_start(period), period_start(next_period(period)))


class Bookkeeper:
    """Books the events of one partition, keeping its watermark and a count.

    The watermark is the highest event time seen on the partition; lateness is
    judged against it, never against the wall clock, so a backfill is booked
    as it happened. Keep one per input partition, and store `to_dict()` with
    the partition's other state: a replay that starts from a lost watermark
    can book a late event in its own period rather than as an adjustment (the
    entry id stays the same, so nothing is counted twice).

    Given a `source` (the partition's name), each entry carries it and its
    number among the events booked from it, `source_seq` (1, 2, ...). A replay
    from saved state books the same events with the same numbers, so a reader
    of `spend.ledger` can drop an entry produced twice (see
    `models.positions.DepartmentPositions.apply`).
    """

    def __init__(
        self,
        cutoff_s: float = DEFAULT_CUTOFF_S,
        watermark: datetime | None = None,
        source: str | None = None,
        booked: int = 0,
    ) -> None:
        check_cutoff(cutoff_s)
        self.cutoff_s = cutoff_s
        self.watermark = watermark
        self.source = source
        self.booked = booked
        self._month: _Month | None = None
        self._oldest_open = ""
        self._open_until: datetime | None = None

    def book(self, event: CostEvent) -> LedgerEntry:
        """Advance the watermark to `event.ts` if later, then book the event."""
        ts = event.ts
        if self.watermark is None or ts > self.watermark:
            self.watermark = ts
        self.booked += 1
        seq = None if self.source is None else self.booked
        return entry_for(event, self._place(ts, self.watermark), self.source, seq)

    def _place(self, ts: datetime, watermark: datetime) -> Placement:
        """`place_in_period(ts, watermark, self.cutoff_s)`, from cached months.

        Events come mostly in time order: the month of the last one is kept,
        and so is the oldest open period, until the watermark closes it.
        """
        month = self._month
        if month is None or not month.start <= ts < month.end:
            month = self._month = _Month.of(ts)
        if self._open_until is None or watermark >= self._open_until:
            self._oldest_open = oldest_open_period(watermark, self.cutoff_s)
            self._open_until = closes_at(self._oldest_open, self.cutoff_s)
        if month.period >= self._oldest_open:
            return Placement(month.period, None)
        return Placement(self._oldest_open, month.period)

    def to_dict(self) -> dict[str, Any]:
        """The state to keep between runs, JSON-ready."""
        mark = None if self.watermark is None else self.watermark.isoformat()
        return {"watermark": mark, "booked": self.booked}

    @classmethod
    def from_dict(
        cls,
        value: dict[str, Any],
        cutoff_s: float = DEFAULT_CUTOFF_S,
        source: str | None = None,
    ) -> "Bookkeeper":
        """Restore from `to_dict()`; the cut-off and the source are configuration."""
        mark = value.get("watermark")
        watermark = None if mark is None else datetime.fromisoformat(mark)
        booked = int(value.get("booked", 0))
        return cls(cutoff_s, watermark, source, booked)
