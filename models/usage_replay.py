"""Applying usage batches once, however often the events path replays them.

The ingest replays an events partition after a crash from its last flushed
offset, and its polls may fall differently the second time. Every batch sent
while reading after one flushed offset carries that offset as its `marker`,
numbered by `part` from 0. So a batch whose marker is the partition's open
marker and whose part is 0 starts a replay: the sums the open marker holds
are taken back, and the replay's batches count instead. Only the flush in
progress can be replayed, so one open marker per partition is enough.

>>> from decimal import Decimal
>>> from models.task_usage import TaskUsage, UsageBatch
>>> def batch(part, cost):
...     usage = TaskUsage(1, 10, Decimal(cost), 0.0)
...     return UsageBatch(0, marker=41, part=part, newest_s=0.0, tasks={"t1": usage})
>>> replay = UsageReplay()
>>> _ = replay.apply(batch(0, "0.1")), replay.apply(batch(1, "0.2"))
>>> replay.apply(batch(0, "0.1"))["t1"]  # the crash replays part 0: take back both
TaskUsage(events=-1, tokens=-10, cost_usd=Decimal('-0.200000000'), newest_s=0.0)

Known shortcoming: a zombie worker (one that lost its partition but still
sends) can interleave its batches with the new owner's under another marker;
such usage counts twice. Kafka fencing (a transactional producer per
partition) would remove it.
"""

from dataclasses import dataclass, field
from typing import Any

from models.task_usage import TaskUsage, UsageBatch


@dataclass(slots=True)
class _OpenMarker:
    marker: int
    sums: dict[str, TaskUsage] = field(default_factory=dict)


class UsageReplay:
    """Per events partition, the open marker and what was applied under it."""

    def __init__(self) -> None:
        self.open: dict[int, _OpenMarker] = {}

    def apply(self, batch: UsageBatch) -> dict[str, TaskUsage]:
        """The net usage per task this batch adds, replays taken into account."""
        net: dict[str, TaskUsage] = {}
        current = self.open.get(batch.partition)
        if current is not None and current.marker == batch.marker and batch.part == 0:
            net = {task_id: usage.negated() for task_id, usage in current.sums.items()}
            current = None
        if current is None or current.marker != batch.marker:
            current = self.open[batch.partition] = _OpenMarker(batch.marker)
        for task_id, usage in batch.tasks.items():
            held = current.sums.get(task_id)
            current.sums[task_id] = usage if held is None else held.plus(usage)
            before = net.get(task_id)
            net[task_id] = usage if before is None else before.plus(usage)
        return net

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state: per partition, the open marker and its sums."""
        return {
            str(partition): {
                "marker": m.marker,
                "sums": {task_id: u.to_json() for task_id, u in m.sums.items()},
            }
            for partition, m in self.open.items()
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "UsageReplay":
        """Rebuild from `to_state`; raises KeyError, TypeError or ValueError."""
        replay = cls()
        for partition, m in state.items():
            sums = {str(k): TaskUsage.from_json(v) for k, v in m["sums"].items()}
            replay.open[int(partition)] = _OpenMarker(int(m["marker"]), sums)
        return replay
