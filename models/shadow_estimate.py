"""What the shadow model answers: expected steps, tokens and cost, with intervals.

Cost is a float inside River and becomes `Decimal` here, at the boundary:
`usd_of` goes through the float's shortest `repr` and rounds to 1e-9 USD. An
estimate is a forecast, not money spent, so this is the one place a binary
float touches a dollar amount; nothing estimated is ever added to a ledger.

>>> usd_of(0.1 + 0.2)
Decimal('0.300000000')
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from models.money import to_usd, usd_text
from models.shadow_baseline import Basis, Triple
from models.shadow_targets import Target

N = TypeVar("N", float, Decimal)


@dataclass(frozen=True, slots=True)
class Band(Generic[N]):
    """An expected value and the interval around it, ends included."""

    expected: N
    lower: N
    upper: N

    def covers(self, actual: N) -> bool:
        """Whether `actual` lies in the interval, ends included."""
        return self.lower <= actual <= self.upper


@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimate for one task, and what it rests on.

    `basis` is `model` once the model has learnt from `min_tasks` tasks;
    before that it is a fallback: `agent_mean`, `all_agents_mean` (an agent
    not seen yet) or `no_history` (zeros).
    """

    steps: Band[float]
    tokens: Band[float]
    cost_usd: Band[Decimal]
    basis: Basis
    confidence_level: float
    model_version: int
    n_learnt: int

    @property
    def fallback(self) -> bool:
        """True while the estimate is not the model's own."""
        return self.basis != "model"

    def band(self, target: Target) -> Band[float] | Band[Decimal]:
        """The band of one target by name."""
        if target == "cost_usd":
            return self.cost_usd
        return self.steps if target == "steps" else self.tokens

    @classmethod
    def of(
        cls,
        triples: dict[Target, Triple],
        *,
        basis: Basis,
        confidence_level: float,
        model_version: int,
        n_learnt: int,
    ) -> "Estimate":
        """Build from (expected, lower, upper) per target in natural units."""
        cost = triples["cost_usd"]
        return cls(
            steps=Band(*triples["steps"]),
            tokens=Band(*triples["tokens"]),
            cost_usd=Band(usd_of(cost[0]), usd_of(cost[1]), usd_of(cost[2])),
            basis=basis,
            confidence_level=confidence_level,
            model_version=model_version,
            n_learnt=n_learnt,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready: counts rounded to 0.1, cost as decimal strings."""
        return {
            "steps": _rounded(self.steps),
            "tokens": _rounded(self.tokens),
            "cost_usd": {
                "expected": usd_text(self.cost_usd.expected),
                "lower": usd_text(self.cost_usd.lower),
                "upper": usd_text(self.cost_usd.upper),
            },
            "basis": self.basis,
            "fallback": self.fallback,
            "confidence_level": self.confidence_level,
            "model_version": self.model_version,
            "n_learnt": self.n_learnt,
        }


def usd_of(value: float) -> Decimal:
    """A float from River as USD; see the module docstring."""
    return to_usd(repr(max(value, 0.0)))


def _rounded(band: Band[float]) -> dict[str, float]:
    return {
        "expected": round(band.expected, 1),
        "lower": round(band.lower, 1),
        "upper": round(band.upper, 1),
    }
