"""The demo's simulated fleet: pure generators, checked without Kafka."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from models.errors import InvalidRecord
from models.events import CostEvent, decode_cost_event
from models.fleet import (
    TIMELINE,
    GatewayRecord,
    fleet,
    fleet_tasks,
    grant_commands,
    tally,
)
from models.records import GrantCommand
from models.task_log import decode_task_record
from models.wallet import Wallet

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def records() -> list[GatewayRecord]:
    return fleet(START, sessions=30, seed=11)


def decoded(records: list[GatewayRecord], scenario: str) -> list[CostEvent]:
    return [decode_cost_event(r.encode()) for r in records if r.scenario == scenario]


def test_same_seed_gives_the_same_records_and_another_seed_does_not() -> None:
    first = [(r.key, r.encode()) for r in fleet(START, sessions=12, seed=5)]
    again = [(r.key, r.encode()) for r in fleet(START, sessions=12, seed=5)]
    other = [(r.key, r.encode()) for r in fleet(START, sessions=12, seed=6)]
    assert first == again
    assert first != other


def test_records_are_in_event_time_order_within_the_timeline(
    records: list[GatewayRecord],
) -> None:
    times = [r.at for r in records]
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] <= START + TIMELINE


def test_each_ordinary_session_has_a_few_llm_calls_some_left_to_price(
    records: list[GatewayRecord],
) -> None:
    ordinary = [r.value for r in records if r.scenario == "ordinary"]
    per_session = Counter(v["session_id"] for v in ordinary if isinstance(v, dict))
    assert len(per_session) == 30
    assert all(2 <= calls <= 6 for calls in per_session.values())
    unpriced = [v for v in ordinary if isinstance(v, dict) and "cost_usd" not in v]
    assert 0 < len(unpriced) < len(ordinary)


def test_the_runaway_researcher_spends_exactly_100_usd_in_2000_calls(
    records: list[GatewayRecord],
) -> None:
    events = decoded(records, "runaway")
    assert len(events) == 2_000
    assert Counter(e.kind for e in events) == {"tool": 1_000, "llm": 1_000}
    assert sum((e.cost for e in events), Decimal(0)) == Decimal("100.00")
    assert len({e.session_id for e in events}) == 1
    assert max(e.ts for e in events) - min(e.ts for e in events) < timedelta(minutes=5)


def test_the_politeness_loop_has_one_message_per_second_per_agent(
    records: list[GatewayRecord],
) -> None:
    events = decoded(records, "politeness")
    assert len({e.session_id for e in events}) == 1
    by_agent: dict[str, list[datetime]] = {}
    for event in events:
        by_agent.setdefault(event.agent, []).append(event.ts)
    assert len(by_agent) == 2
    for times in by_agent.values():
        assert len(times) == 120
        steps = {later - earlier for earlier, later in pairwise(times)}
        assert steps == {timedelta(seconds=1)}
    assert {e.cost for e in events} == {Decimal("0.03")}


def test_marketing_pays_for_engineerings_database_agent(
    records: list[GatewayRecord],
) -> None:
    calls = [e for e in decoded(records, "cross-department") if e.agent == "db-agent"]
    assert len(calls) == 20
    assert {(e.principal, e.payee, e.cost) for e in calls} == {
        ("marketing", "engineering", Decimal("0.05"))
    }


def test_each_hire_has_its_own_grant_and_task_which_the_worker_spends(
    records: list[GatewayRecord],
) -> None:
    events = decoded(records, "hiring")
    hires = [e for e in events if e.kind == "agent"]
    assert len(hires) == 5
    assert len({e.grant_id for e in hires}) == len({e.task_id for e in hires}) == 5
    work = [e for e in events if e.agent == "build-worker"]
    assert work
    assert {(e.grant_id, e.task_id) for e in work} == {
        (e.grant_id, e.task_id) for e in hires
    }


def test_bad_records_are_invalid_and_every_other_record_decodes(
    records: list[GatewayRecord],
) -> None:
    bad = [r for r in records if r.scenario == "bad"]
    assert len(bad) == 4
    for record in bad:
        with pytest.raises(InvalidRecord):
            decode_cost_event(record.encode())
    for record in records:
        if record.scenario != "bad":
            assert decode_cost_event(record.encode()).cost >= 0


def test_one_event_is_sent_twice_with_the_same_event_id(
    records: list[GatewayRecord],
) -> None:
    (retry,) = [r for r in records if r.scenario == "duplicate"]
    originals = [r for r in records if r is not retry and r.encode() == retry.encode()]
    assert len(originals) == 1
    ids = Counter(e.event_id for r in records for e in _decodes(r))
    assert [i for i, n in ids.items() if n > 1] == [
        decode_cost_event(retry.encode()).event_id
    ]


def _decodes(record: GatewayRecord) -> list[CostEvent]:
    try:
        return [decode_cost_event(record.encode())]
    except InvalidRecord:
        return []


def test_the_tally_counts_each_event_once_and_sums_by_department(
    records: list[GatewayRecord],
) -> None:
    result = tally(records)
    assert (result.rejected, result.duplicates) == (4, 1)
    assert result.counted == len(records) - 5
    assert sum(result.by_principal_usd.values()) == result.cost_usd
    runaway_usd = Decimal("100.00")
    assert result.by_principal_usd["research"] > runaway_usd


def test_each_ordinary_session_and_each_hire_is_a_task_with_both_records(
    records: list[GatewayRecord],
) -> None:
    events = [decode_cost_event(r.encode()) for r in records if r.scenario != "bad"]
    tasks = fleet_tasks(records)
    assert {r.topic for r in tasks} == {"tasks"} and {r.topic for r in records} == {
        "events"
    }
    decoded = [decode_task_record(r.encode()) for r in tasks]
    started = {t.task_id: t for t in decoded if t.status == "started"}
    finished = {t.task_id: t for t in decoded if t.status == "finished"}
    assert started.keys() == finished.keys() == {e.task_id for e in events if e.task_id}
    assert len(started) == 30 + 5

    for task_id, record in started.items():
        times = [e.ts for e in events if e.task_id == task_id]
        assert record.ts < min(times) and max(times) < finished[task_id].ts
        assert record.prompt is not None and record.agent is not None
    assert [r.at for r in tasks] == sorted(r.at for r in tasks)


def test_a_task_prompt_grows_with_its_calls(records: list[GatewayRecord]) -> None:
    events = [event for record in records for event in _decodes(record)]
    calls = Counter(e.task_id for e in events if e.task_id is not None)
    for record in fleet_tasks(records):
        value = record.value
        if isinstance(value, dict) and value["status"] == "started":
            assert len(value["prompt"].split()) == 25 * calls[value["task_id"]]


def test_the_hiring_commands_pay_four_hires_and_a_bonus_and_refuse_the_fifth(
    records: list[GatewayRecord],
) -> None:
    commands = grant_commands(records)
    wallet = Wallet()
    outcomes = [wallet.apply(GrantCommand.model_validate(c.value)) for c in commands]

    assert {c.topic for c in commands} == {"grants"}
    assert [c.value["command"] for c in commands if isinstance(c.value, dict)] == [
        "open",
        "open",
        "fund",
        "open",
        "open",
        "open",
        "open",
    ]
    refused = [
        o.statuses[0].reason for o in outcomes if o.statuses[0].status == "refused"
    ]
    assert len(refused) == 1 and "short of 0.120000000" in (refused[0] or "")
    team = wallet.view("grant-eng-team")
    assert team is not None and team["balance_usd"] == "0.000000000"
    hired = [wallet.view(g) for g in team["children"]]
    assert sorted(h["balance_usd"] for h in hired if h) == [
        "0.120000000",
        "0.120000000",
        "0.120000000",
        "0.140000000",
    ]
    hire_grants = {e.grant_id for e in decoded(records, "hiring") if e.kind == "agent"}
    assert set(team["children"]) < hire_grants
