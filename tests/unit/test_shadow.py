"""The shadow model: it beats the agent mean, its intervals hold, it snapshots."""

from collections import defaultdict
from decimal import Decimal

import pytest

from models.errors import InvalidTask, SnapshotError
from models.shadow import ShadowModel, snapshot_header
from models.shadow_estimate import Estimate
from models.task_features import TaskFeatures
from models.task_tally import TaskActuals
from tests.unit.task_history import generate

HISTORY = generate(1200, seed=7)
WARM_UP = 400
LAST_N = 600


@pytest.fixture(scope="module")
def progressive() -> list[tuple[Estimate, Decimal, TaskActuals]]:
    """Each task: the model's estimate before learning it, the agent's running
    mean cost computed here by hand, and what the task took."""
    model = ShadowModel(confidence_level=0.9, min_tasks=30)
    spent: dict[str, list[Decimal]] = defaultdict(list)
    rows = []
    for features, actuals in HISTORY:
        costs = spent[features.agent]
        agent_mean = sum(costs, Decimal(0)) / len(costs) if costs else Decimal(0)
        rows.append((model.predict_then_learn(features, actuals), agent_mean, actuals))
        costs.append(actuals.cost_usd)
    return rows


def test_after_warm_up_the_model_beats_the_agent_mean_on_cost(
    progressive: list[tuple[Estimate, Decimal, TaskActuals]],
) -> None:
    after = progressive[WARM_UP:]
    model_mae = sum(abs(e.cost_usd.expected - a.cost_usd) for e, _, a in after)
    mean_mae = sum(abs(m - a.cost_usd) for _, m, a in after)
    assert all(e.basis == "model" for e, _, _ in after)
    assert model_mae <= Decimal("0.7") * mean_mae


def test_the_90_percent_interval_covers_about_90_percent(
    progressive: list[tuple[Estimate, Decimal, TaskActuals]],
) -> None:
    last = progressive[-LAST_N:]
    for target in ("steps", "tokens", "cost_usd"):
        covered = sum(e.band(target).covers(getattr(a, target)) for e, _, a in last)
        assert 0.80 <= covered / LAST_N <= 1.00, target


def test_estimates_grow_with_the_prompt_and_follow_the_model_price() -> None:
    model = ShadowModel()
    for features, actuals in HISTORY[:600]:
        model.learn_one(features, actuals)

    def cost(words: int, llm: str) -> Decimal:
        prompt = " ".join(f"term{n % 200}" for n in range(words))
        task = TaskFeatures(prompt=prompt, agent="researcher", model=llm)
        return model.predict_one(task).cost_usd.expected

    assert cost(300, "medium") > 4 * cost(10, "medium")
    assert cost(100, "large") > 4 * cost(100, "small")


def test_estimates_are_ordered_and_never_negative(
    progressive: list[tuple[Estimate, Decimal, TaskActuals]],
) -> None:
    for estimate, _, _ in progressive:
        for target in ("steps", "tokens", "cost_usd"):
            band = estimate.band(target)
            assert 0 <= band.lower <= band.expected <= band.upper, (target, band)


def test_an_early_interval_still_holds_its_own_estimate() -> None:
    model = ShadowModel(min_tasks=0)
    task = TaskFeatures(prompt="!!!", agent="coder")
    model.learn_one(task, TaskActuals(1, 10, Decimal("0.01")))

    band = model.predict_one(task).cost_usd
    assert band.lower <= band.expected <= band.upper


def test_before_min_tasks_it_falls_back_to_the_agent_running_mean() -> None:
    model = ShadowModel(min_tasks=5)
    coder = TaskFeatures(prompt="fix it", agent="coder")
    assert model.predict_one(coder).basis == "no_history"
    assert model.predict_one(coder).cost_usd.upper == 0

    for steps, cost in [(2, "1"), (4, "2"), (6, "6")]:
        model.learn_one(coder, TaskActuals(steps, steps * 100, Decimal(cost)))
    model.learn_one(
        TaskFeatures(prompt="sum up", agent="writer"),
        TaskActuals(1, 10, Decimal("0.5")),
    )

    estimate = model.predict_one(coder)
    assert (estimate.basis, estimate.fallback, estimate.n_learnt) == (
        "agent_mean",
        True,
        4,
    )
    assert estimate.cost_usd.expected == Decimal("3")
    assert estimate.steps.expected == pytest.approx(4.0)
    assert estimate.cost_usd.lower < 3 < estimate.cost_usd.upper
    stranger = model.predict_one(TaskFeatures(prompt="x", agent="new"))
    assert stranger.basis == "all_agents_mean"
    assert stranger.cost_usd.expected == Decimal("2.375")

    model.learn_one(coder, TaskActuals(3, 300, Decimal("1")))
    assert model.predict_one(coder).basis == "model"
    assert not model.predict_one(coder).fallback


def assert_same(restored: Estimate, original: Estimate) -> None:
    """Equal but for float rounding: River's weight maps may sum in another order."""
    for target in ("steps", "tokens"):
        mine, theirs = restored.band(target), original.band(target)
        assert (mine.expected, mine.lower, mine.upper) == pytest.approx(
            (theirs.expected, theirs.lower, theirs.upper), rel=1e-12
        )
    for end in ("expected", "lower", "upper"):
        cost_gap = getattr(restored.cost_usd, end) - getattr(original.cost_usd, end)
        assert abs(cost_gap) <= Decimal("1e-9")
    assert (restored.basis, restored.model_version, restored.n_learnt) == (
        original.basis,
        original.model_version,
        original.n_learnt,
    )


def test_a_snapshot_round_trips_to_the_same_predictions() -> None:
    model = ShadowModel()
    for features, actuals in HISTORY[:300]:
        model.learn_one(features, actuals)

    data = model.publish()
    restored = ShadowModel.from_bytes(data)

    assert restored.model_version == model.model_version == 1
    assert restored.n_learnt == 300
    for features, actuals in HISTORY[300:320]:
        assert_same(restored.predict_one(features), model.predict_one(features))
        restored.learn_one(features, actuals)
        model.learn_one(features, actuals)
    assert_same(restored.predict_one(HISTORY[0][0]), model.predict_one(HISTORY[0][0]))
    assert snapshot_header(data) == {
        "format": 1,
        "river": snapshot_header(data)["river"],
        "model_version": 1,
        "n_learnt": 300,
    }


def test_publishing_takes_a_new_version_that_estimates_carry() -> None:
    model = ShadowModel(min_tasks=0)
    task = TaskFeatures(prompt="p", agent="a")
    assert model.predict_one(task).model_version == 0
    model.publish()
    model.publish()
    assert model.predict_one(task).model_version == 2
    assert ShadowModel.from_bytes(model.to_bytes()).model_version == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x04garbage", "not a shadow model snapshot"),
        (b"spendstream-shadow {oops}\n", "header is not JSON"),
        (b'spendstream-shadow {"format": 0}\n', "format 0 is not 1"),
        (b'spendstream-shadow {"format": 1}\n\x80\x04trunc', "cannot be loaded"),
    ],
)
def test_a_bad_snapshot_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SnapshotError, match=reason):
        ShadowModel.from_bytes(data)


def test_actuals_too_large_for_a_float_are_refused_and_learn_nothing() -> None:
    model = ShadowModel(min_tasks=0)
    task = TaskFeatures(prompt="p", agent="a")
    model.learn_one(task, TaskActuals(1, 10, Decimal("0.01")))
    before = model.predict_one(task)

    with pytest.raises(InvalidTask, match="too large"):
        model.learn_one(task, TaskActuals(1, 10, Decimal("1e400")))
    with pytest.raises(InvalidTask, match="too large"):
        model.learn_one(task, TaskActuals(10**400, 10, Decimal(1)))

    assert model.predict_one(task) == before
