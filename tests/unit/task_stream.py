"""A generated task history as gateways send it: started, cost events, finished.

Each task of `tests.unit.task_history` becomes a `started` record with its
features, one cost event per step carrying its `task_id` (tokens and cost
split so that they sum exactly to the task's actuals), and a `finished`
record after the last step. Tasks follow one another `spacing_s` apart.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from models.events import CostEvent
from models.money import to_usd
from models.records import TaskRecord
from models.task_features import TaskFeatures
from models.task_tally import TaskActuals

Item = TaskRecord | CostEvent


def task_stream(
    history: list[tuple[TaskFeatures, TaskActuals]],
    start: datetime,
    spacing_s: float = 60,
    first: int = 0,
) -> Iterator[Item]:
    """The records and events of every task, in event-time order; tasks are
    numbered from `first`, which also starts `first` spacings after `start`."""
    for n, (features, actuals) in enumerate(history, start=first):
        began = start + timedelta(seconds=n * spacing_s)
        yield from one_task(f"task-{n:05d}", features, actuals, began)


def one_task(
    task_id: str, features: TaskFeatures, actuals: TaskActuals, began: datetime
) -> Iterator[Item]:
    """One task: started, a cost event per step one second apart, finished."""
    yield TaskRecord(
        status="started", task_id=task_id, ts=began, **features.model_dump()
    )
    steps = actuals.steps
    tokens, cost = _split(actuals.tokens, steps), _split_usd(actuals.cost_usd, steps)
    for step in range(steps):
        yield CostEvent(
            event_id=f"{task_id}-{step}",
            ts=began + timedelta(seconds=step + 1),
            session_id=f"session-{task_id}",
            agent=features.agent,
            principal=features.principal or "dept",
            user=features.user,
            model=features.model,
            task_id=task_id,
            input_tokens=tokens[step],
            cost_usd=cost[step],
        )
    ended = began + timedelta(seconds=steps + 1)
    yield TaskRecord(status="finished", task_id=task_id, ts=ended)


def _split(total: int, parts: int) -> list[int]:
    share, rest = divmod(total, parts)
    return [share + (1 if n < rest else 0) for n in range(parts)]


def _split_usd(total: Decimal, parts: int) -> list[Decimal]:
    share = to_usd(total / parts)
    return [share] * (parts - 1) + [to_usd(total - share * (parts - 1))]
