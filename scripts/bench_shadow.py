"""The shadow model: estimate latency, tasks learnt per second, snapshot size, accuracy.

One `spendstream worker` on a fresh prefix and embedded store:

1. a generated history (`tests/unit/task_history`: steps grow with the
   prompt and differ by agent, cost by model) is sent as gateways send it,
   each task's cost events before its task records;
2. learnt per second through the worker (router, task log, learner,
   ClickHouse rows), from the first task learnt to the last, polling
   `GET /v1/shadow`; beside it the model alone in this process
   (`learn_finished`'s work: the fallback's estimate, the model's, learning);
3. estimate latency: sequential `POST /v1/estimate` on one keep-alive
   loopback connection with the history's features, the worker idle, then
   again while it learns a second history;
4. snapshot size: the last record of the model topic and of the learner's
   checkpoint topic;
5. accuracy, from `shadow_predictions` once the worker has stopped: cost MAE
   after warm-up against the per-agent running mean's, and interval coverage.

Usage: scripts/bench shadow [--tasks N] [--requests R]. Needs the broker
(`scripts/kafka up`, or SPENDSTREAM_KAFKA). This machine is shared: quote
figures of one run.
"""

import argparse
import asyncio
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the generated history lives with the tests

from bench_worker import bench_settings, free_port, spawn_worker  # noqa: E402

from models.shadow import ShadowModel  # noqa: E402
from streams.latest import read_latest  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import ensure_topics, topic_specs  # noqa: E402
from tests.integration.shadow_client import (  # noqa: E402
    mae_usd,
    prediction_rows,
    send_history,
)
from tests.unit.task_history import generate  # noqa: E402

console = Console()
WARM_UP = 400
PORT = free_port()


def get(port: int, path: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        found: dict[str, Any] = json.loads(connection.getresponse().read())
        return found
    finally:
        connection.close()


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """A worker process, once its learner owns the task log."""
    proc = spawn_worker(settings, log)
    wait(proc, log, lambda s: s["learner"]["active"])
    return proc


def wait(
    proc: subprocess.Popen[bytes], log: Path, done: Any, poll_s: float = 0.1
) -> float:
    """Poll `GET /v1/shadow` until `done(status)`; the time it was first seen."""
    while True:
        if proc.poll() is not None:
            sys.exit(f"bench: the worker exited; see {log}")
        try:
            if done(get(PORT, "/v1/shadow")):
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(poll_s)


def learn_rate(proc: subprocess.Popen[bytes], log: Path, first: int, n: int) -> float:
    """Tasks/s through the worker, from the first of `n` new tasks to the last."""
    began = wait(proc, log, lambda s: s["learner"]["n_learnt"] > first, 0.02)
    ended = wait(proc, log, lambda s: s["learner"]["n_learnt"] >= first + n, 0.02)
    return (n - 1) / (ended - began)


def model_rate(history: list[Any]) -> float:
    """Tasks/s of the model alone: the fallback's estimate, the model's, learning."""
    model = ShadowModel()
    started = time.perf_counter()
    for features, actuals in history:
        model.predict_baseline(features)
        model.predict_then_learn(features, actuals)
    return len(history) / (time.perf_counter() - started)


def latencies_ms(bodies: list[bytes], count: int, until: Any = None) -> list[float]:
    """Wall time of `count` sequential estimates on one keep-alive connection
    (or until `until()` is true, once at least 100 were made)."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    found = []
    try:
        for n in range(count):
            started = time.perf_counter()
            connection.request("POST", "/v1/estimate", bodies[n % len(bodies)])
            answer = connection.getresponse()
            answer.read()
            found.append((time.perf_counter() - started) * 1000)
            if answer.status != 200:
                sys.exit(f"bench: estimate answered {answer.status}")
            if until is not None and n >= 100 and n % 50 == 0 and until():
                break
    finally:
        connection.close()
    return found


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100)
    return f"p50 {cuts[49]:.2f} ms, p99 {cuts[98]:.2f} ms ({len(values):,} requests)"


def snapshot_sizes(kafka: str, prefix: str) -> tuple[int, int]:
    sizes = []
    for topic in ("shadow-model", "shadow-learner"):
        found = asyncio.run(read_latest(kafka, prefix + topic, 64 * 1024 * 1024))
        sizes.append(len(found.value or b"") if found else 0)
    return sizes[0], sizes[1]


def accuracy(store_url: str) -> tuple[float, float, float]:
    """Cost MAE after warm-up: the model's, the agent mean's; cost coverage."""
    rows = prediction_rows(store_url)[WARM_UP:]
    covered = sum(
        r["predicted_cost_usd_lower"]
        <= r["actual_cost_usd"]
        <= r["predicted_cost_usd_upper"]
        for r in rows
    )
    model = float(mae_usd(rows, "predicted_cost_usd"))
    return model, float(mae_usd(rows, "baseline_cost_usd")), covered / len(rows)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--tasks", type=int, default=2_000)
    args.add_argument("--requests", type=int, default=5_000)
    opts = args.parse_args()
    if opts.tasks <= WARM_UP + 100:
        sys.exit(f"bench: --tasks must be above {WARM_UP + 100} to measure accuracy")
    work = Path(tempfile.mkdtemp(prefix="spendstream-bench-shadow-"))
    settings = bench_settings(
        "benchshadow", work, web_port=PORT, shadow_publish_interval_s=1
    )
    kafka, prefix = settings.kafka, settings.topic_prefix
    asyncio.run(ensure_topics(settings, topic_specs(settings)))
    history = generate(opts.tasks, seed=7)
    second = generate(opts.tasks // 2, seed=8)
    bodies = [json.dumps(f.model_dump(exclude_none=True)).encode() for f, _ in history]
    log = work / "worker.log"

    alone = model_rate(history)
    proc = start_worker(settings, log)
    try:
        with console.status(f"sending and learning {opts.tasks:,} tasks"):
            send_history(kafka, prefix, history)
            through = learn_rate(proc, log, 0, opts.tasks)
            wait(proc, log, lambda s: s["estimator"]["n_learnt"] >= opts.tasks)
        with console.status(f"{opts.requests:,} estimates, the worker idle"):
            idle = latencies_ms(bodies, opts.requests)
        with console.status("estimates while the worker learns a second history"):
            send_history(kafka, prefix, second, first=opts.tasks)
            total = opts.tasks + len(second)
            busy = latencies_ms(
                bodies,
                opts.requests,
                until=lambda: get(PORT, "/v1/shadow")["learner"]["n_learnt"] >= total,
            )
        model_bytes, checkpoint_bytes = snapshot_sizes(kafka, prefix)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    mae, baseline, coverage = accuracy(settings.clickhouse)
    report(opts.tasks, alone, through, idle, busy, (model_bytes, checkpoint_bytes))
    console.print(
        f"accuracy after {WARM_UP} tasks of warm-up: cost MAE ${mae:.4f} against "
        f"the agent mean's ${baseline:.4f} (ratio {mae / baseline:.2f}); the 90% "
        f"interval covered {coverage:.1%}"
    )


def report(
    tasks: int,
    alone: float,
    through: float,
    idle: list[float],
    busy: list[float],
    sizes: tuple[int, int],
) -> None:
    table = Table(title=f"shadow model, {tasks:,} generated tasks")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_row("tasks learnt/s, through one worker", f"{through:,.0f}")
    table.add_row("tasks learnt/s, the model alone in-process", f"{alone:,.0f}")
    table.add_row("POST /v1/estimate, worker idle", percentiles(idle))
    table.add_row("POST /v1/estimate, worker learning", percentiles(busy))
    table.add_row("model snapshot (every worker loads it)", f"{sizes[0]:,} bytes")
    table.add_row("learner checkpoint (model + open tasks)", f"{sizes[1]:,} bytes")
    console.print(table)


if __name__ == "__main__":
    main()
