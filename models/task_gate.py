"""Holding a `finished` record until the events path has caught up with it.

Task records and the usage of their cost events reach the learner by two
paths: a finished record is forwarded at once, while the events path may lag
behind (a backlog, a flush interval, a backfill sent all at once). Released
too early, a task would be learnt without its last steps. So a finished
record at log position `pos` waits until every events partition has either

- been reported caught up at a log end above `pos` (`ProgressReport`), or
- accepted an event at least `settle_s` of event time past the task's finish.

A partition never reported holds everything. A partition that falls behind
again keeps its older caught-up log end, which only covers older records.

Known shortcoming: the second rule takes a partition's events to arrive in
event-time order give or take `settle_s`. A gateway that sends a task's
events later than that (a replay of one session while others run on) lets
the task go without them: it is learnt short, or skipped when it has no
usage yet. Its spend is metered all the same.

>>> from datetime import UTC, datetime
>>> from models.task_usage import ProgressReport
>>> t = datetime(2026, 11, 1, tzinfo=UTC)
>>> gate = ReleaseGate(settle_s=2)
>>> gate.hold(TaskRecord(status="finished", task_id="t1", ts=t), position=10)
>>> gate.progress(ProgressReport(2, log_end=11, newest_s={0: None}, caught_up={0}))
>>> gate.due()  # partition 1 has not reported
[]
>>> gate.progress(ProgressReport(2, log_end=11, newest_s={1: t.timestamp() + 2}))
>>> [r.task_id for r in gate.due()]
['t1']
"""

from typing import Any

from models.records import TaskRecord
from models.task_usage import ProgressReport, UsageBatch
from models.validation import validate


class ReleaseGate:
    """Finished records held in log order, and what each partition has passed."""

    def __init__(self, settle_s: float = 2.0) -> None:
        if settle_s < 0:
            raise ValueError(f"settle_s must not be negative, got {settle_s}")
        self.settle_s = settle_s
        self.partitions = 0
        self.newest_s: dict[int, float] = {}
        """Per partition, the newest event time accepted."""
        self.caught_up: dict[int, int] = {}
        """Per partition, the highest log end at which it was seen caught up."""
        self.held: list[tuple[int, TaskRecord]] = []

    def hold(self, record: TaskRecord, position: int) -> None:
        """Hold a finished record read at `position` in the learner's log."""
        self.held.append((position, record))

    def usage(self, batch: UsageBatch) -> None:
        """Take a partition's newest event time from a usage batch."""
        self._newest(batch.partition, batch.newest_s)

    def progress(self, report: ProgressReport) -> None:
        """Take a worker's report on its partitions."""
        self.partitions = max(self.partitions, report.partitions)
        for partition, newest_s in report.newest_s.items():
            self._newest(partition, newest_s)
        for partition in report.caught_up:
            before = self.caught_up.get(partition, -1)
            self.caught_up[partition] = max(before, report.log_end)

    def due(self) -> list[TaskRecord]:
        """Release, in log order, the held records every partition has passed."""
        if not self.held or self.partitions == 0:
            return []
        released, kept = [], []
        for position, record in self.held:
            if self._passed(position, record.ts.timestamp()):
                released.append(record)
            else:
                kept.append((position, record))
        self.held = kept
        return released

    def _passed(self, position: int, finished_s: float) -> bool:
        horizon_s = finished_s + self.settle_s
        return all(
            self.caught_up.get(p, -1) > position
            or self.newest_s.get(p, float("-inf")) >= horizon_s
            for p in range(self.partitions)
        )

    def _newest(self, partition: int, newest_s: float | None) -> None:
        if newest_s is not None:
            self.newest_s[partition] = max(
                newest_s, self.newest_s.get(partition, newest_s)
            )

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state: partitions, what each has passed, held records."""
        return {
            "settle_s": self.settle_s,
            "partitions": self.partitions,
            "newest_s": {str(p): t for p, t in self.newest_s.items()},
            "caught_up": {str(p): end for p, end in self.caught_up.items()},
            "held": [[pos, record.to_json_dict()] for pos, record in self.held],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ReleaseGate":
        """Rebuild from `to_state`; raises on a damaged state."""
        gate = cls(float(state["settle_s"]))
        gate.partitions = int(state["partitions"])
        gate.newest_s = {int(p): float(t) for p, t in state["newest_s"].items()}
        gate.caught_up = {int(p): int(end) for p, end in state["caught_up"].items()}
        gate.held = [(int(pos), validate(TaskRecord, r)) for pos, r in state["held"]]
        return gate
