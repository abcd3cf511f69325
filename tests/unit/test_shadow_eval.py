"""Progressive validation: predict, then learn; score what was predicted."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from models.errors import InvalidTask
from models.events import CostEvent
from models.records import TaskRecord
from models.shadow import ShadowModel
from models.shadow_baseline import Basis
from models.shadow_estimate import Estimate
from models.shadow_eval import ShadowPrediction, ShadowScore, learn_finished
from models.task_tally import TaskActuals
from models.tasks import FinishedTask, TaskTracker

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def finished_task(task_id: str, prompt: str | None = "Tidy the docs") -> FinishedTask:
    tracker = TaskTracker()
    tracker.on_task(
        TaskRecord(status="started", task_id=task_id, ts=T0, prompt=prompt, agent="c")
    )
    for n, cost in enumerate(["0.002", "0.003"]):
        tracker.on_event(
            CostEvent(
                event_id=f"{task_id}-{n}",
                ts=T0 + timedelta(seconds=n),
                session_id="s",
                agent="c",
                principal="eng",
                task_id=task_id,
                input_tokens=100,
                output_tokens=50,
                cost_usd=Decimal(cost),
            )
        )
    end = T0 + timedelta(seconds=5)
    [done] = tracker.on_task(TaskRecord(status="finished", task_id=task_id, ts=end))
    return done


def test_learn_finished_returns_the_estimate_made_before_learning() -> None:
    model = ShadowModel(min_tasks=1)
    first = learn_finished(model, finished_task("t1"))
    second = learn_finished(model, finished_task("t2"))

    assert first.estimate.basis == "no_history"
    assert (second.estimate.basis, second.estimate.n_learnt) == ("model", 1)
    assert model.n_learnt == 2
    row = second.to_row()
    assert row["task_id"] == "t2"
    assert row["ts"] == T0 + timedelta(seconds=5)
    assert (row["actual_steps"], row["actual_tokens"]) == (2, 300)
    assert row["actual_cost_usd"] == Decimal("0.005")
    assert row["predicted_cost_usd_lower"] <= row["predicted_cost_usd_upper"]
    assert isinstance(row["predicted_cost_usd"], Decimal)


def test_a_task_without_actuals_is_refused_and_learns_nothing() -> None:
    model = ShadowModel()
    record = TaskRecord(status="finished", task_id="t9", ts=T0, prompt="p", agent="c")
    task = FinishedTask("t9", T0, record, record, actuals=None, events=0)
    before = model.to_bytes()

    with pytest.raises(InvalidTask, match="t9 has no actuals"):
        learn_finished(model, task)
    assert model.to_bytes() == before


def test_a_task_with_bad_features_is_refused_and_learns_nothing() -> None:
    model = ShadowModel()
    before = model.to_bytes()
    with pytest.raises(InvalidTask, match="prompt is missing"):
        learn_finished(model, finished_task("t3", prompt=None))
    assert model.to_bytes() == before


def prediction(
    basis: Basis, cost: tuple[float, float, float], actual: str
) -> ShadowPrediction:
    triples = {"steps": (2.0, 1.0, 3.0), "tokens": (10.0, 5.0, 20.0), "cost_usd": cost}
    estimate = Estimate.of(
        triples, basis=basis, confidence_level=0.9, model_version=1, n_learnt=50
    )
    baseline = Estimate.of(
        {**triples, "cost_usd": (1.0, 0.0, 2.0)},
        basis="agent_mean",
        confidence_level=0.9,
        model_version=1,
        n_learnt=50,
    )
    actuals = TaskActuals(steps=4, tokens=10, cost_usd=Decimal(actual))
    return ShadowPrediction("t", T0, "c", estimate, baseline, actuals)


def test_the_score_keeps_error_and_coverage_of_model_estimates_only() -> None:
    score = ShadowScore(window=2)
    score.update(prediction("agent_mean", (9.0, 0.0, 99.0), "0.5"))
    score.update(prediction("model", (0.5, 0.25, 1.0), "0.5"))
    score.update(prediction("model", (0.5, 0.25, 1.0), "2.0"))

    metrics = score.as_metrics()
    assert metrics["fallbacks"] == 1
    assert metrics["mae_cost_usd"] == pytest.approx((0.0 + 1.5) / 2)
    assert metrics["baseline_mae_cost_usd"] == pytest.approx((0.5 + 1.0) / 2)
    assert metrics["coverage_cost_usd"] == pytest.approx(0.5)
    assert metrics["coverage_steps"] == 0.0
    assert metrics["coverage_tokens"] == 1.0

    for _ in range(2):
        score.update(prediction("model", (2.0, 1.0, 3.0), "2.0"))
    assert score.as_metrics()["coverage_cost_usd"] == 1.0, "the window slides"


def test_the_score_is_nan_before_the_model_estimates() -> None:
    assert math.isnan(ShadowScore().as_metrics()["mae_cost_usd"])
