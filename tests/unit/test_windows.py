"""Sliding event-time windows: exact sums, the edges, lateness and bounded memory."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.codec import dumps, loads
from models.errors import StateError
from models.windows import (
    Arrival,
    SpendWindows,
    WindowSpec,
    bucket_ms_for,
    epoch_ms,
)

T0 = epoch_ms(datetime(2026, 11, 1, tzinfo=UTC))  # a whole minute: on every bucket edge


def usd(text: str) -> Decimal:
    return Decimal(text)


def test_epoch_ms_is_exact_for_microseconds() -> None:
    ts = datetime(2026, 11, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    assert epoch_ms(ts) == T0 + 999


def test_sums_are_exact_decimals() -> None:
    w = SpendWindows()
    for ms, cost in ((0, "0.1"), (1, "0.2"), (2, "0.000000001")):
        w.add(T0 + ms, usd(cost))
    v = w.velocity()
    assert v.spend_usd(10) == Decimal("0.300000001")
    assert v.events(10) == 3
    assert v[10].rate_usd_per_s == Decimal("0.030000000")


def test_window_start_is_closed_and_end_is_open() -> None:
    w = SpendWindows()
    w.add(T0, usd("0.50"))
    assert w.velocity(T0 + 9_999).spend_usd(10) == usd("0.50")
    assert w.velocity(T0 + 10_000).spend_usd(10) == 0
    assert w.velocity(T0 + 999).events(1) == 1
    assert w.velocity(T0 + 1_000).events(1) == 0
    assert w.velocity(T0 + 59_999).spend_usd(60) == usd("0.50")
    assert w.velocity(T0 + 60_000).spend_usd(60) == 0


def test_an_event_inside_a_bucket_leaves_at_its_bucket_start_plus_the_window() -> None:
    w = SpendWindows()
    w.add(T0 + 50, usd("0.50"))  # the 10 s window counts in 100 ms buckets
    assert w.velocity(T0 + 9_999).spend_usd(10) == usd("0.50")
    assert w.velocity(T0 + 10_000).spend_usd(10) == 0  # reached back only 9.95 s


def test_each_window_counts_only_its_own_span() -> None:
    w = SpendWindows()
    for seconds_ago, cost in ((500, "4"), (30, "2"), (5, "1"), (0, "0.5")):
        w.add(T0 + 600_000 - seconds_ago * 1000, usd(cost))
    v = w.velocity()
    assert [v.spend_usd(s) for s in (1, 10, 60, 600)] == [
        usd("0.5"),
        usd("1.5"),
        usd("3.5"),
        usd("7.5"),
    ]
    assert v.age_ms == 500_000


def test_reading_an_untracked_window_names_the_tracked_ones() -> None:
    with pytest.raises(
        KeyError, match=r"window_s 5 is not tracked.*\[1, 10, 60, 600\]"
    ):
        SpendWindows().velocity()[5]


def test_a_retry_storm_across_a_second_boundary_counts_in_one_second() -> None:
    w = SpendWindows()
    for i in range(100):  # 100 events within 1 ms, half before a second edge
        w.add(T0 + 999 + i // 50, usd("0.0001"))
    assert w.velocity().events(1) == 100


def test_late_event_within_lateness_counts_in_its_windows() -> None:
    w = SpendWindows()
    w.add(T0 + 100_000, usd("1"))
    assert w.add(T0 + 80_000, usd("2")) is Arrival.LATE
    assert w.velocity(T0 + 80_000).spend_usd(10) == usd("2")
    assert w.velocity().spend_usd(60) == usd("3")


def test_lateness_edge_exactly_thirty_seconds_behind_still_counts() -> None:
    w = SpendWindows()
    w.add(T0 + 100_000, usd("1"))
    assert w.add(T0 + 70_000, usd("2")) is Arrival.LATE
    assert w.add(T0 + 69_999, usd("4")) is Arrival.TOO_LATE
    assert w.velocity().spend_usd(60) == usd("3")
    assert w.velocity(T0 + 70_000).events(10) == 1


@pytest.mark.parametrize("window_s", [1, 10, 60, 600])
def test_the_latest_allowed_event_still_sees_its_whole_window(window_s: int) -> None:
    w = SpendWindows()
    w.add(T0, usd("0.50"))
    w.add(T0 + 30_000 + window_s * 1000 - 1, usd("0"))
    assert w.add(T0 + window_s * 1000 - 1, usd("0.60")) is Arrival.LATE
    assert w.velocity(T0 + window_s * 1000 - 1).spend_usd(window_s) == usd("1.10")


def test_lateness_is_measured_against_the_partition_too() -> None:
    w = SpendWindows()
    assert w.add(T0, usd("1"), high_ms=T0 + 30_001) is Arrival.TOO_LATE
    assert w.add(T0 + 1, usd("1"), high_ms=T0 + 30_001) is Arrival.ON_TIME
    assert w.velocity().spend_usd(10) == usd("1")


def test_lateness_is_configurable() -> None:
    w = SpendWindows(WindowSpec(lateness_s=0))
    w.add(T0 + 1_000, usd("1"))
    assert w.add(T0 + 999, usd("1")) is Arrival.TOO_LATE
    assert w.add(T0 + 1_000, usd("1")) is Arrival.ON_TIME


def test_memory_stays_bounded_for_a_busy_session() -> None:
    spec = WindowSpec()
    w = SpendWindows(spec)
    bound = sum(spec.ring_spans.values())
    sizes = []
    for i in range(24_000):  # one event every 50 ms for 20 minutes
        w.add(T0 + i * 50, usd("0.001"))
        if i % 6_000 == 5_999:
            sizes.append(w.approx_size_bytes())
    assert bound == 400 + 150 + 105
    assert w.bucket_count() <= bound
    assert sizes[-1] < 24 * bound + 2_000
    assert sizes[-1] == sizes[-2]  # steady once the longest window is full
    assert w.velocity().spend_usd(600) == usd("12.000")


def test_state_round_trips_through_json() -> None:
    w = SpendWindows()
    for i, ms in enumerate((0, 450, 9_000, 59_000, 61_000, 500_000, 480_000)):
        w.add(T0 + ms, usd("0.01") * (i + 1))
    data = loads(dumps(w.to_dict()))
    back = SpendWindows.from_dict(data, WindowSpec())
    assert back.velocity() == w.velocity()
    assert back.velocity(T0 + 480_000) == w.velocity(T0 + 480_000)
    assert back.to_dict() == w.to_dict()
    w.add(T0 + 501_000, usd("1"))
    back.add(T0 + 501_000, usd("1"))
    assert back.velocity() == w.velocity()


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"newest_ms": "x", "first_ms": None, "rings": {}},
        {"newest_ms": 1, "first_ms": 1, "rings": {"100": [[1, 2], [1], [5]]}},
        {"newest_ms": 1, "first_ms": 1, "rings": {"100": "nope"}},
        {"newest_ms": 1, "first_ms": 1, "rings": {"100": [[5, 0], [1, 1], [1, 1]]}},
    ],
)
def test_malformed_state_is_refused_with_a_state_error(
    broken: dict[str, object],
) -> None:
    with pytest.raises(StateError, match="drop the entry"):
        SpendWindows.from_dict(broken, WindowSpec())


def test_adopting_a_new_spec_keeps_the_buckets_it_shares() -> None:
    w = SpendWindows()
    w.add(T0, usd("2"))
    w.adopt(WindowSpec(windows_s=(10, 300)))
    v = w.velocity()
    assert v.spend_usd(10) == usd("2")
    assert v.spend_usd(300) == 0  # a new bucket width starts empty


def test_clear_forgets_spend_but_keeps_the_newest_time_for_lateness() -> None:
    w = SpendWindows()
    w.add(T0 + 100_000, usd("2"))
    w.clear()
    assert w.velocity().spend_usd(600) == 0
    assert w.add(T0 + 60_000, usd("1")) is Arrival.TOO_LATE


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="windows_s must be whole seconds"):
        WindowSpec(windows_s=(0, 10))
    with pytest.raises(ValueError, match="lateness_s must be zero or more"):
        WindowSpec(lateness_s=-1)


def reference_totals(
    events: list[tuple[int, int]], end_ms: int, window_s: int
) -> tuple[int, int]:
    """The documented convention, by brute force over (ts_ms, nano) events."""
    r = bucket_ms_for(window_s)
    n = window_s * 1000 // r
    inside = [nano for ts, nano in events if end_ms // r - n < ts // r <= end_ms // r]
    return len(inside), sum(inside)


@given(
    st.lists(
        st.tuples(st.integers(0, 700_000), st.integers(0, 5 * 10**9)),
        min_size=1,
        max_size=60,
    )
)
def test_windows_match_a_brute_force_count_of_the_convention(
    raw: list[tuple[int, int]],
) -> None:
    w = SpendWindows()
    counted, newest = [], None
    for ts, nano in raw:
        arrival = w.add(T0 + ts, Decimal(nano).scaleb(-9))
        on_time = newest is None or ts >= newest - 30_000
        assert (arrival is not Arrival.TOO_LATE) == on_time
        if on_time:
            counted.append((T0 + ts, nano))
            newest = ts if newest is None else max(newest, ts)
    assert newest is not None
    for end_ms in {T0 + newest, T0 + max(0, newest - 30_000)}:
        v = w.velocity(end_ms)
        for window_s in (1, 10, 60, 600):
            expected = reference_totals(counted, end_ms, window_s)
            assert (v[window_s].events, v[window_s].spend_nano) == expected
