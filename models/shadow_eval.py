"""Progressive validation: each finished task is estimated, then learnt.

`learn_finished` is what the learner runs per finished task. It returns the
estimate made before learning next to the actuals, the row ClickHouse
`shadow_predictions` keeps; `ShadowScore` turns those rows into the error and
interval coverage the worker exports as metrics.
"""

import math
import statistics
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from models.errors import InvalidTask
from models.shadow import ShadowModel
from models.shadow_estimate import Band, Estimate
from models.shadow_targets import TARGETS, Target, values_of
from models.task_features import features_of
from models.task_tally import TaskActuals
from models.tasks import FinishedTask


@dataclass(frozen=True, slots=True)
class ShadowPrediction:
    """A task's estimate made before learning it, the agent mean's, its actuals."""

    task_id: str
    ts: datetime
    agent: str
    estimate: Estimate
    baseline: Estimate
    actuals: TaskActuals

    def to_row(self) -> dict[str, Any]:
        """A `shadow_predictions` row: predicted, actual and agent-mean values."""
        est, act = self.estimate, self.actuals
        return {
            "task_id": self.task_id,
            "ts": self.ts,
            "agent": self.agent,
            "model_version": est.model_version,
            "n_learnt": est.n_learnt,
            "basis": est.basis,
            **_predicted("steps", est.steps),
            **_predicted("tokens", est.tokens),
            **_predicted("cost_usd", est.cost_usd),
            "actual_steps": act.steps,
            "actual_tokens": act.tokens,
            "actual_cost_usd": act.cost_usd,
            "baseline_steps": self.baseline.steps.expected,
            "baseline_tokens": self.baseline.tokens.expected,
            "baseline_cost_usd": self.baseline.cost_usd.expected,
        }


def learn_finished(model: ShadowModel, task: FinishedTask) -> ShadowPrediction:
    """Estimate a finished task, then learn it; `InvalidTask` if it cannot be learnt.

    A task without actuals or with invalid features is refused before the
    model is touched: the learner logs it and goes on.
    """
    if task.actuals is None:
        msg = (
            f"task {task.task_id} has no actuals: no cost event carried its task_id "
            f"and its finished record has no steps, tokens and cost_usd"
        )
        raise InvalidTask(msg)
    features = features_of(task.features)
    baseline = model.predict_baseline(features)
    estimate = model.predict_then_learn(features, task.actuals)
    return ShadowPrediction(
        task.task_id, task.ts, features.agent, estimate, baseline, task.actuals
    )


class ShadowScore:
    """Mean absolute error and interval coverage over the last `window` tasks.

    Only estimates from the model count (not the warm-up's fallbacks); the
    agent mean's error on the same tasks is kept alongside for comparison.
    """

    def __init__(self, window: int = 1000) -> None:
        self.abs_error = {t: deque[float](maxlen=window) for t in TARGETS}
        self.baseline_abs_error = {t: deque[float](maxlen=window) for t in TARGETS}
        self.covered = {t: deque[float](maxlen=window) for t in TARGETS}
        self.fallbacks = 0

    def update(self, prediction: ShadowPrediction) -> None:
        """Score one prediction; a fallback is only counted."""
        if prediction.estimate.fallback:
            self.fallbacks += 1
            return
        actual = values_of(prediction.actuals)
        for target in TARGETS:
            band = _floats(prediction.estimate, target)
            baseline = _floats(prediction.baseline, target)
            self.abs_error[target].append(abs(band[0] - actual[target]))
            self.baseline_abs_error[target].append(abs(baseline[0] - actual[target]))
            self.covered[target].append(float(band[1] <= actual[target] <= band[2]))

    def as_metrics(self) -> dict[str, float]:
        """Gauges by name: `mae_cost_usd`, `baseline_mae_steps`, `coverage_tokens`...

        NaN until the model has made an estimate.
        """
        metrics = {"fallbacks": float(self.fallbacks)}
        for target in TARGETS:
            metrics[f"mae_{target}"] = _mean(self.abs_error[target])
            metrics[f"baseline_mae_{target}"] = _mean(self.baseline_abs_error[target])
            metrics[f"coverage_{target}"] = _mean(self.covered[target])
        return metrics


def _mean(values: deque[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _predicted(target: str, band: Band[float] | Band[Decimal]) -> dict[str, Any]:
    return {
        f"predicted_{target}": band.expected,
        f"predicted_{target}_lower": band.lower,
        f"predicted_{target}_upper": band.upper,
    }


def _floats(estimate: Estimate, target: Target) -> tuple[float, float, float]:
    band = estimate.band(target)
    return float(band.expected), float(band.lower), float(band.upper)
