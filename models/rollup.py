"""Per-minute spend rollups, the rows of ClickHouse `spend_minute`.

A minute bucket is closed-open: an event at 12:00:59.999 belongs to 12:00,
one at 12:01:00.000 to 12:01, as ClickHouse's `toStartOfMinute` has it.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from models.events import CostEvent
from models.money import ZERO_USD


class MinuteKey(NamedTuple):
    """The dimensions of one `spend_minute` row."""

    minute: datetime
    session_id: str
    agent: str
    principal: str
    owner: str
    model: str
    kind: str


@dataclass(slots=True)
class MinuteTotals:
    """The measures of one `spend_minute` row, summed exactly."""

    events: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = field(default=ZERO_USD)

    def add(self, event: CostEvent) -> None:
        self.events += 1
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cost_usd += event.cost


def minute_of(ts: datetime) -> datetime:
    """The start of the minute that holds `ts`.

    >>> from datetime import UTC
    >>> minute_of(datetime(2026, 11, 30, 12, 0, 59, 999000, tzinfo=UTC)).minute
    0
    """
    return ts.replace(second=0, microsecond=0)


def key_of(event: CostEvent) -> MinuteKey:
    return MinuteKey(
        minute=minute_of(event.ts),
        session_id=event.session_id,
        agent=event.agent,
        principal=event.principal,
        owner=event.payee,
        model=event.model or "",
        kind=event.kind,
    )


class MinuteRollup:
    """Totals per minute and dimensions for one batch of events."""

    def __init__(self) -> None:
        self.rows: dict[MinuteKey, MinuteTotals] = {}

    def add(self, event: CostEvent) -> None:
        key = key_of(event)
        totals = self.rows.get(key)
        if totals is None:
            totals = self.rows[key] = MinuteTotals()
        totals.add(event)

    def __len__(self) -> int:
        return len(self.rows)
