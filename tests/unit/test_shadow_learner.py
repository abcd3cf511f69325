"""The learner: exact actuals through the gate, and checkpoints that resume."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from models.errors import InvalidTask, SnapshotError
from models.events import CostEvent
from models.shadow import ShadowModel
from models.shadow_eval import ShadowPrediction
from models.shadow_learner import ShadowLearner, checkpoint_header
from models.task_gate import ReleaseGate
from models.task_log import LogEntry
from models.task_usage import ProgressReport, UsageAggregator, UsageBatch
from models.tasks import TaskTracker
from tests.unit.task_history import generate
from tests.unit.task_stream import Item, task_stream

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HISTORY = generate(80, seed=3)


def fresh() -> ShadowLearner:
    model = ShadowModel(min_tasks=20)
    tracker = TaskTracker(ttl_s=3_600.5, settle_s=0.0)  # fractions, as JSON has them
    return ShadowLearner(model, tracker, ReleaseGate(settle_s=2.5))


def log_of(items: list[Item], poll: int = 5) -> list[LogEntry]:
    """Records as they come; events summed into a usage batch every `poll`;
    progress reports first (one events partition) and last (caught up)."""
    entries: list[LogEntry] = [ProgressReport(1, 0, {0: None})]
    sums, part, pending = UsageAggregator(), 0, 0

    def send() -> None:
        nonlocal part, pending
        entries.append(UsageBatch(0, -1, part, sums.newest_s, sums.drain()))
        part, pending = part + 1, 0

    for item in items:
        if isinstance(item, CostEvent):
            sums.add([item])
            pending += 1
            if pending == poll:
                send()
        else:
            entries.append(item)
    send()
    progress = {0: sums.newest_s}
    entries.append(ProgressReport(1, len(entries), progress, frozenset({0})))
    return entries


def run(learner: ShadowLearner, entries: list[LogEntry], first: int = 0) -> list[Any]:
    found = []
    for position, entry in enumerate(entries[first:], start=first):
        for task in learner.take(position, entry):
            found.append(learner.learn(task))
    return found


def test_every_task_is_learnt_once_with_its_exact_actuals() -> None:
    learner = fresh()
    predictions = run(learner, log_of(list(task_stream(HISTORY, T0))))

    assert [p.task_id for p in predictions] == [f"task-{n:05d}" for n in range(80)]
    assert [p.actuals for p in predictions] == [a for _, a in HISTORY]
    assert learner.model.n_learnt == 80
    assert not learner.tracker.tallies and not learner.gate.held


def test_a_finished_record_ahead_of_its_last_steps_waits_for_them() -> None:
    entries = log_of(list(task_stream(HISTORY[:3], T0)), poll=1000)
    # Every event lands in the one batch at the end, after all three finishes.
    batch = entries[-2]
    assert isinstance(batch, UsageBatch) and len(batch.tasks) == 3
    learner = fresh()

    assert run(learner, entries[:-2]) == []
    assert len(learner.gate.held) == 3
    predictions = run(learner, entries, first=len(entries) - 2)
    assert [p.actuals for p in predictions] == [a for _, a in HISTORY[:3]]


def test_a_task_without_actuals_is_refused_and_learns_nothing() -> None:
    stream = [i for i in task_stream(HISTORY[:1], T0) if not isinstance(i, CostEvent)]
    learner = fresh()
    [task] = [t for p, e in enumerate(log_of(stream)) for t in learner.take(p, e)]

    with pytest.raises(InvalidTask, match="has no actuals"):
        learner.learn(task)
    assert learner.model.n_learnt == 0


def same_row(mine: ShadowPrediction, theirs: ShadowPrediction) -> None:
    for key, value in mine.to_row().items():
        other = theirs.to_row()[key]
        if isinstance(value, float):
            assert value == pytest.approx(other, rel=1e-9), key
        elif isinstance(value, Decimal):
            assert abs(value - other) <= Decimal("1e-9"), key
        else:
            assert value == other, key


def test_a_restored_learner_ends_where_an_uninterrupted_one_does() -> None:
    entries = log_of(list(task_stream(HISTORY, T0)))
    half = len(entries) // 2
    uninterrupted = fresh()
    whole = run(uninterrupted, entries[:half])
    uninterrupted.model.publish()
    whole += run(uninterrupted, entries, first=half)

    learner = fresh()
    before = run(learner, entries[:half])
    data = learner.checkpoint(learner.model.publish())
    restored = ShadowLearner.restore(data)
    after = run(restored, entries, first=restored.log_offset + 1)

    assert checkpoint_header(data)["log_offset"] == half - 1
    assert restored.log_offset == len(entries) - 1
    assert len(before) + len(after) == len(whole) == 80
    assert 0 < len(before) < 80
    for mine, theirs in zip(before + after, whole, strict=True):
        same_row(mine, theirs)
    assert restored.model.model_version == 1
    assert restored.model.n_learnt == 80


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda data: b"hello\n" + data, "not a learner checkpoint"),
        (lambda data: data.replace(b'"format": 1', b'"format": 9'), "format 9"),
        (lambda data: data[:-100], "cannot be loaded"),
        (lambda data: data.replace(b"x", b"y", 1)[:200], "damaged"),
    ],
)
def test_a_damaged_checkpoint_is_refused_with_a_reason(
    mangle: Any, reason: str
) -> None:
    learner = fresh()
    run(learner, log_of(list(task_stream(HISTORY[:30], T0))))
    data = learner.checkpoint(learner.model.to_bytes())
    with pytest.raises(SnapshotError, match=reason):
        ShadowLearner.restore(mangle(data))
