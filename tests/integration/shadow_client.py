"""Driving the shadow model of real workers: a task history in, estimates out."""

import http.client
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from models.events import CostEvent
from models.task_features import TaskFeatures
from models.task_tally import TaskActuals
from streams.store import Store
from tests.integration.harness import WorkerProcess, produce_keyed
from tests.unit.task_stream import task_stream

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
History = list[tuple[TaskFeatures, TaskActuals]]


def send_history(kafka: str, prefix: str, history: History, first: int = 0) -> None:
    """Every task's cost events, then the task records, as gateways would send
    them: a task's events before its `finished` record."""
    items = list(task_stream(history, T0, first=first))
    events = [i for i in items if isinstance(i, CostEvent)]
    records = [i for i in items if not isinstance(i, CostEvent)]
    produce_keyed(kafka, f"{prefix}events", [(e.session_id, _json(e)) for e in events])
    produce_keyed(kafka, f"{prefix}tasks", [(r.task_id, _json(r)) for r in records])


def _json(record: Any) -> dict[str, Any]:
    value: dict[str, Any] = record.to_json_dict()
    return value


def shadow(worker: WorkerProcess) -> dict[str, Any]:
    """`GET /v1/shadow`: what the worker estimates with, and its learner."""
    return dict(json.loads(worker.get("/v1/shadow")))


def learnt(worker: WorkerProcess, n: int) -> bool:
    """Whether the worker's learner has learnt `n` tasks and checkpointed them."""
    learner = shadow(worker)["learner"]
    return bool(learner["active"] and learner["checkpoint"]["n_learnt"] >= n)


def wait_learnt(worker: WorkerProcess, n: int, timeout_s: float = 240) -> None:
    """Wait until the worker has learnt `n` tasks and its snapshot is loaded."""
    worker.wait_until(lambda _: learnt(worker, n), f"{n} tasks learnt", timeout_s)
    worker.wait_until(
        lambda _: shadow(worker)["estimator"]["n_learnt"] >= n, "the snapshot loaded"
    )


def post(worker: WorkerProcess, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST `body`; the status and JSON answer, even when the server answers
    before it has read the whole body (a 413)."""
    connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        try:
            for first in range(0, len(body), 65_536):
                connection.send(body[first : first + 65_536])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused the rest; its answer is waiting
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def estimate(worker: WorkerProcess, **features: Any) -> tuple[int, dict[str, Any]]:
    return post(worker, "/v1/estimate", json.dumps(features).encode())


def prediction_rows(store_url: str) -> list[dict[str, Any]]:
    """Every `shadow_predictions` row, one per task, in learning order."""
    store = Store.open(store_url)
    try:
        names = [
            "task_id",
            "n_learnt",
            "model_version",
            "basis",
            "predicted_cost_usd",
            "predicted_cost_usd_lower",
            "predicted_cost_usd_upper",
            "baseline_cost_usd",
            "actual_steps",
            "actual_tokens",
            "actual_cost_usd",
        ]
        rows = store.query(
            f"SELECT {', '.join(names)} FROM {{db}}.shadow_predictions FINAL"
            " ORDER BY n_learnt"
        )
        return [dict(zip(names, row, strict=True)) for row in rows]
    finally:
        store.close()


def mae_usd(rows: list[dict[str, Any]], column: str) -> Decimal:
    return sum((abs(r[column] - r["actual_cost_usd"]) for r in rows), Decimal(0)) / len(
        rows
    )
