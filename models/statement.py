"""The month-end chargeback statement, as data: positions, flows, reconciliation.

A statement covers the entries *booked* in its period, adjustments of earlier
periods included (they are listed apart as well). It reconciles three figures
reached by separate sums: what departments owe (debits), what they are owed
(credits), and the chargeable spend summed straight from the entries.

>>> from datetime import UTC, datetime
>>> from models.events import CostEvent
>>> from models.ledger import Bookkeeper
>>> entry = Bookkeeper().book(CostEvent(event_id="e-1", session_id="s-1",
...     ts=datetime(2026, 11, 2, tzinfo=UTC), agent="database",
...     principal="marketing", owner="engineering", cost_usd="0.05"))
>>> statement = build_statement("2026-11", [entry])
>>> statement.reconciliation.balanced, statement.flows[0].amount_usd
(True, Decimal('0.050000000'))
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from models.money import ZERO_USD
from models.periods import parse_period
from models.positions import Position, positions_of
from models.records import LedgerEntry


@dataclass(frozen=True, slots=True)
class DepartmentLine:
    """What one department owes and is owed in the period; net > 0: it is owed."""

    department: str
    owes_usd: Decimal
    owed_usd: Decimal
    internal_usd: Decimal

    @property
    def net_usd(self) -> Decimal:
        return self.owed_usd - self.owes_usd

    @classmethod
    def of(cls, department: str, position: Position) -> "DepartmentLine":
        return cls(
            department=department,
            owes_usd=position.charged_by_others_usd,
            owed_usd=position.charged_to_others_usd,
            internal_usd=position.internal_usd,
        )


@dataclass(frozen=True, slots=True)
class FlowLine:
    """What one agent on one model charged along a flow."""

    agent: str
    model: str | None
    amount_usd: Decimal
    entries: int


@dataclass(frozen=True, slots=True)
class Flow:
    """Chargebacks from `debit` (who pays) to `credit` (who is paid)."""

    debit: str
    credit: str
    amount_usd: Decimal
    entries: int
    lines: tuple[FlowLine, ...]


@dataclass(frozen=True, slots=True)
class Adjustment:
    """Late entries booked in this period for an earlier, closed one."""

    adjusts: str
    chargeable_usd: Decimal
    internal_usd: Decimal
    entries: int


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Debits, credits and chargeable spend, each summed on its own."""

    debits_usd: Decimal
    credits_usd: Decimal
    chargeable_usd: Decimal

    @property
    def balanced(self) -> bool:
        return self.debits_usd == self.credits_usd == self.chargeable_usd


@dataclass(frozen=True, slots=True)
class Statement:
    """Everything the month-end statement says, ready to render."""

    period: str
    departments: tuple[DepartmentLine, ...]
    flows: tuple[Flow, ...]
    adjustments: tuple[Adjustment, ...]
    total_spend_usd: Decimal
    internal_usd: Decimal
    entries: int
    reconciliation: Reconciliation


def build_statement(period: str, entries: Iterable[LedgerEntry]) -> Statement:
    """The statement of `period` from ledger entries.

    Entries booked in other periods are ignored, and an entry id seen twice
    (a replayed entry not yet merged away by the store) counts once.
    """
    period = parse_period(period)
    booked = _unique(entry for entry in entries if entry.period == period)
    chargeable = [entry for entry in booked if not entry.internal]
    positions = positions_of(booked)
    departments = tuple(
        DepartmentLine.of(name, positions[name].position(period))
        for name in sorted(positions)
    )
    return Statement(
        period=period,
        departments=departments,
        flows=_flows(chargeable),
        adjustments=_adjustments(booked),
        total_spend_usd=_total(booked),
        internal_usd=_total(entry for entry in booked if entry.internal),
        entries=len(booked),
        reconciliation=Reconciliation(
            debits_usd=sum((line.owes_usd for line in departments), ZERO_USD),
            credits_usd=sum((line.owed_usd for line in departments), ZERO_USD),
            chargeable_usd=_total(chargeable),
        ),
    )


def _unique(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    seen: dict[str, LedgerEntry] = {}
    for entry in entries:
        seen.setdefault(entry.entry_id, entry)
    return list(seen.values())


def _total(entries: Iterable[LedgerEntry]) -> Decimal:
    return sum((entry.amount_usd for entry in entries), ZERO_USD)


def _flows(chargeable: list[LedgerEntry]) -> tuple[Flow, ...]:
    """Flows by amount, largest first; each flow's lines likewise."""
    grouped: dict[tuple[str, str], list[LedgerEntry]] = {}
    for entry in chargeable:
        grouped.setdefault((entry.debit, entry.credit), []).append(entry)
    flows = [
        Flow(debit, credit, _total(group), len(group), _lines(group))
        for (debit, credit), group in grouped.items()
    ]
    return tuple(sorted(flows, key=lambda f: (-f.amount_usd, f.debit, f.credit)))


def _lines(group: list[LedgerEntry]) -> tuple[FlowLine, ...]:
    by_source: dict[tuple[str, str | None], list[LedgerEntry]] = {}
    for entry in group:
        by_source.setdefault((entry.agent, entry.model), []).append(entry)
    lines = [
        FlowLine(agent, model, _total(entries), len(entries))
        for (agent, model), entries in by_source.items()
    ]
    return tuple(
        sorted(lines, key=lambda ln: (-ln.amount_usd, ln.agent, ln.model or ""))
    )


def _adjustments(booked: list[LedgerEntry]) -> tuple[Adjustment, ...]:
    late: dict[str, list[LedgerEntry]] = {}
    for entry in booked:
        if entry.adjusts is not None:
            late.setdefault(entry.adjusts, []).append(entry)
    return tuple(
        Adjustment(
            adjusts=adjusts,
            chargeable_usd=_total(e for e in late[adjusts] if not e.internal),
            internal_usd=_total(e for e in late[adjusts] if e.internal),
            entries=len(late[adjusts]),
        )
        for adjusts in sorted(late)
    )
