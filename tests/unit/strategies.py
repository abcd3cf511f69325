"""Hypothesis strategies shared by the chargeback tests: cost events and times."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from models.events import CostEvent

DEPARTMENTS = ("marketing", "engineering", "finance", "sales", "legal")
AGENTS = ("copywriter", "database", "researcher", "planner")
MODELS = ("gpt-4o", "claude-sonnet", "llama-70b")

FIRST_TS = datetime(2026, 1, 1, tzinfo=UTC)
LAST_TS = datetime(2027, 3, 1, tzinfo=UTC)

times = st.datetimes(
    min_value=FIRST_TS.replace(tzinfo=None),
    max_value=LAST_TS.replace(tzinfo=None),
    timezones=st.just(UTC),
)

costs_usd = st.decimals(min_value=0, max_value=1000, places=9)

cutoffs_s = st.integers(min_value=0, max_value=10 * 86_400)


@st.composite
def cost_event_lists(draw: st.DrawFn, max_size: int = 40) -> list[CostEvent]:
    """Events with unique ids, in random (so also out-of-order) event time."""
    size = draw(st.integers(min_value=0, max_value=max_size))
    return [draw(cost_events(f"e-{index}")) for index in range(size)]


@st.composite
def cost_events(draw: st.DrawFn, event_id: str) -> CostEvent:
    """One priced event, sometimes internal (owner = principal)."""
    principal = draw(st.sampled_from(DEPARTMENTS))
    owner = draw(st.sampled_from((*DEPARTMENTS, None)))
    return CostEvent(
        event_id=event_id,
        ts=draw(times),
        session_id=f"s-{draw(st.integers(0, 5))}",
        agent=draw(st.sampled_from(AGENTS)),
        model=draw(st.sampled_from((*MODELS, None))),
        principal=principal,
        owner=owner,
        cost_usd=draw(costs_usd),
    )


def event(
    *,
    event_id: str = "e-1",
    ts: datetime = datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    principal: str = "marketing",
    owner: str | None = "engineering",
    agent: str = "database",
    model: str | None = "gpt-4o",
    cost_usd: str = "0.05",
) -> CostEvent:
    """A hand-written event; by default the seed's example."""
    return CostEvent(
        event_id=event_id,
        ts=ts,
        session_id="s-1",
        agent=agent,
        model=model,
        principal=principal,
        owner=owner,
        cost_usd=Decimal(cost_usd),
    )


def late_by(ts: datetime, seconds: float) -> datetime:
    return ts + timedelta(seconds=seconds)
