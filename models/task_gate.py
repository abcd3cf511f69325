"""Holding a `finished` record until the events path has caught up with it.

Task records and the usage of their cost events reach the learner by two
paths: a finished record is forwarded at once, while the events path may
lag behind (a backlog, a flush interval, a backfill sent all at once).
Released too early, a task would be learnt without its last steps. So each
finished record waits until every events partition has reported, in a usage
batch that came after it in the learner's log, that it has caught up with
its topic; or that it has accepted events at least `settle_s` of event time
past the task's finish. A partition that has not reported yet holds
everything.

>>> from datetime import UTC, datetime
>>> from models.task_usage import UsageBatch
>>> t = datetime(2026, 11, 1, tzinfo=UTC)
>>> gate = ReleaseGate(settle_s=2)
>>> gate.hold(TaskRecord(status="finished", task_id="t1", ts=t), position=10)
>>> def report(partition, newest_s, caught_up):
...     return UsageBatch(partition, marker=-1, part=0, partitions=2,
...         newest_s=newest_s, caught_up=caught_up)
>>> gate.report(report(0, t.timestamp() + 5, caught_up=False), position=11)
>>> gate.due()  # partition 1 has not reported
[]
>>> gate.report(report(1, None, caught_up=True), position=12)
>>> [r.task_id for r in gate.due()]
['t1']
"""

from dataclasses import dataclass
from typing import Any

from models.records import TaskRecord
from models.task_usage import UsageBatch
from models.validation import validate


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """How far one events partition's ingest had got, and where it said so."""

    newest_s: float | None
    caught_up: bool
    position: int

    def passes(self, finished_s: float, position: int, settle_s: float) -> bool:
        """Whether the partition has caught up with a record at `position`."""
        if self.caught_up and self.position > position:
            return True
        return self.newest_s is not None and self.newest_s >= finished_s + settle_s


class ReleaseGate:
    """Finished records held in log order, and each partition's last report."""

    def __init__(self, settle_s: float = 2.0) -> None:
        if settle_s < 0:
            raise ValueError(f"settle_s must not be negative, got {settle_s}")
        self.settle_s = settle_s
        self.partitions = 0
        self.reports: dict[int, PartitionReport] = {}
        self.held: list[tuple[int, TaskRecord]] = []

    def hold(self, record: TaskRecord, position: int) -> None:
        """Hold a finished record read at `position` in the learner's log."""
        self.held.append((position, record))

    def report(self, batch: UsageBatch, position: int) -> None:
        """Take a partition's progress from a usage batch read at `position`."""
        self.partitions = max(self.partitions, batch.partitions)
        self.reports[batch.partition] = PartitionReport(
            batch.newest_s, batch.caught_up, position
        )

    def due(self) -> list[TaskRecord]:
        """Release, in log order, the held records every partition has passed."""
        if not self.held or self.partitions == 0:
            return []
        reports = [self.reports.get(p) for p in range(self.partitions)]
        if None in reports:
            return []
        released, kept = [], []
        for position, record in self.held:
            finished_s = record.ts.timestamp()
            if all(
                r is not None and r.passes(finished_s, position, self.settle_s)
                for r in reports
            ):
                released.append(record)
            else:
                kept.append((position, record))
        self.held = kept
        return released

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state: partitions, reports and held records."""
        return {
            "settle_s": self.settle_s,
            "partitions": self.partitions,
            "reports": {
                str(p): [r.newest_s, r.caught_up, r.position]
                for p, r in self.reports.items()
            },
            "held": [[pos, record.to_json_dict()] for pos, record in self.held],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ReleaseGate":
        """Rebuild from `to_state`; raises on a damaged state."""
        gate = cls(float(state["settle_s"]))
        gate.partitions = int(state["partitions"])
        for p, (newest_s, caught_up, position) in state["reports"].items():
            newest = None if newest_s is None else float(newest_s)
            gate.reports[int(p)] = PartitionReport(newest, bool(caught_up), position)
        gate.held = [(int(pos), validate(TaskRecord, r)) for pos, r in state["held"]]
        return gate
