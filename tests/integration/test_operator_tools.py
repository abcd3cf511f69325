"""The operator's commands on the real broker: `emit`, `trips`, and `/metrics`."""

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

import pytest

from models.pricing import price_tokens
from streams.store import Store
from tests.integration.harness import (
    SPENDSTREAM,
    WorkerProcess,
    consume,
    create_topics,
    produce,
    totals,
)

pytestmark = pytest.mark.integration

StartWorker = Callable[..., WorkerProcess]
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def spendstream(
    env: dict[str, str], *args: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SPENDSTREAM), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_an_emitted_event_is_counted_in_clickhouse(
    worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    worker = start_worker()
    priced = spendstream(
        worker_env,
        *("emit", "--session", "s-cli", "--agent", "ops-bot", "--principal", "ops"),
        *("--model", "gpt-4o", "--provider", "openai", "--input-tokens", "1000"),
        *("--output-tokens", "200", "--ts", "2026-11-30T12:00:30Z"),
    )
    assert priced.returncode == 0, priced.stderr
    paid = spendstream(
        worker_env,
        *("emit", "--session", "s-cli", "--agent", "ops-bot", "--principal", "ops"),
        *("--cost-usd", "0.000000007", "--kind", "tool", "--event-id", "ev-paid"),
        *("--ts", "2026-11-30T12:01:00Z", "--attribute", "tool=browser"),
    )
    assert paid.stdout.strip() == "ev-paid"
    worker.wait_caught_up(2)
    assert worker.metric("spendstream_events_total", outcome="counted") == 2
    assert worker.stop() == 0

    expected_usd = Decimal("0.000000007") + price_tokens(
        model="gpt-4o",
        provider="openai",
        input_tokens=1000,
        output_tokens=200,
        cached_input_tokens=0,
        at=NOON,
    )
    events, cost_usd, input_tokens, _ = totals(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert (events, cost_usd, input_tokens) == (2, expected_usd, 1000)


def test_emit_refuses_an_invalid_event_and_sends_nothing(
    kafka: str, prefix: str, worker_env: dict[str, str]
) -> None:
    create_topics(worker_env)
    done = spendstream(
        worker_env,
        *("emit", "--session", "s", "--agent", "a", "--principal", "p"),
        *("--cost-usd", "-0.5"),
    )
    assert done.returncode == 2
    assert "not sent" in done.stderr and "cost_usd" in done.stderr
    assert done.stdout == ""
    assert consume(kafka, f"{prefix}events", 1, timeout_s=3) == []


def test_metrics_count_events_dead_letters_flushes_and_lag(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = start_worker()
    produce(kafka, f"{prefix}events", [_event(i) for i in range(5)] + [b"{oops"])
    worker.wait_caught_up(6)
    assert worker.metric("spendstream_events_total", outcome="counted") == 5
    assert worker.metric("spendstream_events_total", outcome="rejected") == 1
    assert worker.metric("spendstream_dlq_records_total", reason="malformed_json") == 1
    assert worker.metric("spendstream_flush_seconds_count") >= 1
    lag = worker.get("/metrics").decode().count("spendstream_consumer_lag{")
    assert lag == 3, "a lag gauge per events partition"
    assert all(
        worker.metric("spendstream_consumer_lag", partition=str(p)) == 0
        for p in range(3)
    )


def _event(i: int) -> dict[str, Any]:
    return {
        "event_id": f"ev-{i}",
        "ts": "2026-11-30T12:00:00Z",
        "session_id": f"s-{i}",
        "agent": "a",
        "principal": "p",
        "cost_usd": "0.01",
    }


def trip(n: int, state: str = "frozen") -> dict[str, Any]:
    return {
        "trip_id": f"trip-{n}",
        "ts": (NOON + timedelta(minutes=n)).isoformat(),
        "session_id": f"sess-{n}",
        "agent": "deep-researcher",
        "principal": "research",
        "state": state,
        "rule": "unfreeze" if state == "unfrozen" else "absolute",
        "window_s": 60,
        "spend_usd": "30.30",
        "threshold_usd": "25",
        "rate_usd_per_s": "0.505",
    }


def test_trips_prints_each_trip_on_the_topic_and_exits(
    kafka: str, prefix: str, worker_env: dict[str, str]
) -> None:
    create_topics(worker_env)
    topic = f"{prefix}breaker-trips"
    produce(kafka, topic, [trip(1), trip(2), trip(3, "unfrozen")])
    produce(kafka, topic, [b'{"trip_id": "broken"'])

    done = spendstream(worker_env, "trips")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(lines) == sorted(
        [
            "2026-11-30 12:01:00  FROZEN    sess-1  deep-researcher  research  "
            "absolute: $30.30 in 60s > $25.00 (0.5050 USD/s)",
            "2026-11-30 12:02:00  FROZEN    sess-2  deep-researcher  research  "
            "absolute: $30.30 in 60s > $25.00 (0.5050 USD/s)",
            "2026-11-30 12:03:00  UNFROZEN  sess-3  deep-researcher  research",
        ]
    )
    assert "skipped the record" in done.stderr


def test_trips_without_the_topic_says_so(worker_env: dict[str, str]) -> None:
    done = spendstream(worker_env, "trips")
    assert done.returncode == 1
    assert "a worker creates it" in done.stderr


@pytest.fixture
def follower(worker_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    create_topics(worker_env)
    proc = subprocess.Popen(
        [str(SPENDSTREAM), "trips", "--follow"],
        env={**os.environ, **worker_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def line_reader(stream: IO[str]) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_trips_follow_prints_trips_as_they_arrive(
    kafka: str, prefix: str, follower: subprocess.Popen[str]
) -> None:
    topic = f"{prefix}breaker-trips"
    produce(kafka, topic, [trip(1)])
    assert follower.stdout is not None
    lines = line_reader(follower.stdout)
    assert "sess-1" in lines.get(timeout=30)

    produce(kafka, topic, [trip(2), trip(2, "unfrozen")])
    later = [lines.get(timeout=30), lines.get(timeout=30)]
    assert ["FROZEN" in later[0], "UNFROZEN" in later[1]] == [True, True]
    assert all("sess-2" in line for line in later)

    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=30) == 0


def test_emitted_event_lands_with_its_fields(
    worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    worker = start_worker()
    done = spendstream(
        worker_env,
        *("emit", "--session", "s-f", "--agent", "db-agent", "--principal", "mkt"),
        *("--owner", "eng", "--cost-usd", "0.05", "--kind", "agent"),
        *("--ts", "2026-11-30T12:00:30Z"),
    )
    assert done.returncode == 0, done.stderr
    worker.wait_caught_up(1)
    assert worker.stop() == 0
    store = Store.open(worker_env["SPENDSTREAM_CLICKHOUSE"])
    try:
        rows = store.query(
            "SELECT minute, session_id, agent, principal, owner, kind, cost_usd"
            " FROM {db}.spend_minute"
        )
    finally:
        store.close()
    assert rows == [
        (NOON, "s-f", "db-agent", "mkt", "eng", "agent", Decimal("0.05")),
    ]
