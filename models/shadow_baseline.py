"""The fallback estimate: each agent's running mean, while the model warms up.

The expected value is the agent's running mean (River `stats.Mean`) in the
natural unit, the baseline the model must beat. The interval assumes the
agent's values are log-normal: the mean of their logs plus and minus z
standard deviations (River `stats.Var`). With one task behind an agent the
interval is that one value. An agent never seen falls back to all agents;
with no history at all the estimate is zero, said so by its basis.
"""

import math
from dataclasses import dataclass, field
from typing import Literal

from river import stats

from models.shadow_targets import TARGETS, Target, from_log, to_log

Basis = Literal["model", "agent_mean", "all_agents_mean", "no_history"]
Triple = tuple[float, float, float]
"""(expected, lower, upper) in a target's natural unit."""


@dataclass(slots=True)
class _Spread:
    mean: stats.Mean = field(default_factory=stats.Mean)
    log_var: stats.Var = field(default_factory=stats.Var)

    def update(self, target: Target, value: float) -> None:
        self.mean.update(value)
        self.log_var.update(to_log(target, value))

    def triple(self, target: Target, z: float) -> Triple:
        expected = float(self.mean.get())
        centre = float(self.log_var.mean.get())
        half = z * math.sqrt(max(float(self.log_var.get()), 0.0))
        lower = min(from_log(target, centre - half), expected)
        upper = max(from_log(target, centre + half), expected)
        return expected, lower, upper


class AgentBaseline:
    """Running mean and log spread of each target, per agent and over all.

    Memory grows with the number of agents, a bounded set of services (the
    estimate API accepts only known agents).
    """

    def __init__(self, z: float) -> None:
        self.z = z
        self.per_agent: dict[str, dict[Target, _Spread]] = {}
        self.overall: dict[Target, _Spread] = _spreads()

    def learn_one(self, agent: str, values: dict[Target, float]) -> None:
        """Add one task's values to its agent's and to all agents' stats."""
        agent_spreads = self.per_agent.setdefault(agent, _spreads())
        for target in TARGETS:
            agent_spreads[target].update(target, values[target])
            self.overall[target].update(target, values[target])

    def predict_one(self, agent: str) -> tuple[Basis, dict[Target, Triple]]:
        """The agent's estimate, else all agents', else zeros; with its basis."""
        spreads = self.per_agent.get(agent)
        if spreads is not None:
            return "agent_mean", self._triples(spreads)
        if self.overall["cost_usd"].mean.n > 0:
            return "all_agents_mean", self._triples(self.overall)
        return "no_history", dict.fromkeys(TARGETS, (0.0, 0.0, 0.0))

    def _triples(self, spreads: dict[Target, _Spread]) -> dict[Target, Triple]:
        return {target: spreads[target].triple(target, self.z) for target in TARGETS}


def _spreads() -> dict[Target, _Spread]:
    return {target: _Spread() for target in TARGETS}
