"""Chargeback positions: per department and period, what it is owed and owes.

A department is *charged to others* by the entries that credit it from another
department (what it is owed) and *charged by others* by the entries that debit
it to another (what it owes). Internal entries are kept apart, in
`internal_usd`: spend, but no chargeback.

>>> from models.ledger import Bookkeeper
>>> from models.events import CostEvent
>>> from datetime import UTC, datetime
>>> entry = Bookkeeper().book(CostEvent(event_id="e-1", session_id="s-1",
...     ts=datetime(2026, 11, 2, tzinfo=UTC), agent="database",
...     principal="marketing", owner="engineering", cost_usd="0.05"))
>>> positions = positions_of([entry])
>>> positions["marketing"].answer("2026-11")["net_usd"]
'-0.050000000'
>>> positions["engineering"].answer("2026-11")["net_usd"]
'0.050000000'
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from models.ledger import ledger_keys
from models.money import ZERO_USD, to_usd, usd_text
from models.periods import parse_period
from models.records import LedgerEntry


@dataclass(slots=True)
class Position:
    """One department's position in one period; a positive net: it is owed."""

    charged_to_others_usd: Decimal = ZERO_USD
    charged_by_others_usd: Decimal = ZERO_USD
    internal_usd: Decimal = ZERO_USD

    @property
    def net_usd(self) -> Decimal:
        return self.charged_to_others_usd - self.charged_by_others_usd

    def to_dict(self) -> dict[str, str]:
        """JSON-ready amounts; `net_usd` is included for readers, derived on load."""
        return {
            "charged_to_others_usd": usd_text(self.charged_to_others_usd),
            "charged_by_others_usd": usd_text(self.charged_by_others_usd),
            "net_usd": usd_text(self.net_usd),
            "internal_usd": usd_text(self.internal_usd),
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "Position":
        return cls(
            charged_to_others_usd=to_usd(value["charged_to_others_usd"]),
            charged_by_others_usd=to_usd(value["charged_by_others_usd"]),
            internal_usd=to_usd(value["internal_usd"]),
        )


class DepartmentPositions:
    """A department's positions by period: a Faust table value, keyed by department.

    Keyed by department so that the table is co-partitioned with `spend.ledger`
    and a `GET /v1/chargeback/{department}` is routed by the same key. Applying
    an entry is not idempotent by itself; an entry read from `spend.ledger` is
    applied with its offset there, and skipped when it was applied already:

    - at or below the last applied offset: the table was written but the
      offset not committed, and the topic is read again;
    - at or below the last `source_seq` applied from its `source`: the worker
      that booked it crashed before its input offsets were safe, and the next
      one booked and produced it again.

    This relies on all of a department's entries sharing one partition, and on
    each source's entries reaching it in the order they were booked (one
    producer per source at a time; Kafka keeps a producer's order).
    """

    def __init__(
        self,
        department: str,
        periods: dict[str, Position] | None = None,
        last_offset: int | None = None,
        sources: dict[str, int] | None = None,
    ) -> None:
        self.department = department
        self.periods = periods if periods is not None else {}
        self.last_offset = last_offset
        self.sources = sources if sources is not None else {}
        """The last `source_seq` applied from each source."""

    def apply(self, entry: LedgerEntry, offset: int | None = None) -> bool:
        """Add `entry` to its period; False if it was applied already.

        Without `offset` (entries not read from the topic, in any order) the
        entry is always added.
        """
        if self.department not in ledger_keys(entry):
            msg = (
                f"entry {entry.entry_id} is between {entry.debit!r} and "
                f"{entry.credit!r}, not {self.department!r}; route it by ledger_keys"
            )
            raise ValueError(msg)
        if offset is not None:
            if self.last_offset is not None and offset <= self.last_offset:
                return False
            self.last_offset = offset
            if self._seen_from_source(entry):
                return False
        _add(self.periods.setdefault(entry.period, Position()), self.department, entry)
        return True

    def _seen_from_source(self, entry: LedgerEntry) -> bool:
        """Whether `entry`'s source sent it before; else remember it as the last."""
        if entry.source is None or entry.source_seq is None:
            return False
        last = self.sources.get(entry.source)
        if last is not None and entry.source_seq <= last:
            return True
        self.sources[entry.source] = entry.source_seq
        return False

    def position(self, period: str) -> Position:
        """The position in `period`; zero where the department has no entries."""
        return self.periods.get(parse_period(period), Position())

    def answer(self, period: str) -> dict[str, str]:
        """The answer to `GET /v1/chargeback/{department}?period=YYYY-MM`."""
        head = {"department": self.department, "period": parse_period(period)}
        return head | self.position(period).to_dict()

    def to_dict(self) -> dict[str, Any]:
        periods = {name: self.periods[name].to_dict() for name in sorted(self.periods)}
        return {
            "department": self.department,
            "last_offset": self.last_offset,
            "sources": dict(sorted(self.sources.items())),
            "periods": periods,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "DepartmentPositions":
        periods = {
            parse_period(name): Position.from_dict(position)
            for name, position in value["periods"].items()
        }
        sources = {name: int(seq) for name, seq in value.get("sources", {}).items()}
        return cls(value["department"], periods, value.get("last_offset"), sources)


def positions_of(entries: Iterable[LedgerEntry]) -> dict[str, DepartmentPositions]:
    """Every department's positions from a batch of entries, each applied once."""
    positions: dict[str, DepartmentPositions] = {}
    for entry in entries:
        for department in ledger_keys(entry):
            book = positions.setdefault(department, DepartmentPositions(department))
            book.apply(entry)
    return positions


def _add(position: Position, department: str, entry: LedgerEntry) -> None:
    if entry.internal:
        position.internal_usd += entry.amount_usd
    elif entry.debit == department:
        position.charged_by_others_usd += entry.amount_usd
    else:
        position.charged_to_others_usd += entry.amount_usd
