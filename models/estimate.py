"""The estimate decision: allow a task, or ask for a manager's approval first.

A task needs approval when the upper end of its cost interval exceeds the
caller's per-task limit; an upper end equal to the limit is allowed. The
limit is the user's if the policy names one, else the principal's, else the
default; with none of them every task is allowed. A fallback estimate is
decided the same way; with no history at all it is zero, so it is allowed.

>>> from decimal import Decimal
>>> limits = TaskLimits(default_usd=Decimal("5"),
...     per_principal_usd={"research": Decimal("20")},
...     per_user_usd={"ana": Decimal("1")})
>>> limits.limit_for("ana", "research")
(Decimal('1.000000000'), 'user')
>>> limits.limit_for("bo", "research")
(Decimal('20.000000000'), 'principal')
>>> limits.limit_for("bo", "sales")
(Decimal('5.000000000'), 'default')
"""

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import InvalidRecord, PolicyError
from models.money import usd_text
from models.policy import Policy
from models.shadow import ShadowModel
from models.shadow_estimate import Estimate
from models.task_features import MAX_PROMPT_BYTES, parse_task_features
from models.validation import Usd, explain

Decision = Literal["allow", "needs_approval"]
Scope = Literal["user", "principal", "default"]


class TaskLimits(BaseModel):
    """Per-task cost limits from the policy: per user, per principal, a default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_usd: Usd | None = None
    per_user_usd: dict[str, Usd] = Field(default_factory=dict)
    per_principal_usd: dict[str, Usd] = Field(default_factory=dict)

    @classmethod
    def from_policy(cls, section: object) -> "TaskLimits":
        """Read the policy's task-limits section; `InvalidRecord` names a bad field."""
        try:
            return cls.model_validate(section)
        except ValidationError as exc:
            raise InvalidRecord(f"invalid task limits: {explain(exc)}") from None

    def limit_for(
        self, user: str | None, principal: str | None
    ) -> tuple[Decimal, Scope] | None:
        """The limit that applies and its scope: user, else principal, else default."""
        if user is not None and user in self.per_user_usd:
            return self.per_user_usd[user], "user"
        if principal is not None and principal in self.per_principal_usd:
            return self.per_principal_usd[principal], "principal"
        if self.default_usd is not None:
            return self.default_usd, "default"
        return None


def task_limits_of(policy: Policy) -> TaskLimits:
    """The limits in a policy's `[tasks]` section; `PolicyError` names a bad one.

    >>> from models.policy import parse_policy
    >>> limits = task_limits_of(parse_policy('[tasks]\\ndefault_usd = "2.5"', "toml"))
    >>> limits.default_usd
    Decimal('2.500000000')
    """
    try:
        return TaskLimits.from_policy(policy.tasks)
    except InvalidRecord as exc:
        msg = f"invalid policy [tasks]: {exc.reason}; fix it and load the policy again"
        raise PolicyError(msg) from None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision on one task, the limit it was held to, and why."""

    decision: Decision
    limit_usd: Decimal | None
    limit_scope: Scope | None
    message: str


def decide(
    estimate: Estimate, limits: TaskLimits, *, user: str | None, principal: str | None
) -> Verdict:
    """Allow the task, or ask for approval when its upper cost exceeds the limit."""
    found = limits.limit_for(user, principal)
    if found is None:
        return Verdict("allow", None, None, "no per-task limit applies")
    limit_usd, scope = found
    holder = {"user": f"user {user}", "principal": f"principal {principal}"}.get(
        scope, "the default"
    )
    upper_usd = estimate.cost_usd.upper
    if upper_usd <= limit_usd:
        message = f"within the ${usd_text(limit_usd)} per-task limit of {holder}"
        return Verdict("allow", limit_usd, scope, message)
    message = (
        f"the task may cost up to ${usd_text(upper_usd)} (upper end of the "
        f"{estimate.confidence_level:.0%} interval), over the ${usd_text(limit_usd)} "
        f"per-task limit of {holder}; it needs a manager's approval"
    )
    return Verdict("needs_approval", limit_usd, scope, message)


@dataclass(frozen=True, slots=True)
class EstimateAnswer:
    """The answer to `POST /v1/estimate`: the estimate, the verdict, the basis."""

    estimate: Estimate
    verdict: Verdict
    note: str = ""
    """What the estimate rests on, in words (`basis_note`)."""

    def to_json_dict(self) -> dict[str, Any]:
        """The estimate's JSON, with the decision, the limit and the message."""
        limit = self.verdict.limit_usd
        return {
            **self.estimate.to_json_dict(),
            "decision": self.verdict.decision,
            "limit_usd": None if limit is None else usd_text(limit),
            "limit_scope": self.verdict.limit_scope,
            "message": self.verdict.message,
            "note": self.note,
        }


def basis_note(estimate: Estimate, min_tasks: int) -> str:
    """Say what an estimate rests on, and while warming up, how far the model is.

    >>> from models.shadow import ShadowModel
    >>> from models.task_features import TaskFeatures
    >>> model = ShadowModel(min_tasks=30)
    >>> basis_note(model.predict_one(TaskFeatures(prompt="hi", agent="a")), 30)
    'no task has been learnt yet: the estimate is zero until tasks finish'
    """
    n = estimate.n_learnt
    warming = f"the model has learnt from {n} of the {min_tasks} tasks it needs"
    if estimate.basis == "agent_mean":
        return f"{warming}: this is the agent's running mean"
    if estimate.basis == "all_agents_mean":
        return f"{warming}: this agent has no history, this is the mean of all agents"
    if estimate.basis == "no_history":
        return "no task has been learnt yet: the estimate is zero until tasks finish"
    return f"estimated by the model, learnt from {n} tasks"


def estimate_task(
    model: ShadowModel,
    raw: object,
    limits: TaskLimits,
    *,
    known_agents: Collection[str] | None = None,
    max_prompt_bytes: int = MAX_PROMPT_BYTES,
) -> EstimateAnswer:
    """Validate a request's features, estimate the task and decide.

    Raises `InvalidTask` (answer 4xx) on bad input. `known_agents`: pass the
    configured agents together with `model.agents`; None accepts any agent.
    The caller's `user` and `principal` are read from the features; the HTTP
    layer puts the authenticated identity there.
    """
    features = parse_task_features(
        raw, known_agents=known_agents, max_prompt_bytes=max_prompt_bytes
    )
    estimate = model.predict_one(features)
    verdict = decide(estimate, limits, user=features.user, principal=features.principal)
    return EstimateAnswer(estimate, verdict, basis_note(estimate, model.min_tasks))
