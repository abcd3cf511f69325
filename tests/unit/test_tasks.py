"""Task accounting: actuals from cost events, precedence, expiry, state."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.events import CostEvent
from models.records import TaskRecord
from models.task_tally import TaskActuals
from models.task_usage import TaskUsage
from models.tasks import TaskTracker

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(n: int, task_id: str | None, cost: str, s: float = 0, **kw: Any) -> CostEvent:
    return CostEvent(
        event_id=f"e{n}",
        ts=at(s),
        session_id="s1",
        agent="coder",
        principal="research",
        task_id=task_id,
        cost_usd=Decimal(cost),
        **kw,
    )


def task(status: str, task_id: str = "t1", s: float = 0, **kw: Any) -> TaskRecord:
    return TaskRecord.model_validate(
        {"status": status, "task_id": task_id, "ts": at(s), **kw}
    )


def test_actuals_are_the_count_tokens_and_exact_cost_of_the_tasks_events() -> None:
    tracker = TaskTracker()
    tracker.on_task(task("started", prompt="fix the bug", agent="coder"))
    tracker.on_event(event(1, "t1", "0.1", 1, input_tokens=100, output_tokens=20))
    tracker.on_event(event(2, "t1", "0.2", 2, input_tokens=50, output_tokens=5))
    tracker.on_event(event(3, "other", "5", 2, input_tokens=999))
    tracker.on_event(event(4, None, "7", 2, input_tokens=999))

    [done] = tracker.on_task(task("finished", s=3))

    assert done.actuals == TaskActuals(steps=2, tokens=175, cost_usd=Decimal("0.3"))
    assert done.features.prompt == "fix the bug"
    assert done.events == 2


def test_totals_on_the_finished_record_win_field_by_field() -> None:
    tracker = TaskTracker()
    tracker.on_event(event(1, "t1", "0.10", 1, input_tokens=10))
    tracker.on_event(event(2, "t1", "0.10", 2, input_tokens=10))

    [done] = tracker.on_task(task("finished", s=3, cost_usd="0.25"))

    assert done.actuals == TaskActuals(steps=2, tokens=20, cost_usd=Decimal("0.25"))


def test_without_events_only_complete_totals_make_a_task_learnable() -> None:
    tracker = TaskTracker()
    [partial] = tracker.on_task(task("finished", "t1", cost_usd="1"))
    [complete] = tracker.on_task(
        task("finished", "t2", steps=4, tokens=800, cost_usd="0.5")
    )

    assert partial.actuals is None
    assert complete.actuals == TaskActuals(4, 800, Decimal("0.5"))


def test_features_come_from_the_finished_record_when_started_was_missed() -> None:
    tracker = TaskTracker()
    [done] = tracker.on_task(task("finished", prompt="summarise", agent="writer"))
    assert (done.features.prompt, done.features.agent) == ("summarise", "writer")


def test_a_settle_delay_counts_events_that_arrive_after_finished() -> None:
    tracker = TaskTracker(settle_s=30)
    tracker.on_event(event(1, "t1", "0.01", 0))
    assert tracker.on_task(task("finished", s=5)) == []

    assert tracker.on_event(event(2, "t1", "0.02", 8)) == []
    assert tracker.on_event(event(3, None, "0.02", 34)) == []
    [done] = tracker.on_event(event(4, "t2", "0.02", 35))

    assert done.actuals == TaskActuals(steps=2, tokens=0, cost_usd=Decimal("0.03"))


def test_a_quiet_stream_is_released_by_the_injected_clock() -> None:
    tracker = TaskTracker(settle_s=30)
    tracker.on_task(task("finished", s=5, steps=1, tokens=2, cost_usd="0.1"))
    assert tracker.tick(at(34)) == []
    [done] = tracker.tick(at(35))
    assert done.task_id == "t1"


def test_events_after_release_are_late_and_open_no_new_task() -> None:
    tracker = TaskTracker()
    tracker.on_task(task("finished", steps=1, tokens=1, cost_usd="1"))
    tracker.on_event(event(9, "t1", "0.5", 1))
    assert tracker.on_task(task("finished", s=2)) == []

    assert tracker.late_events == 1
    assert len(tracker) == 0


def test_tasks_that_never_finish_expire_after_ttl_of_event_time() -> None:
    tracker = TaskTracker(ttl_s=60)
    tracker.on_task(task("started", "idle", s=0))
    tracker.on_task(task("started", "busy", s=0))
    tracker.on_event(event(1, "busy", "0.01", 50))

    tracker.on_event(event(2, None, "0.01", 60))
    assert len(tracker) == 2
    tracker.on_event(event(3, None, "0.01", 61))

    assert list(tracker.tallies) == ["busy"]
    assert tracker.expired == 1


def test_a_backfill_is_not_expired_by_a_clock_it_does_not_follow() -> None:
    tracker = TaskTracker(ttl_s=60)
    tracker.on_task(task("started", s=0))
    tracker.on_event(event(1, "t1", "0.5", 55))
    [done] = tracker.on_task(task("finished", s=110))

    assert done.actuals == TaskActuals(1, 0, Decimal("0.5"))
    assert tracker.expired == 0


def test_usage_running_days_ahead_does_not_expire_tasks_whose_records_lag() -> None:
    """A backfill: the events path has summed two days of tasks before the task
    router forwards the first task's records."""
    tracker = TaskTracker(ttl_s=86_400)
    day_s = 86_400.0
    tracker.on_usage("early", TaskUsage(3, 300, Decimal("0.30"), at(5).timestamp()))
    far = at(2 * day_s).timestamp()
    tracker.on_usage("late", TaskUsage(1, 100, Decimal("0.10"), far))
    tracker.on_task(task("started", "early", s=0))
    [done] = tracker.on_task(task("finished", "early", s=10))

    assert done.actuals == TaskActuals(3, 300, Decimal("0.30"))
    assert tracker.expired == 0


def test_memory_stays_bounded_past_max_tasks() -> None:
    tracker = TaskTracker(max_tasks=100)
    for n in range(250):
        tracker.on_task(task("started", f"t{n}", s=n))
    assert len(tracker) == 100
    assert tracker.evicted_early == 150
    assert "t249" in tracker.tallies and "t149" not in tracker.tallies


def test_state_round_trips_through_json_exactly() -> None:
    tracker = TaskTracker(ttl_s=600, settle_s=10)
    tracker.on_task(task("started", prompt="plan a trip", agent="planner"))
    tracker.on_event(event(1, "t1", "0.000000001", 1, output_tokens=3))
    tracker.on_event(event(2, "t1", "0.1", 2, output_tokens=4))
    tracker.on_task(task("finished", s=3))

    restored = TaskTracker.from_state(loads(dumps(tracker.to_state())))

    assert restored.on_event(event(3, None, "1", 12)) == []
    [done] = restored.on_event(event(4, None, "1", 13))
    assert done.actuals == TaskActuals(2, 7, Decimal("0.100000001"))
    assert done.features.prompt == "plan a trip"
    assert restored.settle_s == 10


def test_fractional_settings_and_times_come_back_as_floats() -> None:
    tracker = TaskTracker(ttl_s=600.5, settle_s=2.5)
    tracker.on_event(event(1, "t1", "0.2", 0.25))
    tracker.on_task(task("finished", s=1.5))
    tracker.on_task(task("finished", "t2", s=9.75))

    restored = TaskTracker.from_state(loads(dumps(tracker.to_state())))
    assert (restored.ttl_s, restored.settle_s) == (600.5, 2.5)
    assert list(restored.finishing.values()) == [9.75 + T0.timestamp()]
    [done] = restored.on_event(event(2, None, "1", 12.25))
    assert done.task_id == "t2"


@pytest.mark.parametrize(
    "state", [{"format": 99}, {"format": 1, "settings": [1]}, {"format": 1}]
)
def test_a_damaged_state_is_refused_with_a_reason(state: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecord, match="task tracker state"):
        TaskTracker.from_state(state)
