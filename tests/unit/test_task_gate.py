"""The gate: a finished record waits until every events partition has caught up."""

from datetime import UTC, datetime, timedelta

from models.codec import dumps, loads
from models.records import TaskRecord
from models.task_gate import ReleaseGate
from models.task_usage import ProgressReport, UsageBatch

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FINISH_S = T0.timestamp()


def finished(task_id: str, s: float = 0) -> TaskRecord:
    return TaskRecord(status="finished", task_id=task_id, ts=T0 + timedelta(seconds=s))


def newest(
    partition: int, newest_s: float | None, partitions: int = 2
) -> ProgressReport:
    return ProgressReport(partitions, log_end=0, newest_s={partition: newest_s})


def caught_up(log_end: int, *partitions: int, of: int = 2) -> ProgressReport:
    return ProgressReport(
        of, log_end, dict.fromkeys(partitions), caught_up=frozenset(partitions)
    )


def released(gate: ReleaseGate) -> list[str]:
    return [record.task_id for record in gate.due()]


def test_a_record_waits_for_every_partition_to_pass_its_finish_by_settle_s() -> None:
    gate = ReleaseGate(settle_s=2)
    gate.hold(finished("t1"), position=5)
    gate.progress(newest(0, FINISH_S + 2))
    gate.progress(newest(1, FINISH_S + 1.999))
    assert released(gate) == []

    gate.usage(UsageBatch(1, marker=-1, part=0, newest_s=FINISH_S + 2))
    assert released(gate) == ["t1"]
    assert released(gate) == []


def test_caught_up_covers_only_records_below_the_log_end_it_was_seen_at() -> None:
    gate = ReleaseGate(settle_s=2)
    gate.hold(finished("t1"), position=3)
    gate.progress(caught_up(3, 0, 1))
    assert released(gate) == []

    gate.progress(caught_up(4, 0))
    assert released(gate) == []
    gate.progress(caught_up(9, 1))
    assert released(gate) == ["t1"]


def test_falling_behind_again_keeps_the_older_claim_for_older_records() -> None:
    gate = ReleaseGate(settle_s=0)
    gate.progress(caught_up(10, 0, 1))
    gate.progress(ProgressReport(2, 20, {0: None, 1: None}))  # behind again
    gate.hold(finished("old"), position=7)
    gate.hold(finished("new"), position=15)

    assert released(gate) == ["old"]
    assert [r.task_id for _, r in gate.held] == ["new"]


def test_a_partition_that_never_reported_holds_everything() -> None:
    gate = ReleaseGate(settle_s=0)
    gate.hold(finished("t1"), position=1)
    gate.progress(caught_up(2, 0, 2, of=3))
    assert released(gate) == []
    gate.progress(newest(1, FINISH_S, partitions=3))
    assert released(gate) == ["t1"]


def test_records_leave_in_log_order_and_the_rest_stay_held() -> None:
    gate = ReleaseGate(settle_s=1)
    gate.hold(finished("late", s=50), position=1)
    gate.hold(finished("early", s=10), position=2)
    gate.hold(finished("first", s=0), position=3)
    for partition in (0, 1):
        gate.progress(newest(partition, FINISH_S + 11))

    assert released(gate) == ["early", "first"]
    assert [r.task_id for _, r in gate.held] == ["late"]


def test_state_round_trips_with_its_held_records() -> None:
    gate = ReleaseGate(settle_s=3)
    gate.hold(finished("t1"), position=9)
    gate.progress(newest(0, FINISH_S + 3))
    gate.progress(caught_up(5, 1))
    again = ReleaseGate.from_state(loads(dumps(gate.to_state())))

    assert again.to_state() == gate.to_state()
    assert released(again) == []
    again.progress(caught_up(10, 1))
    assert released(again) == ["t1"]
