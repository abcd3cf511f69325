"""The velocity breaker through real workers, a real broker and ClickHouse."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from streams.routing import partition_for
from tests.integration.breaker_kit import (
    START,
    TOKEN,
    call,
    politeness_loop,
    session,
    spend,
    stored_trips,
    trip_records,
    wait_for_state,
    webhook,
)
from tests.integration.harness import WorkerProcess, free_port, produce

pytestmark = pytest.mark.integration

StartWorker = Callable[..., WorkerProcess]


def burst(session_id: str, start_ms: int = 0) -> list[dict[str, object]]:
    """$1.50 within 3 s: above the default $1.00 in 10 s."""
    return spend(session_id, 3, 1_000, "0.50", start_ms=start_ms)


def in_time_order(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """As a gateway sends them: sessions sharing a partition share its clock."""
    return sorted(events, key=lambda e: datetime.fromisoformat(str(e["ts"])))


def unfreeze(session_id: str, ts: datetime) -> dict[str, object]:
    return {
        "command": "unfreeze",
        "session_id": session_id,
        "ts": ts.isoformat(),
        "by": "ops",
    }


def test_a_politeness_loop_trips_once_within_a_minute_a_calm_session_never(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    dead_hook = f"http://127.0.0.1:{free_port()}/hook"
    worker = start_worker(
        SPENDSTREAM_ALERT_WEBHOOK=dead_hook,
        SPENDSTREAM_ALERT_ATTEMPTS="2",
        SPENDSTREAM_ALERT_BACKOFF_S="0.1",
    )
    calm = spend("calm", 100, 6_000, "0.01")  # $1.00 evenly over ten minutes
    produce(kafka, f"{prefix}events", in_time_order(politeness_loop("polite") + calm))
    worker.wait_caught_up(340)

    [trip] = trip_records(kafka, prefix, 1)
    assert (trip["session_id"], trip["state"]) == ("polite", "frozen")
    assert (trip["rule"], trip["window_s"]) == ("absolute", 60)
    assert Decimal(trip["spend_usd"]) == Decimal("3.03")
    tripped_at = datetime.fromisoformat(trip["ts"])
    assert tripped_at - START <= timedelta(seconds=60)

    polite = session(worker, "polite")
    assert (polite["state"], polite["trip"]["trip_id"]) == ("frozen", trip["trip_id"])
    assert polite["reason"] == "absolute: $3.03 within 60 s is above $3.00"
    assert polite["after_trip_events"] == 240 - 101
    still = session(worker, "calm")
    assert (still["state"], still["known"]) == ("active", True)
    assert still["windows"][-1] == {
        "window_s": 600,
        "events": 100,
        "spend_usd": "1.000000000",
        "rate_usd_per_s": "0.001666667",
    }
    assert (
        worker.metric("spendstream_breaker_events_total", outcome="after_trip") == 139
    )

    # The webhook is down: the alert fails after its retries, the stream goes on.
    worker.wait_until(
        lambda _: worker.metric("spendstream_alerts_total", outcome="failed") == 1,
        "the failed alert counted",
    )
    assert worker.metric("spendstream_alerts_total", outcome="retried") == 1
    assert worker.stop() == 0
    rows, raw_count = stored_trips(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert raw_count == 1
    assert rows == [
        ("polite", "absolute", 60, Decimal("3.03"), Decimal("3.00"), trip["trip_id"])
    ]


def test_a_retry_storm_trips_and_the_webhook_hears_of_it_once(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    with webhook() as (url, alerts):
        worker = start_worker(SPENDSTREAM_ALERT_WEBHOOK=url)
        storm = spend("storm", 100, 0, "0.00001")  # 100 retries in one millisecond
        produce(kafka, f"{prefix}events", storm)
        worker.wait_caught_up(100)
        [trip] = trip_records(kafka, prefix, 1)
        assert (trip["session_id"], trip["rule"], trip["window_s"]) == (
            "storm",
            "frequency",
            1,
        )
        assert (trip["events"], trip["threshold_events"]) == (51, 50)
        worker.wait_until(lambda _: alerts, "the alert posted")
        time.sleep(0.5)
    assert len(alerts) == 1
    assert alerts[0]["trip"]["trip_id"] == trip["trip_id"]
    assert alerts[0]["text"] == (
        "spendstream froze session storm (alice, support): "
        "frequency: 51 events within 1 s, over 50"
    )


def test_unfreeze_over_http_needs_the_admin_token(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = start_worker(SPENDSTREAM_ADMIN_TOKEN=TOKEN)
    produce(kafka, f"{prefix}events", burst("s-http"))
    frozen = wait_for_state(worker, "s-http", "frozen")["trip"]
    path = "/v1/sessions/s-http/unfreeze"

    assert call(worker, "POST", path)[0] == 401
    status, answer = call(worker, "POST", path, token="not-the-token")
    assert status == 401 and "admin token" in answer["error"]
    time.sleep(1)
    assert session(worker, "s-http")["state"] == "frozen"
    assert len(trip_records(kafka, prefix, 1)) == 1

    status, answer = call(worker, "POST", path, token=TOKEN, body={"by": "ana"})
    assert status == 202 and answer["command"]["session_id"] == "s-http"
    wait_for_state(worker, "s-http", "active")
    frozen_record, unfrozen = trip_records(kafka, prefix, 2)
    assert frozen_record["trip_id"] == frozen["trip_id"]
    assert (unfrozen["state"], unfrozen["by"]) == ("unfrozen", "ana")
    assert unfrozen["cleared_trip_id"] == frozen["trip_id"]


def test_unfreeze_over_the_admin_topic_and_an_old_command_read_again(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = start_worker()
    produce(kafka, f"{prefix}events", burst("s-admin"))
    wait_for_state(worker, "s-admin", "frozen")
    command = unfreeze("s-admin", datetime.now(UTC))
    produce(kafka, f"{prefix}admin", [command])
    wait_for_state(worker, "s-admin", "active")

    produce(kafka, f"{prefix}events", burst("s-admin", start_ms=20_000))
    second = wait_for_state(worker, "s-admin", "frozen")["trip"]
    produce(kafka, f"{prefix}admin", [command])  # the old command, again
    time.sleep(2)
    assert session(worker, "s-admin")["trip"]["trip_id"] == second["trip_id"]
    states = [r["state"] for r in trip_records(kafka, prefix, 3)]
    assert states == ["frozen", "unfrozen", "frozen"]

    worker.stop()
    again = start_worker()  # reads both commands again at start
    answer = session(again, "s-admin")
    assert (answer["state"], answer["trip"]["trip_id"]) == ("frozen", second["trip_id"])
    assert len(trip_records(kafka, prefix, 3)) == 3


def test_set_policy_replaces_the_policy_file_at_runtime(
    kafka: str, prefix: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("[rules.frequency]\nmax_events = 5\n")
    worker = start_worker(SPENDSTREAM_POLICY=str(policy_file))
    produce(kafka, f"{prefix}events", spend("s-file", 6, 100, "0.0001"))
    trip = wait_for_state(worker, "s-file", "frozen")["trip"]
    assert (trip["rule"], trip["threshold_events"]) == ("frequency", 5)

    bad = {"command": "set_policy", "ts": START.isoformat(), "policy": {"nope": 1}}
    limit = {"rules": {"absolute_usd": {"10": "0.10"}}}
    good = {**bad, "policy": limit, "ts": datetime.now(UTC).isoformat()}
    produce(kafka, f"{prefix}admin", [bad, good])
    worker.wait_until(
        lambda _: (
            worker.metric(
                "spendstream_admin_commands_total",
                command="set_policy",
                outcome="applied",
            )
            == 1
        ),
        "the policy applied",
    )
    labels = {"command": "set_policy", "outcome": "invalid"}
    assert worker.metric("spendstream_admin_commands_total", **labels) == 1

    many = spend("s-many", 6, 100, "0.0001", start_ms=60_000)
    dimes = spend("s-dime", 3, 1_000, "0.04", start_ms=60_000)
    produce(kafka, f"{prefix}events", in_time_order(many + dimes))
    worker.wait_caught_up(15)
    trip = session(worker, "s-dime")["trip"]
    assert (trip["rule"], trip["threshold_usd"]) == ("absolute", "0.100000000")
    many_answer = session(worker, "s-many")  # 6 events in a second: the limit is 50
    assert (many_answer["state"], many_answer["windows"][0]["events"]) == ("active", 6)


def test_a_frozen_session_stays_frozen_after_a_crash(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    first = start_worker()
    produce(kafka, f"{prefix}events", burst("s-crash"))
    trip = wait_for_state(first, "s-crash", "frozen")["trip"]
    first.wait_caught_up(3)
    first.kill()

    second = start_worker()
    answer = session(second, "s-crash")
    assert (answer["state"], answer["trip"]["trip_id"]) == ("frozen", trip["trip_id"])
    produce(kafka, f"{prefix}events", burst("s-crash", start_ms=5_000))
    second.wait_caught_up(6)
    assert session(second, "s-crash")["after_trip_events"] == 3
    assert len(trip_records(kafka, prefix, 1)) == 1


def test_the_worker_taking_over_a_partition_keeps_its_frozen_sessions(
    kafka: str, prefix: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    ids = [f"s-{n}" for n in range(40)]
    one_per_partition = {partition_for(s, 3): s for s in ids}
    sessions = sorted(one_per_partition.values())
    assert len(sessions) == 3
    first = start_worker(SPENDSTREAM_ADMIN_TOKEN=TOKEN)
    produce(kafka, f"{prefix}events", [e for s in sessions for e in burst(s)])
    trips = {s: wait_for_state(first, s, "frozen")["trip"]["trip_id"] for s in sessions}

    # An embedded store is one process's: the second worker gets its own.
    second = start_worker(
        SPENDSTREAM_ADMIN_TOKEN="", SPENDSTREAM_CLICKHOUSE=f"chdb://{tmp_path}/store2"
    )
    for worker in (first, second):
        worker.wait_until(
            lambda h: len(h["events"]["partitions"]) in (1, 2), "a share of partitions"
        )
    for worker in (first, second):
        answers = {s: session(worker, s) for s in sessions}
        assert {s: a["trip"]["trip_id"] for s, a in answers.items()} == trips
        assert len({a["worker"] for a in answers.values()}) == 2

    status, answer = call(second, "POST", "/v1/sessions/s-0/unfreeze", token="x")
    assert status == 403 and "SPENDSTREAM_ADMIN_TOKEN" in answer["error"]

    first.kill()
    second.wait_until(lambda h: len(h["events"]["partitions"]) == 3, "every partition")
    for s in sessions:
        answer = session(second, s)
        assert (answer["state"], answer["trip"]["trip_id"]) == ("frozen", trips[s])
    assert len(trip_records(kafka, prefix, 3)) == 3
