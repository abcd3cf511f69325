"""Unfreeze commands against freezes by time of detection, and trip reasons."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

from models.breaker import Breaker, SessionState, describe_trip
from models.codec import dumps, loads
from models.events import CostEvent
from models.records import BreakerTrip
from models.windows import epoch_ms

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
WALL = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
_ids = count()


def event(ms: int, cost: str) -> CostEvent:
    return CostEvent(
        event_id=f"u{next(_ids)}",
        ts=START + timedelta(milliseconds=ms),
        session_id="s1",
        agent="bot",
        principal="hr",
        cost_usd=Decimal(cost),
    )


def frozen_at(breaker: Breaker, wall: datetime) -> SessionState:
    """A session frozen by an event the worker saw at `wall`."""
    session = breaker.restore("s1", None)
    trip = breaker.on_event(session, event(0, "2.00"), wall_ms=epoch_ms(wall)).trip
    assert trip is not None and trip.detected_at == wall
    return session


def test_an_unfreeze_issued_after_the_trip_clears_it() -> None:
    breaker = Breaker()
    session = frozen_at(breaker, WALL)
    frozen = session.trip
    assert frozen is not None
    record = breaker.on_unfreeze(session, "s1", WALL + timedelta(seconds=3), "ops")
    assert record is not None and record.state == "unfrozen"
    assert record.model_extra is not None
    assert record.model_extra["cleared_trip_id"] == frozen.trip_id
    assert session.state == "active"


def test_an_old_unfreeze_read_again_leaves_a_later_freeze_alone() -> None:
    breaker = Breaker()
    session = frozen_at(breaker, WALL)
    for live in (True, False):
        old = breaker.on_unfreeze(
            session, "s1", WALL - timedelta(milliseconds=1), "ops", live=live
        )
        assert old is None
    assert session.state == "frozen"


def test_a_replayed_unfreeze_clears_a_freeze_detected_before_it() -> None:
    breaker = Breaker()
    session = frozen_at(breaker, WALL)
    record = breaker.on_unfreeze(session, "s1", WALL, "ops", live=False)
    assert record is not None  # issued at the very moment of detection: it clears
    assert session.state == "active"


def test_an_unfreeze_of_an_active_session_keeps_its_windows() -> None:
    breaker = Breaker()
    session = breaker.restore("s1", None)
    breaker.on_event(session, event(0, "0.40"))
    live = breaker.on_unfreeze(session, "s1", WALL, "ops")
    assert live is not None and live.state == "unfrozen"
    assert session.windows.velocity().spend_usd(10) == Decimal("0.40")
    assert breaker.on_unfreeze(session, "s1", WALL, "ops", live=False) is None
    assert breaker.on_unfreeze(None, "gone", WALL, "ops", live=False) is None
    unknown = breaker.on_unfreeze(None, "gone", WALL, "ops")
    assert unknown is not None and unknown.session_id == "gone"


def test_the_detection_time_survives_the_state_s_json() -> None:
    breaker = Breaker()
    session = frozen_at(breaker, WALL)
    back = breaker.restore("s1", loads(dumps(session.to_dict())))
    assert back.trip is not None and back.trip.detected_at == WALL
    assert breaker.on_unfreeze(back, "s1", WALL - timedelta(seconds=1), None) is None


def test_reasons_name_the_rule_the_spend_and_the_threshold() -> None:
    breaker = Breaker()
    storm = breaker.restore("s1", None)
    for _ in range(51):
        decision = breaker.on_event(storm, event(5, "0.0001"))
    assert decision.trip is not None
    assert describe_trip(decision.trip) == "frequency: 51 events within 1 s, over 50"

    calm = breaker.restore("s1", None)
    breaker.on_event(calm, event(0, "0.01"))
    for i in range(5):
        decision = breaker.on_event(calm, event(300_000 + i * 1_000, "0.06"))
    assert decision.trip is not None
    assert describe_trip(decision.trip) == (
        "relative: $0.30 within 10 s is above $0.25 (its own rate was $0.001019737/s)"
    )
    unfrozen = breaker.unfreeze(None, "s1", WALL, "ana")
    assert describe_trip(unfrozen) == "unfrozen by ana"
    assert isinstance(unfrozen, BreakerTrip)
