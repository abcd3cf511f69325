"""The gate: a finished record waits until every events partition has caught up."""

from datetime import UTC, datetime, timedelta

from models.codec import dumps, loads
from models.records import TaskRecord
from models.task_gate import ReleaseGate
from models.task_usage import UsageBatch

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FINISH_S = T0.timestamp()


def finished(task_id: str, s: float = 0) -> TaskRecord:
    return TaskRecord(status="finished", task_id=task_id, ts=T0 + timedelta(seconds=s))


def report(
    partition: int, newest_s: float | None, caught_up: bool = False, partitions: int = 2
) -> UsageBatch:
    return UsageBatch(partition, -1, 0, partitions, newest_s, caught_up)


def released(gate: ReleaseGate) -> list[str]:
    return [record.task_id for record in gate.due()]


def test_a_record_waits_for_every_partition_to_pass_its_finish_by_settle_s() -> None:
    gate = ReleaseGate(settle_s=2)
    gate.hold(finished("t1"), position=5)
    gate.report(report(0, FINISH_S + 2), position=6)
    gate.report(report(1, FINISH_S + 1.999), position=7)
    assert released(gate) == []

    gate.report(report(1, FINISH_S + 2), position=8)
    assert released(gate) == ["t1"]
    assert released(gate) == []


def test_caught_up_counts_only_when_reported_after_the_record() -> None:
    gate = ReleaseGate(settle_s=2)
    gate.report(report(0, None, caught_up=True), position=1)
    gate.report(report(1, None, caught_up=True), position=2)
    gate.hold(finished("t1"), position=3)
    assert released(gate) == []

    gate.report(report(0, None, caught_up=True), position=4)
    assert released(gate) == []
    gate.report(report(1, FINISH_S - 60, caught_up=True), position=5)
    assert released(gate) == ["t1"]


def test_a_partition_that_never_reported_holds_everything() -> None:
    gate = ReleaseGate(settle_s=0)
    gate.hold(finished("t1"), position=1)
    gate.report(report(0, FINISH_S + 100, partitions=3), position=2)
    gate.report(report(2, FINISH_S + 100, partitions=3), position=3)
    assert released(gate) == []
    gate.report(report(1, FINISH_S + 100, partitions=3), position=4)
    assert released(gate) == ["t1"]


def test_records_leave_in_log_order_and_the_rest_stay_held() -> None:
    gate = ReleaseGate(settle_s=1)
    gate.hold(finished("late", s=50), position=1)
    gate.hold(finished("early", s=10), position=2)
    gate.hold(finished("first", s=0), position=3)
    for partition in (0, 1):
        gate.report(report(partition, FINISH_S + 11), position=4 + partition)

    assert released(gate) == ["early", "first"]
    assert [r.task_id for _, r in gate.held] == ["late"]


def test_state_round_trips_with_its_held_records() -> None:
    gate = ReleaseGate(settle_s=3)
    gate.hold(finished("t1"), position=9)
    gate.report(report(0, FINISH_S + 3), position=10)
    again = ReleaseGate.from_state(loads(dumps(gate.to_state())))

    assert again.to_state() == gate.to_state()
    again.report(report(1, None, caught_up=True), position=11)
    assert released(again) == ["t1"]
