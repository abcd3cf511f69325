"""Task accounting: a task's actual steps, tokens and cost, from its cost events.

A task is opened by its `started` record (or by its first cost event) and
closed by its `finished` record. Every cost event that carries the task's
`task_id` is one step; its tokens are `input_tokens + output_tokens`; its cost
is summed exactly. A total on the `finished` record wins over the events'
sum (`models.task_tally` says why). Cost events are expected deduplicated
(`models.dedup`) before they get here.

>>> from datetime import UTC, datetime
>>> from models.events import CostEvent
>>> t = datetime(2026, 11, 1, tzinfo=UTC)
>>> tracker = TaskTracker()
>>> tracker.on_task(TaskRecord(status="started", task_id="t1", ts=t, prompt="hi"))
[]
>>> for cost in ("0.0010", "0.0032"):
...     _ = tracker.on_event(CostEvent(event_id=cost, ts=t, session_id="s", agent="a",
...         principal="p", task_id="t1", input_tokens=300, output_tokens=150,
...         cost_usd=cost))
>>> done = tracker.on_task(TaskRecord(status="finished", task_id="t1", ts=t))
>>> done[0].actuals
TaskActuals(steps=2, tokens=900, cost_usd=Decimal('0.004200000'))
"""

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.errors import InvalidRecord
from models.events import CostEvent
from models.records import TaskRecord
from models.task_tally import TaskActuals, TaskTally
from models.task_usage import TaskUsage

STATE_FORMAT = 1
"""The version of `TaskTracker.to_state`'s shape; bump it when the shape changes."""


@dataclass(frozen=True, slots=True)
class FinishedTask:
    """A task released for learning: its features, its finish and its actuals.

    `actuals` is None when the monitor saw no cost event for the task and the
    `finished` record does not carry all three totals: there is nothing to
    learn from, and learning zeros would drag the model down.
    """

    task_id: str
    ts: datetime
    features: TaskRecord
    finished: TaskRecord
    actuals: TaskActuals | None
    events: int


class TaskTracker:
    """Open tasks and their tallies, in bounded memory.

    The tracker's clock is the newest event time it has seen (records and
    events), so a backfill replays as it happened; `tick(now)` takes an
    injected clock instead, for a timer while the streams are quiet (pass the
    wall clock only when event time keeps up with it, never in a backfill).
    A finished task is released `settle_s` after its finish time, so cost
    events that arrive a little after `finished` still count. Open tasks
    untouched for `ttl_s` expire (counted in `expired`), by the clock of the
    task records and events only: usage batches (`on_usage`) come from the
    events path, which in a backfill runs hours of event time ahead of the
    task records, and would expire tasks whose records are still on their way.
    Released ids are remembered for `ttl_s` so late events are counted in
    `late_events`, not taken for a new task. Past `max_tasks` open tasks, the
    least recently touched go early (counted in `evicted_early`).

    Memory is about `max_tasks` times a started record. The worker validates
    a started record's features (`models.task_features`, which caps the
    prompt) before it gets here, so an oversized prompt is never held.
    """

    def __init__(
        self, ttl_s: float = 86_400, settle_s: float = 0.0, max_tasks: int = 200_000
    ) -> None:
        if ttl_s <= 0 or settle_s < 0 or max_tasks <= 0 or settle_s >= ttl_s:
            msg = (
                f"need ttl_s > settle_s >= 0 and max_tasks > 0, "
                f"got ttl_s={ttl_s}, settle_s={settle_s}, max_tasks={max_tasks}"
            )
            raise ValueError(msg)
        self.ttl_s = ttl_s
        self.settle_s = settle_s
        self.max_tasks = max_tasks
        self.newest_s = float("-inf")
        self.records_s = float("-inf")
        """The newest time of a task record or event: the clock of expiry."""
        self.expired = 0
        self.evicted_early = 0
        self.late_events = 0
        self.tallies: OrderedDict[str, TaskTally] = OrderedDict()
        self.finishing: OrderedDict[str, float] = OrderedDict()
        self.released: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self.tallies)

    def on_event(self, event: CostEvent) -> list[FinishedTask]:
        """Count a cost event towards its task; return the tasks now due."""
        ts_s = event.ts.timestamp()
        if event.task_id in self.released:
            self.late_events += 1
        elif event.task_id is not None:
            self._touch(event.task_id, ts_s).add(event)
        return self._advance(ts_s)

    def on_usage(self, task_id: str, usage: TaskUsage) -> list[FinishedTask]:
        """Count a usage delta (several events at once) like `on_event`.

        A negative delta takes back what a replayed batch sent before
        (`models.usage_replay`); for a task no longer open there is nothing
        to take back, so it is ignored.
        """
        if task_id in self.released:
            self.late_events += max(usage.events, 0)
        elif usage.events >= 0 or task_id in self.tallies:
            self._touch(task_id, usage.newest_s).add_usage(usage)
        return self._advance(usage.newest_s, expire=False)

    def on_task(self, record: TaskRecord) -> list[FinishedTask]:
        """Take a task record; return the tasks now due."""
        ts_s = record.ts.timestamp()
        if record.task_id not in self.released:
            tally = self._touch(record.task_id, ts_s)
            if record.status == "started" and tally.started is None:
                tally.started = record
            elif record.status == "finished" and tally.finished is None:
                tally.finished = record
                self.finishing[record.task_id] = ts_s
        return self._advance(ts_s)

    def tick(self, now: datetime) -> list[FinishedTask]:
        """Release the finished tasks due at `now` and expire the stale ones."""
        return self._tick(now.timestamp())

    def _advance(self, ts_s: float, *, expire: bool = True) -> list[FinishedTask]:
        self.newest_s = max(self.newest_s, ts_s)
        due = self._release(self.newest_s)
        if expire and ts_s > self.records_s:
            self.records_s = ts_s
            self._expire(ts_s)
        return due

    def _tick(self, now_s: float) -> list[FinishedTask]:
        due = self._release(now_s)
        self._expire(now_s)
        return due

    def _release(self, now_s: float) -> list[FinishedTask]:
        horizon_s = now_s - self.settle_s
        due = []
        while self.finishing:
            task_id, finished_s = next(iter(self.finishing.items()))
            if finished_s > horizon_s:
                break
            del self.finishing[task_id]
            due.append(self._finish(task_id, finished_s))
        return due

    def _expire(self, now_s: float) -> None:
        cutoff_s = now_s - self.ttl_s
        while self.tallies:
            task_id, tally = next(iter(self.tallies.items()))
            if tally.seen_s >= cutoff_s or task_id in self.finishing:
                break
            self._drop(task_id)
            self.expired += 1
        while self.released and next(iter(self.released.values())) < cutoff_s:
            self.released.popitem(last=False)

    def _touch(self, task_id: str, ts_s: float) -> TaskTally:
        tally = self.tallies.get(task_id)
        if tally is None:
            tally = self.tallies[task_id] = TaskTally(seen_s=ts_s)
            self._bound()
        else:
            tally.seen_s = max(tally.seen_s, ts_s)
            self.tallies.move_to_end(task_id)
        return tally

    def _bound(self) -> None:
        while len(self.tallies) > self.max_tasks:
            self._drop(next(iter(self.tallies)))
            self.evicted_early += 1
        while len(self.released) > self.max_tasks:
            self.released.popitem(last=False)

    def _drop(self, task_id: str) -> None:
        del self.tallies[task_id]
        self.finishing.pop(task_id, None)

    def _finish(self, task_id: str, finished_s: float) -> FinishedTask:
        tally = self.tallies.pop(task_id)
        self.released[task_id] = finished_s
        finished = tally.finished
        assert finished is not None, "only finished tasks are queued for release"
        return FinishedTask(
            task_id=task_id,
            ts=finished.ts,
            features=tally.started or finished,
            finished=finished,
            actuals=tally.actuals(),
            events=tally.events,
        )

    def to_state(self) -> dict[str, Any]:
        """Everything the tracker holds, as JSON-ready values (`models.codec.dumps`)."""
        return {
            "format": STATE_FORMAT,
            "settings": [self.ttl_s, self.settle_s, self.max_tasks],
            "newest_s": None if math.isinf(self.newest_s) else self.newest_s,
            "records_s": None if math.isinf(self.records_s) else self.records_s,
            "counters": [self.expired, self.evicted_early, self.late_events],
            "tallies": {k: t.to_state() for k, t in self.tallies.items()},
            "finishing": dict(self.finishing),
            "released": dict(self.released),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TaskTracker":
        """Rebuild a tracker from `to_state`; `InvalidRecord` if it is not one."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else state
            msg = f"task tracker state format {found!r} is not {STATE_FORMAT}"
            raise InvalidRecord(msg)
        try:
            # `models.codec.loads` reads JSON fractions as Decimal: times and
            # settings are floats here, so they are converted on the way in.
            ttl_s, settle_s, max_tasks = state["settings"]
            tracker = cls(float(ttl_s), float(settle_s), int(max_tasks))
            if state["newest_s"] is not None:
                tracker.newest_s = float(state["newest_s"])
            # A checkpoint from before `records_s` had one clock for both.
            records_s = state.get("records_s", state["newest_s"])
            if records_s is not None:
                tracker.records_s = float(records_s)
            counters = state["counters"]
            tracker.expired, tracker.evicted_early, tracker.late_events = counters
            for task_id, tally in state["tallies"].items():
                tracker.tallies[task_id] = TaskTally.from_state(tally)
            for name in ("finishing", "released"):
                times = getattr(tracker, name)
                times.update((k, float(t)) for k, t in state[name].items())
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRecord(f"task tracker state is damaged: {exc!r}") from None
        return tracker
