"""A session's state in its binary form: the same state back, smaller than JSON."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.breaker import Breaker, SessionState
from models.codec import dumps
from models.errors import StateError
from models.events import CostEvent
from models.policy import Policy
from models.windows import SpendWindows

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
_ids = count()


def fed(steps: list[tuple[int, int]], breaker: Breaker | None = None) -> SessionState:
    """A session fed events at `(ms after START, cost in cents)`."""
    breaker = breaker or Breaker()
    state = breaker.restore("s1", None)
    for ms, cents in steps:
        event = CostEvent(
            event_id=f"b{next(_ids)}",
            ts=START + timedelta(milliseconds=ms),
            session_id="s1",
            agent="bot",
            principal="hr",
            cost_usd=Decimal(cents).scaleb(-2),
        )
        breaker.on_event(state, event, wall_ms=1_700_000_000_000 + ms)
    return state


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=900_000),
            st.integers(min_value=0, max_value=90),
        ),
        max_size=60,
    )
)
def test_the_binary_form_restores_what_the_dict_form_restores(
    steps: list[tuple[int, int]],
) -> None:
    state = fed(sorted(steps))
    spec = Breaker().policy.window_spec
    back = SessionState.from_bytes("s1", state.to_bytes(), spec)
    assert back.to_dict() == state.to_dict()
    assert back.windows._sums == state.windows._sums


def test_a_frozen_state_keeps_its_trip() -> None:
    state = fed([(i * 700, 2) for i in range(30)] + [(21_000, 200), (21_500, 1)])
    assert state.trip is not None and state.after_trip_events == 1
    data = state.to_bytes()
    back = SessionState.from_bytes("s1", data, Breaker().policy.window_spec)
    assert (back.trip, back.after_trip_events) == (state.trip, 1)
    assert back.touched_wall_ms == state.touched_wall_ms


def test_a_quiet_session_is_smaller_than_its_json() -> None:
    quiet = fed([(0, 3), (4_000, 1)])
    assert len(quiet.to_bytes()) < len(dumps(quiet.to_dict())) * 2 / 3


def test_a_new_spec_keeps_the_rings_it_shares() -> None:
    state = fed([(0, 10), (61_000, 10)])
    wider = Policy.from_dict({"rules": {"absolute_usd": {"300": "5"}}}).window_spec
    back = SpendWindows.from_bytes(state.windows.to_bytes(), wider)
    assert back.velocity().spend_usd(600) == Decimal("0.20")
    assert back.velocity().spend_usd(300) == Decimal("0")  # a ring not stored


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:5],
        lambda b: b"\x02" + b[1:],
        lambda b: b[:-3] if b.endswith(b"}") else b + b"{",
        lambda b: b[:43] + b"\xff" * 4 + b[47:],  # the first ring's bucket count
    ],
)
def test_damaged_bytes_are_a_state_error(damage: object) -> None:
    data = fed([(0, 10), (200, 10), (400, 200)]).to_bytes()
    assert callable(damage)
    with pytest.raises(StateError, match="drop the entry"):
        SessionState.from_bytes("s1", damage(data), Breaker().policy.window_spec)
