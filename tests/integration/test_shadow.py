"""The shadow cost model on real workers, a real broker and the real engine."""

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from models.shadow import ShadowModel
from models.task_features import TaskFeatures
from streams.latest import read_latest
from tests.integration.harness import WorkerProcess, consume, produce_keyed
from tests.integration.shadow_client import (
    estimate,
    learnt,
    mae_usd,
    post,
    prediction_rows,
    send_history,
    shadow,
    wait_learnt,
)
from tests.unit.task_history import generate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

StartWorker = Callable[..., WorkerProcess]

CHEAP = {"prompt": "term1 term2 term3", "agent": "summariser", "model": "small"}
COSTLY = {
    "prompt": " ".join(f"term{n % 200}" for n in range(400)),
    "agent": "coder",
    "model": "large",
}
POLICY = """
[tasks]
default_usd = "1.00"
[tasks.per_user_usd]
"ana@research" = "0.05"
"""
QUICK = {
    "SPENDSTREAM_SHADOW_MIN_TASKS": "30",
    "SPENDSTREAM_SHADOW_PUBLISH_INTERVAL_S": "1",
}


def test_the_online_model_beats_the_agent_mean_and_its_interval_holds(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    history = generate(1200, seed=7)
    worker = start_worker(**QUICK)
    send_history(kafka, prefix, history)
    wait_learnt(worker, len(history))
    mae = {
        e: worker.metric("spendstream_shadow_mae", target="cost_usd", estimator=e)
        for e in ("model", "agent_mean")
    }
    assert worker.stop() == 0

    rows = prediction_rows(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert len(rows) == len({r["task_id"] for r in rows}) == 1200
    # Every task's actuals came from its cost events, exactly.
    assert sum(r["actual_cost_usd"] for r in rows) == sum(
        a.cost_usd for _, a in history
    )
    assert sum(r["actual_steps"] for r in rows) == sum(a.steps for _, a in history)

    after_warm_up = rows[400:]
    assert {r["basis"] for r in after_warm_up} == {"model"}
    model_mae = mae_usd(after_warm_up, "predicted_cost_usd")
    assert model_mae <= Decimal("0.7") * mae_usd(after_warm_up, "baseline_cost_usd")
    assert mae["model"] < 0.8 * mae["agent_mean"]

    last = rows[-600:]
    covered = sum(
        r["predicted_cost_usd_lower"]
        <= r["actual_cost_usd"]
        <= r["predicted_cost_usd_upper"]
        for r in last
    )
    assert 0.80 <= covered / len(last) <= 1.0


def test_one_learner_publishes_and_every_worker_estimates_with_its_snapshot(
    kafka: str,
    prefix: str,
    worker_env: dict[str, str],
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    env = {**QUICK, "SPENDSTREAM_SHADOW_PUBLISH_TASKS": "50"}
    first = start_worker(**env)
    send_history(kafka, prefix, generate(300, seed=11))
    second = start_worker(
        **env,
        SPENDSTREAM_CLICKHOUSE=f"chdb://{tmp_path / 'second-store'}",
        SPENDSTREAM_DATA_DIR=str(tmp_path / "second-worker"),
    )
    workers = (first, second)
    learner = _the_one_learner(workers, n=300)
    version = shadow(learner)["learner"]["model_version"]
    for worker in workers:
        worker.wait_until(
            lambda _, w=worker: shadow(w)["estimator"]["model_version"] == version,
            f"model version {version} loaded",
        )

    found = asyncio.run(read_latest(kafka, f"{prefix}shadow-model", 4 * 1024 * 1024))
    assert found is not None and found.value is not None
    snapshot = ShadowModel.from_bytes(found.value)
    assert (snapshot.model_version, snapshot.n_learnt) == (version, 300)
    task = {**COSTLY, "user": "bo@eng"}
    expected = snapshot.predict_one(TaskFeatures(**task)).cost_usd.expected
    for worker in workers:
        status, answer = estimate(worker, **task)
        assert (status, answer["model_version"], answer["basis"]) == (
            200,
            version,
            "model",
        )
        assert Decimal(answer["cost_usd"]["expected"]) == expected


def test_the_decision_allows_a_cheap_task_and_refuses_an_over_limit_one(
    kafka: str, prefix: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    worker = start_worker(**QUICK, SPENDSTREAM_POLICY=str(policy))
    status, young = estimate(worker, **COSTLY, user="ana@research")
    assert (status, young["basis"], young["decision"]) == (200, "no_history", "allow")

    send_history(kafka, prefix, generate(200, seed=5))
    wait_learnt(worker, 200)

    status, cheap = estimate(worker, **CHEAP, user="bo@eng", principal="eng")
    assert (status, cheap["decision"], cheap["limit_scope"]) == (
        200,
        "allow",
        "default",
    )
    status, costly = estimate(worker, **COSTLY, user="ana@research")
    assert (status, costly["decision"]) == (200, "needs_approval")
    assert Decimal(costly["limit_usd"]) == Decimal("0.05")
    assert Decimal(costly["cost_usd"]["upper"]) > Decimal("0.05")
    assert "needs a manager's approval" in costly["message"]
    assert "user ana@research" in costly["message"]


BAD_ESTIMATES = {
    "no prompt": (json.dumps({"agent": "coder"}).encode(), 422, "prompt is missing"),
    "unknown agent": (json.dumps({**CHEAP, "agent": "ghost"}).encode(), 422, "ghost"),
    "wrong type": (json.dumps({**CHEAP, "prompt": 42}).encode(), 422, "got int"),
    "not json": (b'{"prompt": "x", ', 400, "malformed JSON"),
    "not an object": (b"[1, 2]", 400, "JSON object"),
    "a 10 MB prompt": (
        json.dumps({**CHEAP, "prompt": "word " * 2_000_000}).encode(),
        413,
        "byte limit",
    ),
    "a 120 kB prompt": (
        json.dumps({**CHEAP, "prompt": "é" * 60_000}, ensure_ascii=False).encode(),
        413,
        "100000-byte limit",
    ),
}


def test_bad_input_gets_a_clear_4xx_and_bad_task_records_go_to_the_dlq(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = start_worker(**QUICK)
    send_history(kafka, prefix, generate(20, seed=3))
    wait_learnt(worker, 20)
    before = shadow(worker)["estimator"]

    for name, (body, status, reason) in BAD_ESTIMATES.items():
        got, answer = post(worker, "/v1/estimate", body)
        assert (got, reason in answer["error"]) == (status, True), (name, answer)
    assert worker.metric("spendstream_estimates_total", outcome="rejected") == 7
    assert shadow(worker)["estimator"] == before
    assert estimate(worker, **CHEAP)[0] == 200

    started = {"status": "started", "task_id": "t-bad", "ts": "2026-11-30T09:00:00Z"}
    produce_keyed(
        kafka,
        f"{prefix}tasks",
        [("t-bad", {**started, "agent": "coder"}), ("t-bad", {**started, "prompt": 1})],
    )
    letters = consume(kafka, f"{prefix}dlq", 2)
    assert sorted(x["reason"] for x in letters) == [
        "invalid TaskRecord: prompt: input should be a valid string",
        "prompt is missing; send the task's prompt",
    ]
    assert {x["source_topic"] for x in letters} == {f"{prefix}tasks"}


def test_a_restarted_learner_resumes_from_its_latest_checkpoint(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    history = generate(300, seed=13)
    env = {**QUICK, "SPENDSTREAM_SHADOW_PUBLISH_TASKS": "40"}
    first = start_worker(**env)
    send_history(kafka, prefix, history[:150])
    wait_learnt(first, 150)
    version_before = shadow(first)["learner"]["model_version"]
    first.kill()

    send_history(kafka, prefix, history[150:], first=150)
    second = start_worker(**env)
    wait_learnt(second, 300)
    learner = shadow(second)["learner"]
    assert learner["resumed_from"]["n_learnt"] == 150
    assert learner["resumed_from"]["model_version"] == version_before
    assert learner["learnt_here"] == 150
    assert learner["model_version"] > version_before
    assert second.stop() == 0

    # Each task learnt exactly once: none lost, none learnt twice.
    rows = prediction_rows(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert sorted(r["task_id"] for r in rows) == [f"task-{n:05d}" for n in range(300)]
    assert [r["n_learnt"] for r in rows] == list(range(300))


def _the_one_learner(workers: tuple[WorkerProcess, ...], n: int) -> WorkerProcess:
    """The worker whose learner owns the task log once it has learnt `n` tasks;
    the other worker's learner stands by."""

    def settled(_: object) -> bool:
        active = [w for w in workers if shadow(w)["learner"]["active"]]
        return len(active) == 1 and learnt(active[0], n)

    workers[0].wait_until(settled, f"one learner with {n} tasks", timeout_s=240)
    return next(w for w in workers if shadow(w)["learner"]["active"])
