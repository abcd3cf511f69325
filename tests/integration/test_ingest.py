"""Cost events through a real broker into the real ClickHouse engine."""

from collections.abc import Callable
from decimal import Decimal

import pytest

from tests.integration.harness import (
    WorkerProcess,
    consume,
    create_topics,
    event,
    produce,
    totals,
)

pytestmark = pytest.mark.integration

StartWorker = Callable[..., WorkerProcess]


def test_events_arrive_with_exact_totals(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    costs = ["0.1", "0.2", "0.000000001", "123.456789012", "0.3"] * 40
    records = [
        event(i, cost, input_tokens=i, output_tokens=2 * i)
        for i, cost in enumerate(costs)
    ]
    worker = start_worker()
    produce(kafka, f"{prefix}events", records)
    worker.wait_caught_up(len(records))
    assert worker.stop() == 0

    events, cost_usd, input_tokens, output_tokens = totals(
        worker_env["SPENDSTREAM_CLICKHOUSE"]
    )
    assert events == 200
    assert cost_usd == sum(Decimal(c) for c in costs)
    assert input_tokens == sum(range(200))
    assert output_tokens == 2 * sum(range(200))


def test_duplicates_count_once(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    first = [event(i) for i in range(50)]
    again = [event(i) for i in range(0, 50, 5)]
    worker = start_worker()
    produce(kafka, f"{prefix}events", first + again)
    worker.wait_caught_up(60)
    assert worker.metric("spendstream_events_total", outcome="duplicate") == 10
    worker.stop()

    events, cost_usd, _, _ = totals(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert (events, cost_usd) == (50, Decimal("5.00"))


def test_bad_records_go_to_the_dlq_and_the_rest_is_counted(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    missing_agent = event(1001)
    del missing_agent["agent"]
    bad = {
        "malformed JSON": b'{"event_id": "x", "ts": ',
        "agent: field required": missing_agent,
        "cost_usd: input should be greater than or equal to 0": event(1002, "-0.5"),
        "JSON constant NaN": b'{"event_id":"n","ts":"2026-11-30T12:00:00Z",'
        b'"session_id":"s","agent":"a","principal":"p","cost_usd":NaN}',
        "is not in the price catalogue": {
            **event(1003),
            "cost_usd": None,
            "model": "no-such-model-7b",
        },
        "exceeds the limit": b'{"pad": "' + b"x" * (1024 * 1024) + b'"}',
    }
    records: list[object] = []
    for i, record in enumerate(bad.values()):
        records += [event(2 * i), record, event(2 * i + 1)]
    worker = start_worker()
    produce(kafka, f"{prefix}events", records)
    worker.wait_caught_up(len(records))
    worker.stop()

    letters = consume(kafka, f"{prefix}dlq", len(bad))
    assert len(letters) == len(bad), [x["reason"] for x in letters]
    reasons = [letter["reason"] for letter in letters]
    for expected in bad:
        assert any(expected.lower() in reason.lower() for reason in reasons), expected
    for letter in letters:
        assert letter["source_topic"] == f"{prefix}events"
        assert letter["offset"] >= 0 and letter["value"]
    big = next(x for x in letters if "exceeds" in x["reason"])
    assert len(big["value"]) > 1024 * 1024

    events, cost_usd, _, _ = totals(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert (events, cost_usd) == (2 * len(bad), Decimal("0.10") * 2 * len(bad))


def test_sigkill_mid_stream_loses_and_doubles_nothing(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    n = 30_000
    records = [event(i, f"0.{i % 1000:03d}000007") for i in range(n)]
    expected_usd = sum(Decimal(r["cost_usd"]) for r in records)
    create_topics(worker_env)
    produce(kafka, f"{prefix}events", records)

    # Small polls and flushes make the first worker slow enough to kill midway.
    first = start_worker(
        SPENDSTREAM_POLL_MAX_RECORDS="100", SPENDSTREAM_FLUSH_EVENTS="200"
    )
    first.wait_until(
        lambda h: (
            sum(p["flushed"] + 1 for p in h["events"]["partitions"].values()) > 1000
        ),
        "a thousand events flushed",
    )
    first.kill()
    assert not first.health_before_kill_caught_up

    second = start_worker()
    second.wait_caught_up(n)
    assert 0 < second.metric("spendstream_events_total", outcome="counted") < n
    assert second.stop() == 0

    events, cost_usd, _, _ = totals(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert (events, cost_usd) == (n, expected_usd)


def test_sigterm_flushes_what_the_worker_holds(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    worker = start_worker(SPENDSTREAM_FLUSH_INTERVAL_S="600")
    produce(kafka, f"{prefix}events", [event(i, "0.25") for i in range(40)])
    worker.wait_until(
        lambda _: worker.metric("spendstream_events_total", outcome="counted") == 40,
        "40 events read",
    )
    assert worker.stop() == 0
    events, cost_usd, _, _ = totals(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert (events, cost_usd) == (40, Decimal("10.00"))
