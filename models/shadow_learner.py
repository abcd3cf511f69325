"""The one learner's state: the model, open tasks, replays, the gate and the offset.

The learner reads its log (`models.task_log`) entry by entry. `take` moves
usage into the open tasks (`models.usage_replay`, `models.tasks`), holds
finished records at the gate until the events path has caught up with them
(`models.task_gate`) and returns the tasks now due; `learn` runs
progressive validation on one of them. A checkpoint holds
all of it with the log offset it stands at, so a learner restored from it
and fed the entries after that offset ends where an uninterrupted one would.

A checkpoint is a header line (JSON), the learner's state (zlib-compressed
JSON) and the model's snapshot (`ShadowModel.to_bytes`). It is trusted
internal data, like the snapshot inside it.
"""

import json
import zlib
from typing import Any

from models.codec import dumps, loads
from models.errors import InvalidRecord, SnapshotError
from models.shadow import ShadowModel
from models.shadow_eval import ShadowPrediction, learn_finished
from models.task_gate import ReleaseGate
from models.task_log import LogEntry
from models.task_usage import ProgressReport, UsageBatch
from models.tasks import FinishedTask, TaskTracker
from models.usage_replay import UsageReplay

CHECKPOINT_FORMAT = 1
_MAGIC = b"spendstream-learner "


class ShadowLearner:
    """Everything the learner holds; `log_offset` is the last entry taken (-1: none)."""

    def __init__(
        self,
        model: ShadowModel,
        tracker: TaskTracker,
        gate: ReleaseGate,
        replay: UsageReplay | None = None,
        log_offset: int = -1,
    ) -> None:
        self.model = model
        self.tracker = tracker
        self.gate = gate
        self.replay = replay or UsageReplay()
        self.log_offset = log_offset

    def take(self, position: int, entry: LogEntry) -> list[FinishedTask]:
        """Take the log entry at `position`; return the tasks now due for learning."""
        due: list[FinishedTask] = []
        if isinstance(entry, UsageBatch):
            for task_id, usage in self.replay.apply(entry).items():
                due += self.tracker.on_usage(task_id, usage)
            self.gate.usage(entry)
            due += self._release()
        elif isinstance(entry, ProgressReport):
            self.gate.progress(entry)
            due += self._release()
        elif entry.status == "finished":
            self.gate.hold(entry, position)
            due += self._release()
        else:
            due += self.tracker.on_task(entry)
        self.log_offset = position
        return due

    def learn(self, task: FinishedTask) -> ShadowPrediction:
        """Estimate the task, then learn it; `InvalidTask` if it cannot be learnt."""
        return learn_finished(self.model, task)

    def _release(self) -> list[FinishedTask]:
        due: list[FinishedTask] = []
        for record in self.gate.due():
            due += self.tracker.on_task(record)
        return due

    def checkpoint(self, snapshot: bytes) -> bytes:
        """The checkpoint, around `snapshot` (this model's `publish` or `to_bytes`)."""
        state = zlib.compress(dumps(self._state()), 1)
        header = {
            "format": CHECKPOINT_FORMAT,
            "log_offset": self.log_offset,
            "model_version": self.model.model_version,
            "n_learnt": self.model.n_learnt,
            "state_bytes": len(state),
        }
        return _MAGIC + json.dumps(header).encode() + b"\n" + state + snapshot

    @classmethod
    def restore(cls, data: bytes) -> "ShadowLearner":
        """A learner from `checkpoint`; `SnapshotError` says why not."""
        header, rest = _split(data)
        size = header["state_bytes"]
        try:
            state = loads(zlib.decompress(rest[:size]))
            model = ShadowModel.from_bytes(rest[size:])
            return cls(
                model,
                TaskTracker.from_state(state["tracker"]),
                ReleaseGate.from_state(state["gate"]),
                UsageReplay.from_state(state["replay"]),
                log_offset=int(header["log_offset"]),
            )
        except (zlib.error, InvalidRecord, KeyError, TypeError, ValueError) as exc:
            msg = f"learner checkpoint is damaged: {exc!r}; the learner starts afresh"
            raise SnapshotError(msg) from None

    def _state(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker.to_state(),
            "gate": self.gate.to_state(),
            "replay": self.replay.to_state(),
        }


def checkpoint_header(data: bytes) -> dict[str, Any]:
    """A checkpoint's header: format, log_offset, model_version, n_learnt."""
    return _split(data)[0]


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    end = data.find(b"\n")
    if not data.startswith(_MAGIC) or end < 0:
        raise SnapshotError("not a learner checkpoint; check where it came from")
    try:
        header: dict[str, Any] = json.loads(data[len(_MAGIC) : end])
    except ValueError:
        raise SnapshotError("learner checkpoint header is not JSON") from None
    if header.get("format") != CHECKPOINT_FORMAT:
        msg = (
            f"learner checkpoint format {header.get('format')!r} is not "
            f"{CHECKPOINT_FORMAT}; the learner starts afresh"
        )
        raise SnapshotError(msg)
    return header, data[end + 1 :]
