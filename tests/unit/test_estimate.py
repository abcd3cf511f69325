"""The decision: allow a task, or ask a manager first, by the caller's limit."""

import json
from decimal import Decimal

import pytest

from models.codec import dumps
from models.errors import InvalidRecord, InvalidTask, PolicyError
from models.estimate import TaskLimits, decide, estimate_task, task_limits_of
from models.policy import parse_policy
from models.shadow import ShadowModel
from models.shadow_estimate import Estimate
from models.task_features import parse_task_features
from models.task_tally import TaskActuals
from tests.unit.task_history import generate

CHEAP = {"prompt": "term1 term2 term3", "agent": "summariser", "model": "small"}
COSTLY = {
    "prompt": " ".join(f"term{n % 200}" for n in range(400)),
    "agent": "coder",
    "model": "large",
}


@pytest.fixture(scope="module")
def model() -> ShadowModel:
    model = ShadowModel(min_tasks=30)
    for features, actuals in generate(400, seed=11):
        model.learn_one(features, actuals)
    return model


def test_an_over_limit_task_needs_approval_and_a_cheap_one_is_allowed(
    model: ShadowModel,
) -> None:
    limits = TaskLimits(default_usd=Decimal("0.10"))

    cheap = estimate_task(model, CHEAP, limits)
    costly = estimate_task(model, COSTLY, limits)

    assert cheap.verdict.decision == "allow"
    assert cheap.estimate.cost_usd.upper < Decimal("0.01")
    assert costly.verdict.decision == "needs_approval"
    assert costly.estimate.cost_usd.upper > Decimal("0.10")
    assert "needs a manager's approval" in costly.verdict.message
    assert "$0.100000000 per-task limit of the default" in costly.verdict.message
    assert not costly.estimate.fallback


def test_the_user_limit_comes_before_the_principal_and_the_default(
    model: ShadowModel,
) -> None:
    limits = TaskLimits(
        default_usd=Decimal("0.10"),
        per_user_usd={"ana": Decimal("50")},
        per_principal_usd={"research": Decimal("0.001"), "ops": Decimal("50")},
    )

    def decided(**who: str) -> tuple[str, str | None]:
        verdict = estimate_task(model, {**COSTLY, **who}, limits).verdict
        return verdict.decision, verdict.limit_scope

    assert decided(user="ana", principal="research") == ("allow", "user")
    assert decided(user="bo", principal="research") == ("needs_approval", "principal")
    assert decided(user="bo", principal="ops") == ("allow", "principal")
    assert decided(user="bo") == ("needs_approval", "default")


def test_without_any_limit_every_task_is_allowed(model: ShadowModel) -> None:
    verdict = estimate_task(model, COSTLY, TaskLimits()).verdict
    assert (verdict.decision, verdict.message) == ("allow", "no per-task limit applies")


def estimate_with_upper(upper: str) -> Estimate:
    triples = {"steps": (1.0, 1.0, 1.0), "tokens": (1.0, 1.0, 1.0)}
    return Estimate.of(
        {**triples, "cost_usd": (0.1, 0.01, float(upper))},
        basis="model",
        confidence_level=0.9,
        model_version=3,
        n_learnt=100,
    )


def test_an_upper_estimate_equal_to_the_limit_is_allowed() -> None:
    limits = TaskLimits(per_principal_usd={"eng": Decimal("1")})
    at_limit = decide(estimate_with_upper("1.0"), limits, user=None, principal="eng")
    over = decide(
        estimate_with_upper("1.000000001"), limits, user=None, principal="eng"
    )
    assert at_limit.decision == "allow"
    assert over.decision == "needs_approval"
    assert "over the $1.000000000 per-task limit of principal eng" in over.message


def test_bad_input_is_a_domain_error_and_an_unknown_agent_too(
    model: ShadowModel,
) -> None:
    limits = TaskLimits()
    with pytest.raises(InvalidTask, match="prompt is missing"):
        estimate_task(model, {"agent": "coder"}, limits)
    with pytest.raises(InvalidTask, match="agent 'intruder' is unknown"):
        estimate_task(
            model, {**CHEAP, "agent": "intruder"}, limits, known_agents=model.agents
        )
    assert model.agents == {"coder", "researcher", "summariser"}


def test_the_answer_is_json_with_exact_cost_strings(model: ShadowModel) -> None:
    limits = TaskLimits(default_usd=Decimal("0.10"))
    body = json.loads(dumps(estimate_task(model, COSTLY, limits).to_json_dict()))

    assert body["decision"] == "needs_approval"
    assert body["limit_usd"] == "0.100000000"
    assert Decimal(body["cost_usd"]["upper"]) > Decimal(body["cost_usd"]["expected"])
    assert body["model_version"] == 0 and body["n_learnt"] == 400
    assert body["basis"] == "model" and body["fallback"] is False
    assert set(body["steps"]) == {"expected", "lower", "upper"}


def test_limits_are_read_from_the_policy_and_bad_ones_are_named() -> None:
    limits = TaskLimits.from_policy({"default_usd": "2.5", "per_user_usd": {"ana": 10}})
    assert limits.limit_for("ana", None) == (Decimal("10"), "user")
    assert limits.limit_for(None, None) == (Decimal("2.5"), "default")

    with pytest.raises(InvalidRecord, match="default_usd: input should be greater"):
        TaskLimits.from_policy({"default_usd": "-1"})
    with pytest.raises(InvalidRecord, match="per_users_usd: extra inputs"):
        TaskLimits.from_policy({"per_users_usd": {"ana": 1}})
    with pytest.raises(InvalidRecord, match="invalid task limits"):
        TaskLimits.from_policy(["not", "a", "section"])


def test_the_policy_file_carries_task_limits_beside_the_breaker_rules() -> None:
    text = """
    [rules.absolute_usd]
    10 = "2.00"
    [tasks]
    default_usd = "5"
    [tasks.per_user_usd]
    "ana@research" = "0.50"
    """
    limits = task_limits_of(parse_policy(text, "toml"))
    assert limits.limit_for("ana@research", "research") == (Decimal("0.5"), "user")
    assert limits.limit_for("bo", None) == (Decimal("5"), "default")
    assert task_limits_of(parse_policy("", "toml")) == TaskLimits()

    with pytest.raises(PolicyError, match=r"\[tasks\]: .*per_users_usd: extra inputs"):
        task_limits_of(parse_policy('[tasks.per_users_usd]\nana = "1"', "toml"))
    with pytest.raises(PolicyError, match=r"\[tasks\]: .*default_usd: input should"):
        task_limits_of(parse_policy("tasks:\n  default_usd: -1.5\n", "yaml"))


def test_a_fallback_answer_says_how_far_the_model_is(model: ShadowModel) -> None:
    young = ShadowModel(min_tasks=30)
    assert "zero until tasks finish" in estimate_task(young, CHEAP, TaskLimits()).note
    young.learn_one(parse_task_features(CHEAP), TaskActuals(2, 100, Decimal("0.01")))
    note = estimate_task(young, CHEAP, TaskLimits()).to_json_dict()["note"]
    assert note == (
        "the model has learnt from 1 of the 30 tasks it needs: "
        "this is the agent's running mean"
    )
    assert "learnt from 400 tasks" in estimate_task(model, CHEAP, TaskLimits()).note
