"""Per-task usage from cost events: what the events path tells the shadow learner.

The events path sums, per poll and events partition, the accepted events that
carry a `task_id` (`UsageAggregator`) and sends them as one `UsageBatch`, and
every few seconds a `ProgressReport` of how far its partitions have got, which
is what the learner's `models.task_gate` waits on.

>>> from datetime import UTC, datetime
>>> from models.events import CostEvent
>>> sums = UsageAggregator()
>>> sums.add([CostEvent(event_id="e1", ts=datetime(2026, 11, 1, tzinfo=UTC),
...     session_id="s", agent="a", principal="p", task_id="t1", input_tokens=40,
...     output_tokens=2, cost_usd="0.25")])
>>> sums.drain()["t1"]
TaskUsage(events=1, tokens=42, cost_usd=Decimal('0.250000000'), newest_s=1793491200.0)
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from models.events import CostEvent
from models.money import ZERO_USD, to_usd, usd_text


@dataclass(frozen=True, slots=True)
class TaskUsage:
    """Steps (events), tokens (in + out) and cost of some of a task's events.

    A delta: negative where a replayed batch takes back what its first run
    sent (`models.usage_replay`). `newest_s` is the newest event time in it.
    """

    events: int
    tokens: int
    cost_usd: Decimal
    newest_s: float

    def plus(self, other: "TaskUsage") -> "TaskUsage":
        """The sum of two deltas; the newer of the two times."""
        return TaskUsage(
            self.events + other.events,
            self.tokens + other.tokens,
            to_usd(self.cost_usd + other.cost_usd),
            max(self.newest_s, other.newest_s),
        )

    def negated(self) -> "TaskUsage":
        """The delta that takes this one back."""
        return TaskUsage(-self.events, -self.tokens, -self.cost_usd, self.newest_s)

    def to_json(self) -> list[Any]:
        """Compact JSON: `[events, tokens, "cost", newest_s]`."""
        return [self.events, self.tokens, usd_text(self.cost_usd), self.newest_s]

    @classmethod
    def from_json(cls, value: Any) -> "TaskUsage":
        """Read `to_json`; raises ValueError or TypeError on another shape."""
        events, tokens, cost, newest_s = value
        if not all(type(n) is int for n in (events, tokens)):
            raise TypeError(f"task usage counts must be integers, got {value!r}")
        return cls(events, tokens, to_usd(cost), float(newest_s))


class UsageAggregator:
    """Sums of one events partition's task events since the last `drain`."""

    def __init__(self) -> None:
        self._sums: dict[str, list[Any]] = {}
        self.newest_s: float | None = None
        """The newest event time ever added (tasks or not), kept across drains."""

    def __bool__(self) -> bool:
        return bool(self._sums)

    def add(self, events: Iterable[CostEvent]) -> None:
        """Count accepted events: those with a `task_id` towards their task."""
        newest = None
        sums = self._sums
        for event in events:
            if newest is None or event.ts > newest:
                newest = event.ts
            if event.task_id is None:
                continue
            ts_s = event.ts.timestamp()
            found = sums.get(event.task_id)
            if found is None:
                found = sums[event.task_id] = [0, 0, ZERO_USD, ts_s]
            found[0] += 1
            found[1] += event.input_tokens + event.output_tokens
            found[2] += event.cost
            found[3] = max(found[3], ts_s)
        if newest is not None:
            newest_s = newest.timestamp()
            self.newest_s = max(newest_s, self.newest_s or newest_s)

    def drain(self) -> dict[str, TaskUsage]:
        """The sums per task since the last drain; start afresh."""
        sums, self._sums = self._sums, {}
        return {
            task_id: TaskUsage(n, tokens, to_usd(cost), newest_s)
            for task_id, (n, tokens, cost, newest_s) in sums.items()
        }


@dataclass(frozen=True, slots=True)
class UsageBatch:
    """One message of the events path to the learner, for one events partition.

    `marker` is the partition's last flushed offset when the events were
    read, and `part` numbers the batches sent under one marker from 0. A
    crash replays the events after the marker, under the same marker, from
    part 0 again: that is how the learner tells a replay from new usage.
    `newest_s` is the newest event time the partition has accepted so far.
    """

    partition: int
    marker: int
    part: int
    newest_s: float | None
    tasks: dict[str, TaskUsage] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The batch as JSON-ready values."""
        return {
            "partition": self.partition,
            "marker": self.marker,
            "part": self.part,
            "newest_s": self.newest_s,
            "tasks": {task_id: u.to_json() for task_id, u in self.tasks.items()},
        }

    @classmethod
    def from_json_dict(cls, value: dict[str, Any]) -> "UsageBatch":
        """Read `to_json_dict`; raises KeyError, TypeError or ValueError."""
        return cls(
            partition=_int(value["partition"]),
            marker=_int(value["marker"]),
            part=_int(value["part"]),
            newest_s=_float_or_none(value["newest_s"]),
            tasks={
                str(task_id): TaskUsage.from_json(usage)
                for task_id, usage in value["tasks"].items()
            },
        )


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """How far one worker's events partitions have got.

    The worker reads the learner's log end (`log_end`) first, then the end
    offsets of its events partitions; `caught_up` lists those whose ingest
    had read up to that end. In that order, every task record below
    `log_end` was written before the partitions were seen caught up, so the
    events its gateway sent before it have been read, and their usage
    precedes this report in the log. `partitions` counts the events topic's
    partitions; `newest_s` is each owned partition's newest accepted event
    time (None before the first).
    """

    partitions: int
    log_end: int
    newest_s: dict[int, float | None]
    caught_up: frozenset[int] = frozenset()

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "partitions": self.partitions,
            "log_end": self.log_end,
            "newest_s": {str(p): t for p, t in self.newest_s.items()},
            "caught_up": sorted(self.caught_up),
        }

    @classmethod
    def from_json_dict(cls, value: dict[str, Any]) -> "ProgressReport":
        """Read `to_json_dict`; raises KeyError, TypeError or ValueError."""
        return cls(
            partitions=_int(value["partitions"]),
            log_end=_int(value["log_end"]),
            newest_s={int(p): _float_or_none(t) for p, t in value["newest_s"].items()},
            caught_up=frozenset(_int(p) for p in value["caught_up"]),
        )


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
