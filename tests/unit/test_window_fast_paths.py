"""The breaker's fast paths change no result: the bound, the nano-dollar amounts."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from models.money import to_usd
from models.policy import Policy
from models.rules import RuleSet
from models.windows import SpendWindows, WindowSpec, usd_to_nano

# (gap since the previous event in ms, how far back it lands in ms, cost in
# hundredths of a cent): bursts, pauses, late and too-late arrivals.
steps = st.lists(
    st.tuples(
        st.sampled_from((0, 1, 40, 300, 2_000, 9_000, 70_000)),
        st.sampled_from((0, 0, 0, 500, 20_000, 45_000)),
        st.integers(min_value=0, max_value=5_000),
    ),
    max_size=120,
)

POLICY = Policy.from_dict(
    {"rules": {"absolute_usd": {"300": "0.75"}, "frequency": {"max_events": 7}}}
)


def recounted(windows: SpendWindows) -> list[int]:
    """Every ring's events and nano-USD, summed from its buckets afresh."""
    found = []
    for ring in windows._rings:
        found += [sum(ring[1::3]), sum(ring[2::3])]
    return found


def feed(windows: SpendWindows, rules: RuleSet, step: tuple[int, int, int]) -> None:
    """Add one event; wherever a rule trips, the bound must have said it might."""
    gap_ms, back_ms, cost = step
    newest = windows.newest_ms or 0
    ts_ms = newest + gap_ms - back_ms
    windows.add(ts_ms, Decimal(cost).scaleb(-4))
    for end_ms in (ts_ms, windows.newest_ms):
        if rules.first_hit(windows.velocity(end_ms)) is not None:
            assert rules.may_trip(windows), (ts_ms, end_ms)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_the_bound_never_hides_a_trip_of_the_default_rules(
    events: list[tuple[int, int, int]],
) -> None:
    windows, rules = SpendWindows(), RuleSet.defaults()
    for step in events:
        feed(windows, rules, step)
        assert list(windows._sums) == recounted(windows)


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(min_value=0, max_value=119))
def test_the_bound_holds_through_clear_and_a_new_spec(
    events: list[tuple[int, int, int]], switch_at: int
) -> None:
    windows = SpendWindows(WindowSpec(windows_s=(1, 10, 60, 600), lateness_s=5))
    for n, step in enumerate(events):
        if n == switch_at:
            windows.adopt(POLICY.window_spec)
        if n == switch_at // 2:
            windows.clear()
        feed(windows, POLICY.defaults if n >= switch_at else RuleSet.defaults(), step)
        assert list(windows._sums) == recounted(windows)


def test_a_calm_session_is_not_read_and_a_burst_or_a_busy_one_is() -> None:
    windows, rules = SpendWindows(), RuleSet.defaults()
    for i in range(100):  # $0.001 a second for 100 s
        windows.add(i * 1_000, Decimal("0.001"))
    assert not rules.may_trip(windows)
    windows.add(100_000, Decimal("0.30"))  # above the relative rule's floor
    assert rules.may_trip(windows)

    # The bound is the ring's: 1 s and 10 s windows share the 100 ms ring,
    # which keeps 40 s (10 s and the lateness), so 51 events in 40 s count.
    busy = SpendWindows()
    for i in range(51):
        busy.add(i * 780, Decimal("0"))
    assert busy.velocity().events(1) == 2
    assert rules.may_trip(busy)


@given(
    st.decimals(
        min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False
    )
)
def test_nano_dollars_are_the_rounded_amount_whatever_its_places(
    amount: Decimal,
) -> None:
    assert usd_to_nano(amount) == int(to_usd(amount).scaleb(9))
