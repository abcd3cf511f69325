"""The demo's summary: sections read back from ClickHouse after the run.

Each section is a function of the store and the run's facts that returns a
rich renderable; `SECTIONS` lists them in the order they are printed, and the
capabilities with a demo module of their own (`streams.demo_grants`,
`streams.demo_shadow`) contribute theirs.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group, RenderableType
from rich.table import Table

from models.fleet import FleetTally
from models.money import ZERO_USD, usd_text
from streams import demo_grants, demo_shadow
from streams.store import Store

CENT = Decimal("0.01")
USD_CENTS = "USD, to the cent"


@dataclass
class WorkerCounts:
    """The worker's counters from `/metrics`: events by outcome, DLQ by reason."""

    events: dict[str, int] = field(default_factory=dict)
    dlq: dict[str, int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        return sum(self.events.values())


def read_counts(text: str) -> WorkerCounts:
    """Parse the Prometheus text of `/metrics`."""
    counts = WorkerCounts()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "spendstream_events_total":
                counts.events[sample.labels["outcome"]] = int(sample.value)
            elif sample.name == "spendstream_dlq_records_total":
                counts.dlq[sample.labels["reason"]] = int(sample.value)
    return counts


@dataclass(frozen=True)
class RunFacts:
    """What a summary section may need beside the store."""

    events_topic: str
    dlq_topic: str
    counts: WorkerCounts
    expected: FleetTally


Section = Callable[[Store, RunFacts], RenderableType]


def cents(amount: Decimal) -> str:
    """An amount for a table: dollars, rounded half-even to the cent."""
    return f"${amount.quantize(CENT, rounding=ROUND_HALF_EVEN):,}"


def exact(amount: Decimal) -> str:
    """An amount to the nano-dollar, as ClickHouse holds it."""
    return f"${usd_text(amount)}"


def _rows(store: Store, facts: RunFacts, sql: str) -> list[Any]:
    return store.query(sql, {"topic": facts.events_topic})


def spend_by_department(store: Store, facts: RunFacts) -> RenderableType:
    """Spend per paying department (the caller, `principal`)."""
    rows = _rows(
        store,
        facts,
        "SELECT principal, sum(events), uniqExact(session_id), sum(cost_usd)"
        " FROM {db}.spend_minute WHERE src_topic = {topic:String}"
        " GROUP BY principal ORDER BY sum(cost_usd) DESC",
    )
    table = Table(title="Spend by department (the caller pays)")
    for name in ("department", "events", "sessions", USD_CENTS):
        table.add_column(name, justify="left" if name == "department" else "right")
    for principal, events, sessions, cost_usd in rows:
        table.add_row(principal, f"{events:,}", f"{sessions:,}", cents(cost_usd))
    return table


def spend_by_agent(store: Store, facts: RunFacts) -> RenderableType:
    """The ten agents that spent most, with the departments that own them."""
    rows = _rows(
        store,
        facts,
        "SELECT agent, groupUniqArray(owner), groupUniqArray(principal),"
        " sum(events), sum(cost_usd) FROM {db}.spend_minute"
        " WHERE src_topic = {topic:String}"
        " GROUP BY agent ORDER BY sum(cost_usd) DESC LIMIT 10",
    )
    table = Table(title="Top 10 agents by spend")
    for name in ("agent", "owner", "paid by"):
        table.add_column(name)
    table.add_column("events", justify="right")
    table.add_column(USD_CENTS, justify="right")
    for agent, owners, payers, events, cost_usd in rows:
        table.add_row(
            agent,
            ", ".join(sorted(owners)),
            ", ".join(sorted(payers)),
            f"{events:,}",
            cents(cost_usd),
        )
    return table


def spend_by_model(store: Store, facts: RunFacts) -> RenderableType:
    """Spend and tokens per model; tool and agent calls may have no model."""
    rows = _rows(
        store,
        facts,
        "SELECT model, sum(events), sum(input_tokens), sum(output_tokens),"
        " sum(cost_usd) FROM {db}.spend_minute WHERE src_topic = {topic:String}"
        " GROUP BY model ORDER BY sum(cost_usd) DESC",
    )
    table = Table(title="Spend by model")
    for name in ("model", "events", "input tokens", "output tokens", USD_CENTS):
        table.add_column(name, justify="left" if name == "model" else "right")
    for model, events, input_tokens, output_tokens, cost_usd in rows:
        table.add_row(
            model or "(no model)",
            f"{events:,}",
            f"{input_tokens:,}",
            f"{output_tokens:,}",
            cents(cost_usd),
        )
    return table


def stored_totals(store: Store, events_topic: str) -> tuple[int, Decimal]:
    """Events and spend of the run, as ClickHouse holds them."""
    rows = store.query(
        "SELECT sum(events), sum(cost_usd) FROM {db}.spend_minute"
        " WHERE src_topic = {topic:String}",
        {"topic": events_topic},
    )
    events, cost_usd = rows[0] if rows else (0, ZERO_USD)
    return int(events), cost_usd if cost_usd is not None else ZERO_USD


def totals(store: Store, facts: RunFacts) -> RenderableType:
    """Totals from ClickHouse beside the fleet's own sums, and the outcomes."""
    events, cost_usd = stored_totals(store, facts.events_topic)
    expected = facts.expected
    table = Table(title="Totals (USD exact, to the nano-dollar)")
    for name in ("", "ClickHouse / worker", "the fleet's own sums", "match"):
        table.add_column(name, justify="left" if not name else "right")
    outcomes = facts.counts.events
    lines: list[tuple[str, int | str, int | str]] = [
        ("events counted", events, expected.counted),
        ("spend", exact(cost_usd), exact(expected.cost_usd)),
        ("duplicates dropped", outcomes.get("duplicate", 0), expected.duplicates),
        ("rejected to the DLQ", outcomes.get("rejected", 0), expected.rejected),
    ]
    for label, got, want in lines:
        mark = "[green]yes[/]" if got == want else "[red]NO[/]"
        table.add_row(label, _shown(got), _shown(want), mark)
    return table


def _shown(value: int | str) -> str:
    return f"{value:,}" if isinstance(value, int) else value


def dead_letters(store: Store, facts: RunFacts) -> RenderableType:
    """DLQ records by reason, from the worker's final metrics."""
    table = Table(title="Dead letters by reason", caption=f"on {facts.dlq_topic}")
    table.add_column("reason")
    table.add_column("records", justify="right")
    for reason, count in sorted(facts.counts.dlq.items()):
        table.add_row(reason, f"{count:,}")
    return table


def chargeback(store: Store, facts: RunFacts) -> RenderableType:
    """Net chargeback per department in the run's latest period, from the ledger."""
    rows = store.query(
        "SELECT period, debit, credit, sum(amount_usd) FROM {db}.ledger_entries FINAL"
        " WHERE startsWith(source, {source:String}) AND NOT internal"
        " GROUP BY period, debit, credit",
        {"source": f"{facts.events_topic}:"},
    )
    period = max((row[0] for row in rows), default="(none)")
    owes: dict[str, Decimal] = {}
    owed: dict[str, Decimal] = {}
    for booked_in, debit, credit, amount_usd in rows:
        if booked_in == period:
            owes[debit] = owes.get(debit, ZERO_USD) + amount_usd
            owed[credit] = owed.get(credit, ZERO_USD) + amount_usd
    debits, credits = sum(owes.values(), ZERO_USD), sum(owed.values(), ZERO_USD)
    table = Table(
        title=f"Chargeback {period}: net per department (positive: is owed)",
        caption=f"debits {exact(debits)} = credits {exact(credits)}"
        if debits == credits
        else f"[red]debits {exact(debits)} != credits {exact(credits)}[/]",
    )
    for name in ("department", "owes", "is owed", "net"):
        table.add_column(name, justify="left" if name == "department" else "right")
    departments = set(owes) | set(owed)
    net = {d: owed.get(d, ZERO_USD) - owes.get(d, ZERO_USD) for d in departments}
    for department in sorted(departments, key=lambda d: (-net[d], d)):
        table.add_row(
            department,
            cents(owes.get(department, ZERO_USD)),
            cents(owed.get(department, ZERO_USD)),
            cents(net[department]),
        )
    return table


def breaker_trips(store: Store, facts: RunFacts) -> RenderableType:
    """Sessions the velocity breaker froze, by rule, with session and agent."""
    rows = store.query(
        "SELECT rule, session_id, agent, window_s, events, spend_usd,"
        " threshold_usd, threshold_events"
        " FROM {db}.breaker_trips FINAL ORDER BY rule, ts"
    )
    table = Table(
        title="Breaker trips (sessions frozen)",
        caption=None if rows else "no session tripped the breaker",
    )
    table.add_column("rule")
    table.add_column("session", no_wrap=True)
    table.add_column("agent")
    table.add_column("tripped on")
    for rule, session_id, agent, window_s, events, spend, usd, most in rows:
        if most:
            why = f"{events:,} events in {window_s} s, over {most:,}"
        else:
            why = f"{cents(spend)} in {window_s} s, over {cents(usd)}"
        table.add_row(rule, session_id, agent, why)
    return table


SECTIONS: list[Section] = [
    spend_by_department,
    spend_by_agent,
    spend_by_model,
    totals,
    dead_letters,
    chargeback,
    breaker_trips,
    demo_grants.grants,
    demo_shadow.shadow_model,
]


def summary(store: Store, facts: RunFacts) -> RenderableType:
    """Every section, in order."""
    return Group(*(section(store, facts) for section in SECTIONS))
