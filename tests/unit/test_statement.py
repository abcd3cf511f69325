"""The month-end statement: its numbers against a direct sum over the events."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from models.events import CostEvent
from models.ledger import Bookkeeper
from models.records import LedgerEntry
from models.statement import Adjustment, FlowLine, Statement, build_statement
from tests.unit.strategies import cost_event_lists, cutoffs_s, event


def _book(events: list[CostEvent], cutoff_s: int = 0) -> list[LedgerEntry]:
    keeper = Bookkeeper(cutoff_s)
    return [keeper.book(item) for item in events]


def _line(statement: Statement, department: str) -> tuple[Decimal, ...]:
    (line,) = [d for d in statement.departments if d.department == department]
    return line.owes_usd, line.owed_usd, line.net_usd, line.internal_usd


def test_the_seed_example_on_the_statement() -> None:
    statement = build_statement("2026-11", _book([event()]))
    assert _line(statement, "marketing") == (Decimal("0.05"), 0, Decimal("-0.05"), 0)
    assert _line(statement, "engineering") == (0, Decimal("0.05"), Decimal("0.05"), 0)
    (flow,) = statement.flows
    assert (flow.debit, flow.credit, flow.amount_usd) == (
        "marketing",
        "engineering",
        Decimal("0.05"),
    )
    assert flow.lines == (FlowLine("database", "gpt-4o", Decimal("0.05"), 1),)
    assert statement.reconciliation.balanced


def test_internal_spend_counts_in_spend_not_in_chargebacks() -> None:
    events = [event(), event(event_id="e-2", owner="marketing", cost_usd="2")]
    statement = build_statement("2026-11", _book(events))
    assert [(f.debit, f.credit) for f in statement.flows] == [
        ("marketing", "engineering")
    ]
    assert _line(statement, "marketing") == (
        Decimal("0.05"),
        0,
        Decimal("-0.05"),
        Decimal("2"),
    )
    assert statement.total_spend_usd == Decimal("2.05")
    assert statement.internal_usd == Decimal("2")
    assert statement.reconciliation.chargeable_usd == Decimal("0.05")


def test_a_late_event_is_on_the_next_statement_as_an_adjustment() -> None:
    events = [
        event(event_id="dec", ts=datetime(2026, 12, 5, tzinfo=UTC), cost_usd="1"),
        event(event_id="late", ts=datetime(2026, 11, 30, tzinfo=UTC), cost_usd="3"),
    ]
    entries = _book(events, cutoff_s=72 * 3600)
    november = build_statement("2026-11", entries)
    december = build_statement("2026-12", entries)
    assert november.entries == 0
    assert november.flows == ()
    assert december.flows[0].amount_usd == Decimal("4")
    assert december.adjustments == (Adjustment("2026-11", Decimal("3"), 0, 1),)


def test_a_replayed_entry_counts_once() -> None:
    entries = _book([event(), event(event_id="e-2", cost_usd="1")])
    assert build_statement("2026-11", entries + entries[:1]) == build_statement(
        "2026-11", entries
    )


@given(events=cost_event_lists)
def test_statement_numbers_equal_a_direct_sum_over_the_events(
    events: list[CostEvent],
) -> None:
    # In event-time order nothing is late, so each event is in its own month.
    entries = _book(sorted(events, key=lambda e: e.ts))
    for period, expected in _direct_sums(events).items():
        statement = build_statement(period, entries)
        departments = {
            d.department: (d.owes_usd, d.owed_usd, d.internal_usd)
            for d in statement.departments
        }
        assert departments == expected.departments()
        flows = {(f.debit, f.credit): f.amount_usd for f in statement.flows}
        assert flows == expected.flows
        assert _sources(statement) == expected.sources
        assert statement.total_spend_usd == expected.spend
        assert statement.reconciliation.chargeable_usd == sum(flows.values())
        assert statement.reconciliation.balanced


@given(events=cost_event_lists, cutoff_s=cutoffs_s, replayed=st.data())
def test_every_period_balances_and_no_spend_is_lost_or_doubled(
    events: list[CostEvent], cutoff_s: int, replayed: st.DataObject
) -> None:
    entries = _book(events, cutoff_s)
    again = replayed.draw(
        st.lists(st.sampled_from(entries)) if entries else st.just([])
    )
    periods = {entry.period for entry in entries}
    statements = [build_statement(p, entries + again) for p in periods]
    for statement in statements:
        recon = statement.reconciliation
        assert recon.debits_usd == recon.credits_usd == recon.chargeable_usd
        assert sum(d.net_usd for d in statement.departments) == 0
    total = sum((s.total_spend_usd for s in statements), Decimal(0))
    assert total == sum((e.cost for e in events), Decimal(0))


@dataclass
class _Month:
    """A month's figures summed straight from the events, for comparison."""

    spend: Decimal = Decimal(0)
    owes: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    owed: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    internal: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    flows: dict[tuple[str, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    sources: dict[tuple[str, str, str, str | None], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )

    def departments(self) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        names = {*self.owes, *self.owed, *self.internal}
        zero = Decimal(0)
        return {
            name: (
                self.owes.get(name, zero),
                self.owed.get(name, zero),
                self.internal.get(name, zero),
            )
            for name in names
        }


def _direct_sums(events: list[CostEvent]) -> dict[str, _Month]:
    months: dict[str, _Month] = defaultdict(_Month)
    for item in events:
        month = months[f"{item.ts:%Y-%m}"]
        payer, payee, cost = item.principal, item.owner or item.principal, item.cost
        month.spend += cost
        if payer == payee:
            month.internal[payer] += cost
            continue
        month.owes[payer] += cost
        month.owed[payee] += cost
        month.flows[(payer, payee)] += cost
        month.sources[(payer, payee, item.agent, item.model)] += cost
    return months


def _sources(statement: Statement) -> dict[tuple[str, str, str, str | None], Decimal]:
    return {
        (flow.debit, flow.credit, line.agent, line.model): line.amount_usd
        for flow in statement.flows
        for line in flow.lines
    }
