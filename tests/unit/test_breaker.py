"""The breaker per session: trips, one per freeze, unfreeze, lateness, state, expiry."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from models.breaker import Breaker, Decision, SessionState
from models.codec import dumps, loads
from models.errors import StateError
from models.events import CostEvent
from models.policy import Policy
from models.records import BreakerTrip
from models.windows import Arrival, epoch_ms

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
_ids = count()


def event(ms: int, cost: str, agent: str = "bot", session_id: str = "s1") -> CostEvent:
    return CostEvent(
        event_id=f"e{next(_ids)}",
        ts=START + timedelta(milliseconds=ms),
        session_id=session_id,
        agent=agent,
        principal="hr",
        cost_usd=Decimal(cost),
    )


class Session:
    """A breaker and one session, fed events in order; the trips it produced."""

    def __init__(self, breaker: Breaker | None = None, session_id: str = "s1") -> None:
        self.breaker = breaker or Breaker()
        self.state = self.breaker.restore(session_id, None)
        self.trips: list[BreakerTrip] = []

    def feed(self, e: CostEvent, **kwargs: int) -> Decision:
        decision = self.breaker.on_event(self.state, e, **kwargs)
        if decision.trip is not None:
            self.trips.append(decision.trip)
        return decision


def test_a_politeness_loop_trips_within_sixty_seconds_of_event_time() -> None:
    s = Session()
    for second in range(120):  # two agents answering each other, once a second each
        s.feed(event(second * 1000, "0.03", agent="alice"))
        s.feed(event(second * 1000 + 500, "0.03", agent="bob"))
    assert len(s.trips) == 1
    trip = s.trips[0]
    assert trip.ts - START <= timedelta(seconds=60)
    assert (trip.rule, trip.window_s, trip.threshold_usd) == ("absolute", 60, 3)
    assert trip.spend_usd == Decimal("3.03")
    assert s.state.state == "frozen"
    assert s.state.after_trip_events == 240 - 101


def test_a_retry_storm_trips_on_frequency_even_at_tiny_cost() -> None:
    s = Session()
    for i in range(100):  # 100 retries within one millisecond
        s.feed(event(i // 100, "0.00001"))
    assert [(t.rule, t.window_s) for t in s.trips] == [("frequency", 1)]
    trip = s.trips[0]
    assert trip.model_extra is not None
    assert (trip.model_extra["events"], trip.model_extra["threshold_events"]) == (
        51,
        50,
    )
    assert s.state.after_trip_events == 49


def test_a_dollar_spread_evenly_over_ten_minutes_never_trips() -> None:
    s = Session()
    decisions = [s.feed(event(i * 600, "0.001")) for i in range(3_000)]  # 30 minutes
    assert s.trips == []
    assert s.state.windows.velocity().spend_usd(600) == Decimal("1.000")
    assert {d.arrival for d in decisions} == {Arrival.ON_TIME}


def test_a_new_session_s_first_cents_never_trip_the_relative_rule() -> None:
    s = Session()
    for i in range(24):  # $0.24 in its first 2.4 s
        s.feed(event(i * 100, "0.01"))
    assert s.trips == []


def test_the_floor_keeps_cents_after_a_quiet_spell_from_tripping() -> None:
    s = Session()
    s.feed(event(0, "0.01"))
    for i in range(4):  # after five quiet minutes, $0.20 in 4 s: 20x the pace
        s.feed(event(300_000 + i * 1_000, "0.05"))
    assert s.trips == []
    s.feed(event(305_000, "0.10"))  # $0.30 in 10 s: above the $0.25 floor
    assert [(t.rule, t.window_s, t.spend_usd) for t in s.trips] == [
        ("relative", 10, Decimal("0.30"))
    ]


def test_a_frozen_session_emits_exactly_one_trip() -> None:
    s = Session()
    first = s.feed(event(0, "1.50"))
    assert first.trip is not None and not first.after_trip
    later = [s.feed(event(100 + i, "5.00")) for i in range(200)]
    assert len(s.trips) == 1
    assert all(d.after_trip and d.trip is None for d in later)
    assert s.state.after_trip_events == 200
    assert s.state.windows.velocity().spend_usd(10) == Decimal("1001.50")


def test_the_trip_record_has_the_contract_s_fields() -> None:
    s = Session()
    s.feed(event(0, "0.70", agent="planner"))
    s.feed(event(2_000, "0.70", agent="coder"))
    record = s.trips[0].to_json_dict()
    assert record["state"] == "frozen"
    assert record["session_id"] == "s1"
    assert (record["agent"], record["principal"]) == ("coder", "hr")
    assert record["ts"] == "2026-11-01T09:00:02Z"
    assert (record["rule"], record["window_s"]) == ("absolute", 10)
    assert record["spend_usd"] == "1.400000000"
    assert record["threshold_usd"] == "1.000000000"
    assert record["rate_usd_per_s"] == "0.140000000"
    assert record["trip_id"]


def test_a_replay_makes_the_same_trip_id() -> None:
    events = [event(i * 100, "0.30") for i in range(5)]
    first, again = Session(), Session()
    for e in events:
        first.feed(e)
        again.feed(e)
    assert first.trips[0] == again.trips[0]
    other = Session(session_id="s2")
    for e in events:
        other.feed(e.model_copy(update={"session_id": "s2"}))
    assert other.trips[0].trip_id != first.trips[0].trip_id


def test_unfreeze_emits_unfrozen_and_the_session_can_trip_again() -> None:
    s = Session()
    s.feed(event(0, "2.00"))
    frozen = s.trips[0]
    when = START + timedelta(seconds=5)
    unfrozen = s.breaker.unfreeze(s.state, "s1", when, "ops@example.com")
    assert (unfrozen.state, unfrozen.session_id, unfrozen.ts) == (
        "unfrozen",
        "s1",
        when,
    )
    assert unfrozen.model_extra is not None
    assert unfrozen.model_extra["cleared_trip_id"] == frozen.trip_id
    assert unfrozen.trip_id != frozen.trip_id
    assert s.state.state == "active"
    s.feed(event(6_000, "0.50"))  # the spend before the unfreeze is forgiven
    assert len(s.trips) == 1
    s.feed(event(7_000, "0.60"))
    assert len(s.trips) == 2 and s.trips[1].state == "frozen"
    assert s.trips[1].trip_id != frozen.trip_id


def test_unfreeze_of_an_unknown_session_still_releases_gateways() -> None:
    breaker = Breaker()
    when = START + timedelta(hours=1)
    record = breaker.unfreeze(None, "gone", when, None)
    assert (record.state, record.session_id) == ("unfrozen", "gone")
    assert breaker.unfreeze(None, "gone", when, "x").trip_id == record.trip_id


def test_a_late_event_within_lateness_counts_and_can_trip() -> None:
    s = Session()
    s.feed(event(100_000, "0.10"))
    decisions = [s.feed(event(75_000 + i, "0.40")) for i in range(3)]
    assert [d.arrival for d in decisions] == [Arrival.LATE] * 3
    assert [(t.rule, t.window_s, t.spend_usd) for t in s.trips] == [
        ("absolute", 10, Decimal("1.20"))
    ]


def test_a_late_event_is_also_checked_against_the_newest_windows() -> None:
    s = Session()
    s.feed(event(99_000, "0.60"))
    s.feed(event(100_000, "0.10"))
    late = event(92_000, "0.35")
    assert s.feed(late).trip is not None  # $1.05 in the 10 s up to 100 s
    assert s.state.windows.velocity(epoch_ms(late.ts)).spend_usd(10) == Decimal("0.35")


def test_events_beyond_lateness_are_reported_and_never_trip() -> None:
    s = Session()
    s.feed(event(100_000, "0.10"))
    decisions = [s.feed(event(60_000 + i, "5.00")) for i in range(60)]
    assert {d.arrival for d in decisions} == {Arrival.TOO_LATE}
    assert s.trips == []
    assert s.state.windows.velocity().spend_usd(600) == Decimal("0.10")


def test_lateness_follows_the_partition_s_newest_time() -> None:
    s = Session()
    high_ms = epoch_ms(START) + 100_000
    decision = s.feed(event(60_000, "5.00"), partition_high_ms=high_ms)
    assert decision.arrival is Arrival.TOO_LATE
    assert s.trips == []


def test_overrides_apply_per_event_agent_and_session() -> None:
    policy = Policy.from_dict(
        {
            "agents": {"batch": {"absolute_usd": {"10": "5.00", "60": "9.00"}}},
            "sessions": {"s9": {"frequency": {"max_events": 2}}},
        }
    )
    batch = Session(Breaker(policy))
    for i in range(4):
        batch.feed(event(i * 1_000, "1.00", agent="batch"))
    assert batch.trips == []
    batch.feed(event(4_500, "1.00", agent="bot"))  # judged by the default limits
    assert [(t.rule, t.agent) for t in batch.trips] == [("absolute", "bot")]
    s9 = Session(Breaker(policy), session_id="s9")
    for i in range(3):
        s9.feed(event(i, "0", session_id="s9"))
    assert [t.rule for t in s9.trips] == ["frequency"]


def test_a_new_policy_applies_to_existing_sessions() -> None:
    s = Session()
    s.feed(event(0, "0.80"))
    limits = {"10": False, "60": False, "300": "0.90"}
    s.breaker.policy = Policy.from_dict({"rules": {"absolute_usd": limits}})
    s.feed(event(1_000, "0.15"))
    assert s.trips == []  # the new 300 s window has no history yet: $0.15
    s.feed(event(2_000, "0.80"))
    assert [(t.rule, t.window_s) for t in s.trips] == [("absolute", 300)]


@pytest.mark.parametrize("frozen", [False, True])
def test_state_round_trips_through_its_json_dict(frozen: bool) -> None:
    s = Session()
    for i in range(30):
        s.feed(event(i * 700, "0.02"))
    if frozen:
        s.feed(event(21_000, "2.00"))
        s.feed(event(21_500, "0.01"))
    data = loads(dumps(s.state.to_dict()))
    back = s.breaker.restore("s1", data)
    assert back.to_dict() == s.state.to_dict()
    assert back.state == s.state.state == ("frozen" if frozen else "active")
    assert back.trip == s.state.trip
    restored = Session(s.breaker)
    restored.state = back
    for i in range(5):
        e = event(22_000 + i * 100, "0.30")
        assert restored.feed(e) == s.feed(e)
    assert restored.state.to_dict() == s.state.to_dict()


@pytest.mark.parametrize(
    "damage",
    [
        {"windows": None},
        {"touched_wall_ms": True},
        {"after_trip_events": "many"},
        {"trip": {"state": "melted"}},
    ],
)
def test_malformed_state_is_a_state_error(damage: dict[str, object]) -> None:
    s = Session()
    s.feed(event(0, "0.10"))
    data = {**s.state.to_dict(), **damage}
    with pytest.raises(StateError, match="drop the entry"):
        s.breaker.restore("s1", data)
    with pytest.raises(StateError, match="drop the entry"):
        s.breaker.restore("s1", {"session_id": "s1"})


def test_an_active_session_expires_once_nothing_it_holds_can_count() -> None:
    s = Session()
    s.feed(event(0, "0.10"), wall_ms=5_000_000)
    newest_ms = epoch_ms(START)
    assert s.breaker.ttl_ms(s.state) == 630_000
    assert not s.breaker.is_expired(s.state, event_now_ms=newest_ms + 630_000)
    assert s.breaker.is_expired(s.state, event_now_ms=newest_ms + 630_001)
    assert not s.breaker.is_expired(s.state, wall_now_ms=5_630_000)
    assert s.breaker.is_expired(s.state, wall_now_ms=5_630_001)


def test_a_frozen_session_outlives_idle_active_ones_until_its_own_ttl() -> None:
    s = Session()
    s.feed(event(0, "2.00"))
    newest_ms = epoch_ms(START)
    week_ms = 7 * 86_400_000
    assert not s.breaker.is_expired(s.state, event_now_ms=newest_ms + 3_600_000)
    assert not s.breaker.is_expired(s.state, event_now_ms=newest_ms + week_ms)
    assert s.breaker.is_expired(s.state, event_now_ms=newest_ms + week_ms + 1)
    assert not s.breaker.is_expired(s.state, wall_now_ms=10**15)  # never stamped


def test_an_event_after_expiry_starts_the_session_afresh() -> None:
    s = Session()
    s.feed(event(0, "0.20"))
    s.feed(event(631_000, "0.20"))
    assert s.state.windows.first_ms == epoch_ms(START) + 631_000
    assert s.trips == []


def test_session_state_stays_small() -> None:
    s = Session()
    for i in range(120):  # one call every 5 s for ten minutes
        s.feed(event(i * 5_000, "0.01"))
    active_bytes = s.state.approx_size_bytes()
    assert active_bytes < 6_000
    assert len(dumps(s.state.to_dict())) < 3_000
    s.feed(event(600_000, "5.00"))
    assert s.state.approx_size_bytes() - active_bytes < 3_000


def test_the_view_shows_state_spend_rate_and_trip() -> None:
    s = Session()
    s.feed(event(0, "0.30"))
    s.feed(event(5_000, "0.90"))
    view = s.state.view()
    assert view["state"] == "frozen"
    assert view["trip"]["rule"] == "absolute"
    ten = next(w for w in view["windows"] if w["window_s"] == 10)
    assert ten == {
        "window_s": 10,
        "events": 2,
        "spend_usd": "1.200000000",
        "rate_usd_per_s": "0.120000000",
    }
    assert SessionState.new("x").view()["state"] == "active"
