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

_SPAN_MS = (LAST_TS - FIRST_TS) // timedelta(milliseconds=1)

times = st.integers(min_value=0, max_value=_SPAN_MS).map(
    lambda ms: FIRST_TS + timedelta(milliseconds=ms)
)
"""Event times to the millisecond, 2026-01 to 2027-02, in UTC."""

costs_usd = st.integers(min_value=0, max_value=10**12).map(
    lambda n: Decimal(n).scaleb(-9)
)
"""Up to $1000 in nano-dollars: every amount the ledger can hold in that range."""

cutoffs_s = st.integers(min_value=0, max_value=10 * 86_400)

_event_fields = st.tuples(
    times,
    st.sampled_from(DEPARTMENTS),
    st.sampled_from((*DEPARTMENTS, None)),  # None: the principal owns the agent
    st.sampled_from(AGENTS),
    st.sampled_from((*MODELS, None)),
    costs_usd,
)


def _events(
    rows: list[tuple[datetime, str, str | None, str, str | None, Decimal]],
) -> list[CostEvent]:
    return [
        CostEvent(
            event_id=f"e-{index}",
            ts=ts,
            session_id=f"s-{index % 5}",
            agent=agent,
            model=model,
            principal=principal,
            owner=owner,
            cost_usd=cost_usd,
        )
        for index, (ts, principal, owner, agent, model, cost_usd) in enumerate(rows)
    ]


cost_event_lists = st.lists(_event_fields, max_size=40).map(_events)
"""Events with unique ids, in random (so also out-of-order) event time."""


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
