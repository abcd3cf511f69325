"""Per-task usage: sums per poll, the batch message, replays counted once."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.events import CostEvent
from models.records import TaskRecord
from models.task_log import (
    decode_log_entry,
    decode_task_record,
    encode_progress,
    encode_task,
    encode_usage,
)
from models.task_usage import ProgressReport, TaskUsage, UsageAggregator, UsageBatch
from models.tasks import TaskTracker
from models.usage_replay import UsageReplay

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def event(n: int, task_id: str | None, cost: str, tokens: int = 10) -> CostEvent:
    return CostEvent(
        event_id=f"e{n}",
        ts=T0 + timedelta(seconds=n),
        session_id="s",
        agent="coder",
        principal="eng",
        task_id=task_id,
        input_tokens=tokens,
        output_tokens=1,
        cost_usd=Decimal(cost),
    )


def test_the_aggregator_sums_task_events_and_tracks_the_newest_time() -> None:
    sums = UsageAggregator()
    sums.add([event(1, "t1", "0.1"), event(2, None, "5"), event(3, "t1", "0.2")])
    sums.add([event(4, "t2", "0.000000001", tokens=0), event(9, None, "1")])

    drained = sums.drain()
    assert drained == {
        "t1": TaskUsage(2, 22, Decimal("0.3"), (T0 + timedelta(seconds=3)).timestamp()),
        "t2": TaskUsage(1, 1, Decimal("1e-9"), (T0 + timedelta(seconds=4)).timestamp()),
    }
    assert sums.newest_s == (T0 + timedelta(seconds=9)).timestamp()
    assert not sums and sums.drain() == {}


def test_batches_and_task_records_round_trip_through_the_log() -> None:
    usage = TaskUsage(3, 120, Decimal("0.123456789"), 1.5)
    batch = UsageBatch(2, 41, 0, None, {"t1": usage})
    report = ProgressReport(4, 77, {0: None, 3: 12.5}, frozenset({3}))
    record = TaskRecord(status="started", task_id="t1", ts=T0, prompt="hi", k="v")

    assert decode_log_entry(encode_usage(batch)) == batch
    assert decode_log_entry(encode_progress(report)) == report
    assert decode_log_entry(encode_task(record)) == record
    assert decode_log_entry(encode_task(record)).model_extra == {"k": "v"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"kind": "gossip"}, "is not task, usage or progress"),
        ({"kind": ["usage"]}, "is not task, usage or progress"),
        ({"kind": "task", "record": "t1"}, "has no record object"),
        ({"kind": "task", "record": {"task_id": "t1"}}, "status: field required"),
        ({"kind": "usage", "partition": 0}, "invalid usage entry"),
        ({"kind": "progress", "partitions": 1}, "invalid progress entry"),
    ],
)
def test_a_damaged_log_entry_is_refused_with_a_reason(
    value: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        decode_log_entry(dumps(value))


STARTED = {"status": "started", "task_id": "t1", "ts": "2026-11-02T09:00:00Z"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"status": "started", ', "malformed JSON"),
        (dumps({**STARTED, "agent": "coder"}), "prompt is missing"),
        (dumps({**STARTED, "prompt": "  ", "agent": "coder"}), "prompt is empty"),
        (dumps({**STARTED, "prompt": "x" * 100_001, "agent": "c"}), "byte limit"),
        (dumps({**STARTED, "prompt": "fix it"}), "agent: field required"),
        (dumps({**STARTED, "status": "paused"}), "status: input should be"),
    ],
)
def test_a_bad_task_record_is_refused_before_the_log(value: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        decode_task_record(value)


def test_a_finished_record_needs_no_features() -> None:
    finished = {**STARTED, "status": "finished", "outcome": "ok"}
    assert decode_task_record(dumps(finished)).outcome == "ok"


def test_usage_counts_must_be_integers() -> None:
    value = loads(encode_usage(UsageBatch(0, -1, 0, None)))
    value["tasks"] = {"t1": [1.5, 3, "0.1", 0.0]}
    with pytest.raises(InvalidRecord, match="must be integers"):
        decode_log_entry(dumps(value))


def test_the_tracker_ignores_a_take_back_for_a_task_it_no_longer_holds() -> None:
    tracker = TaskTracker()
    tracker.on_usage("gone", TaskUsage(-2, -20, Decimal("-0.2"), 0.0))
    tracker.on_usage("t1", TaskUsage(2, 20, Decimal("0.2"), 0.0))
    tracker.on_usage("t1", TaskUsage(-1, -10, Decimal("-0.1"), 0.0))

    assert list(tracker.tallies) == ["t1"]
    tally = tracker.tallies["t1"]
    assert (tally.events, tally.tokens, tally.cost_usd) == (1, 10, Decimal("0.1"))


# The ingest, simulated: flushes of polls over one partition's events; a crash
# loses the flush in progress after some of its batches were sent, and the
# restarted ingest reads again from the last flushed offset, polling anew.

TASKS = ("t1", "t2", "t3")
EVENTS = st.lists(
    st.tuples(st.sampled_from((*TASKS, None)), st.integers(0, 10**6)),
    min_size=1,
    max_size=60,
)


def _batch(events: list[CostEvent], marker: int, part: int) -> UsageBatch:
    sums = UsageAggregator()
    sums.add(events)
    return UsageBatch(0, marker, part, sums.newest_s, sums.drain())


@settings(max_examples=200, deadline=None)
@given(st.data(), EVENTS)
def test_replayed_batches_count_every_event_once(
    data: st.DataObject, drawn: list[tuple[str | None, int]]
) -> None:
    events = [
        event(n, task_id, str(Decimal(nano).scaleb(-9)))
        for n, (task_id, nano) in enumerate(drawn)
    ]
    replay, applied = UsageReplay(), defaultdict[str, list[TaskUsage]](list)
    flushed, crashes = -1, 0
    while flushed + 1 < len(events):
        end = data.draw(st.integers(flushed + 1, len(events) - 1), "flush end")
        crash = crashes < 3 and data.draw(st.booleans(), "crash")
        read, part = flushed + 1, 0
        while read <= end and not (crash and part > 0 and data.draw(st.booleans())):
            last = data.draw(st.integers(read, end), "poll end")
            batch = _batch(events[read : last + 1], flushed, part)
            for task_id, usage in replay.apply(batch).items():
                applied[task_id].append(usage)
            read, part = last + 1, part + 1
        if crash:
            crashes += 1
        else:
            flushed = end

    for task_id in TASKS:
        mine = [e for e in events if e.task_id == task_id]
        deltas = applied[task_id]
        assert sum(d.events for d in deltas) == len(mine)
        assert sum(d.tokens for d in deltas) == 11 * len(mine)
        assert sum(d.cost_usd for d in deltas) == sum(e.cost for e in mine)


def test_replay_state_round_trips() -> None:
    replay = UsageReplay()
    replay.apply(_batch([event(1, "t1", "0.5"), event(2, "t2", "0.25")], 7, 0))
    again = UsageReplay.from_state(loads(dumps(replay.to_state())))

    batch = _batch([event(1, "t1", "0.5")], 7, 0)
    net = again.apply(batch)
    assert net == replay.apply(batch)
    assert (net["t1"].events, net["t1"].cost_usd) == (0, 0)
    assert (net["t2"].events, net["t2"].cost_usd) == (-1, Decimal("-0.25"))
