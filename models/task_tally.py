"""One task's running sums, and what a finished task took.

Precedence: a total the `finished` record carries (`steps`, `tokens`,
`cost_usd`) wins over the sum of events, field by field. The gateway that ran
the task saw every call, while events may still be in flight when `finished`
arrives (they come on another topic). A task with no cost events is learnable
only when its `finished` record carries all three totals.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from models.events import CostEvent
from models.money import ZERO_USD, to_usd, usd_text
from models.records import TaskRecord
from models.task_usage import TaskUsage
from models.validation import validate


@dataclass(frozen=True, slots=True)
class TaskActuals:
    """What a finished task took: steps (calls), tokens (in + out) and cost."""

    steps: int
    tokens: int
    cost_usd: Decimal

    def __post_init__(self) -> None:
        if self.steps < 0 or self.tokens < 0 or self.cost_usd < 0:
            msg = f"task actuals must not be negative, got {self}"
            raise ValueError(msg)


@dataclass(slots=True)
class TaskTally:
    """One open task: the sums of its events so far and its records."""

    seen_s: float
    events: int = 0
    tokens: int = 0
    cost_usd: Decimal = field(default=ZERO_USD)
    started: TaskRecord | None = None
    finished: TaskRecord | None = None

    def add(self, event: CostEvent) -> None:
        """Count one cost event: a step, its tokens in and out, its cost."""
        self.events += 1
        self.tokens += event.input_tokens + event.output_tokens
        self.cost_usd += event.cost

    def add_usage(self, usage: TaskUsage) -> None:
        """Count a usage delta from the events path; a negative one takes back."""
        self.events += usage.events
        self.tokens += usage.tokens
        self.cost_usd += usage.cost_usd

    def actuals(self) -> TaskActuals | None:
        """The actuals, by the precedence in the module docstring."""
        done = self.finished
        if done is None:
            return None
        if self.events == 0 and None in (done.steps, done.tokens, done.cost_usd):
            return None
        return TaskActuals(
            steps=self.events if done.steps is None else done.steps,
            tokens=self.tokens if done.tokens is None else done.tokens,
            cost_usd=self.cost_usd if done.cost_usd is None else done.cost_usd,
        )

    def to_state(self) -> dict[str, Any]:
        """The tally as JSON-ready values: cost as a decimal string."""
        return {
            "seen_s": self.seen_s,
            "events": self.events,
            "tokens": self.tokens,
            "cost_usd": usd_text(self.cost_usd),
            "started": _json_or_none(self.started),
            "finished": _json_or_none(self.finished),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TaskTally":
        """The tally `to_state` saved; raises on a damaged state."""
        started, finished = state["started"], state["finished"]
        return cls(
            seen_s=float(state["seen_s"]),
            events=int(state["events"]),
            tokens=int(state["tokens"]),
            cost_usd=to_usd(state["cost_usd"]),
            started=None if started is None else validate(TaskRecord, started),
            finished=None if finished is None else validate(TaskRecord, finished),
        )


def _json_or_none(record: TaskRecord | None) -> dict[str, Any] | None:
    return None if record is None else record.to_json_dict()
