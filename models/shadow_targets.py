"""What the shadow model predicts, and the log scale it learns them on.

Steps, tokens and cost are skewed: a few tasks cost a hundred times the
median. They are learnt as `log1p(value / unit)`, so errors are relative and
intervals multiplicative. Cost is learnt in micro-USD, where `log1p` is close
to a log over the usual range of a task (a cent is 10,000 micro-USD).

>>> round(from_log("cost_usd", to_log("cost_usd", 0.25)), 9)
0.25
"""

import math
from typing import Literal

from models.errors import InvalidTask
from models.task_tally import TaskActuals

Target = Literal["steps", "tokens", "cost_usd"]
TARGETS: tuple[Target, ...] = ("steps", "tokens", "cost_usd")

_UNITS: dict[Target, float] = {"steps": 1.0, "tokens": 1.0, "cost_usd": 1e-6}
_MAX_LOG = 60.0
"""Predictions are capped at e**60 units, far above any real task, so a wild
early estimate cannot overflow a float."""


def values_of(actuals: TaskActuals) -> dict[Target, float]:
    """The actuals as floats for River: cost leaves `Decimal` here, to learn only.

    Raises `InvalidTask` for a value no float holds (above about 1e308).
    """
    too_large = InvalidTask(f"task actuals are too large to learn from: {actuals}")
    try:
        values: dict[Target, float] = {
            "steps": float(actuals.steps),
            "tokens": float(actuals.tokens),
            "cost_usd": float(actuals.cost_usd),
        }
    except OverflowError:
        raise too_large from None
    if not all(math.isfinite(v) for v in values.values()):
        raise too_large
    return values


def to_log(target: Target, value: float) -> float:
    """A value in its natural unit to the log scale the model learns on."""
    return math.log1p(max(value, 0.0) / _UNITS[target])


def from_log(target: Target, y: float) -> float:
    """Back from the log scale to the natural unit, never below zero."""
    return max(math.expm1(min(y, _MAX_LOG)), 0.0) * _UNITS[target]
