"""Per-minute spend rollups, the rows of ClickHouse `spend_minute`.

A minute bucket is closed-open: an event at 12:00:59.999 belongs to 12:00,
one at 12:01:00.000 to 12:01, as ClickHouse's `toStartOfMinute` has it.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


def _epoch_minute_s(ts_s: float) -> int:
    return int(ts_s // 60) * 60


class MinuteRollup:
    """Totals per minute and dimensions for one batch of events.

    Keys hold the minute as epoch seconds while events are added: cheaper to
    compute and hash than a datetime, and turned into one by `items`.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[int, str, str, str, str, str, str], MinuteTotals] = {}

    def add(self, event: CostEvent, ts_s: float | None = None) -> None:
        """Count `event`; `ts_s` is its event time in epoch seconds, if known."""
        minute_s = _epoch_minute_s(event.ts.timestamp() if ts_s is None else ts_s)
        key = (
            minute_s,
            event.session_id,
            event.agent,
            event.principal,
            event.owner or event.principal,
            event.model or "",
            event.kind,
        )
        totals = self._rows.get(key)
        if totals is None:
            totals = self._rows[key] = MinuteTotals()
        totals.add(event)

    def items(self) -> Iterator[tuple[MinuteKey, MinuteTotals]]:
        for (minute_s, *dimensions), totals in self._rows.items():
            minute = datetime.fromtimestamp(minute_s, UTC)
            yield MinuteKey(minute, *dimensions), totals

    def __len__(self) -> int:
        return len(self._rows)
