"""The demo's shadow model part: wait for the learner, one live estimate, a summary.

The fleet's tasks (`models.fleet.fleet_tasks`) reach the learner after their
events; the demo waits until it has learnt them, asks the worker for one
estimate over HTTP, and, once the worker has stopped, summarises
`shadow_predictions`: each task's estimate made before it was learnt.
"""

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table

from streams.store import Store

LEARN_TIMEOUT_S = 60.0
POLL_S = 0.25
SAMPLE_TASK = {
    "prompt": "review the change " * 60,
    "agent": "code-reviewer",
    "model": "claude-sonnet-4-5",
    "user": "user01@engineering",
    "principal": "engineering",
}
"""A task of 180 words for one of the fleet's agents."""


def _call(url: str, body: bytes | None = None) -> dict[str, Any] | None:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            found: dict[str, Any] = json.loads(answer.read())
            return found
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_learnt(base_url: str, tasks: int, console: Console) -> None:
    """Wait until the worker's snapshot holds `tasks` tasks; say so either way."""
    deadline_s = time.monotonic() + LEARN_TIMEOUT_S
    loaded = 0
    while time.monotonic() < deadline_s:
        found = _call(f"{base_url}/v1/shadow")
        loaded = found["estimator"]["n_learnt"] if found else loaded
        if loaded >= tasks:
            console.print(f"shadow model: learnt {loaded} of the fleet's {tasks} tasks")
            return
        time.sleep(POLL_S)
    console.print(
        f"[yellow]shadow model: {loaded} of {tasks} tasks learnt within "
        f"{LEARN_TIMEOUT_S:.0f}s[/]; the summary shows what was"
    )


def show_estimate(base_url: str, console: Console) -> None:
    """Ask the worker for one estimate and print it with its decision."""
    body = json.dumps(SAMPLE_TASK).encode()
    answer = _call(f"{base_url}/v1/estimate", body)
    if answer is None:
        console.print("[yellow]estimate: the worker did not answer[/]")
        return
    cost = answer["cost_usd"]
    console.print(
        f"estimate for a {len(SAMPLE_TASK['prompt'].split())}-word "
        f"{SAMPLE_TASK['agent']} task: ${cost['expected']} "
        f"(90% up to ${cost['upper']}), {answer['steps']['expected']} steps: "
        f"{answer['decision']}\n  {answer['note']}, model version "
        f"{answer['model_version']}"
    )


def shadow_model(store: Store, facts: object) -> RenderableType:
    """Each task's estimate made before learning it, against what it took."""
    rows = store.query(
        "SELECT task_id, agent, basis, model_version, predicted_cost_usd,"
        " predicted_cost_usd_lower, predicted_cost_usd_upper, baseline_cost_usd,"
        " actual_cost_usd, actual_steps FROM {db}.shadow_predictions FINAL"
        " ORDER BY n_learnt"
    )
    if not rows:
        return Table(title="Shadow cost model: no task learnt")
    return Group(_scores(rows), _recent(rows[-8:]))


def _scores(rows: list[Any]) -> Table:
    table = Table(title="Shadow cost model: estimates made before learning each task")
    for name in ("estimates", "tasks", "MAE cost", "agent mean's MAE", "in interval"):
        table.add_column(name, justify="left" if name == "estimates" else "right")
    for label, basis in (("the model's", "model"), ("warm-up fallbacks", None)):
        mine = [r for r in rows if (r[2] == "model") == (basis == "model")]
        if mine:
            table.add_row(label, *_score(mine))
    return table


def _score(rows: list[Any]) -> tuple[str, str, str, str]:
    n = len(rows)
    mae = sum((abs(r[4] - r[8]) for r in rows), Decimal(0)) / n
    baseline = sum((abs(r[7] - r[8]) for r in rows), Decimal(0)) / n
    covered = sum(r[5] <= r[8] <= r[6] for r in rows) / n
    return f"{n}", f"${mae:.4f}", f"${baseline:.4f}", f"{covered:.0%}"


def _recent(rows: list[Any]) -> Table:
    table = Table(title="The last tasks learnt (USD)")
    for name in ("task", "agent", "basis", "version", "estimate", "90% interval"):
        table.add_column(name)
    table.add_column("actual", justify="right")
    table.add_column("steps", justify="right")
    for task_id, agent, basis, version, cost, low, high, _, actual, steps in rows:
        table.add_row(
            task_id[-14:],
            agent,
            basis,
            str(version),
            f"{cost:.4f}",
            f"{low:.4f} to {high:.4f}",
            f"{actual:.4f}",
            str(steps),
        )
    return table
