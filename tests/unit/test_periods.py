"""Periods: calendar months in UTC, and where a late event is booked."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.errors import InvalidPeriod, SpendstreamError
from models.periods import (
    DEFAULT_CUTOFF_S,
    Placement,
    closes_at,
    next_period,
    parse_period,
    period_of,
    period_start,
    place_in_period,
)
from tests.unit.strategies import cutoffs_s, times

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def test_a_month_is_closed_open_in_utc() -> None:
    assert period_of(DEC_1 - ONE_US) == "2026-11"
    assert period_of(DEC_1) == "2026-12"


def test_event_time_is_read_in_utc_whatever_its_offset() -> None:
    paris_half_past_midnight = datetime(
        2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))
    )
    assert period_of(paris_half_past_midnight) == "2026-11"


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        period_of(datetime(2026, 11, 2))


def test_the_year_turns_after_december() -> None:
    assert next_period("2026-12") == "2027-01"
    assert next_period("2026-01") == "2026-02"
    assert period_start("2027-01") == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2026-1", "2026-00", "2026-13", "26-11", "0000-05", ""]
)
def test_a_period_that_is_not_a_month_is_refused_with_the_value(text: str) -> None:
    with pytest.raises(InvalidPeriod, match="YYYY-MM") as caught:
        parse_period(text)
    assert repr(text) in str(caught.value)
    assert isinstance(caught.value, SpendstreamError)


def test_default_cutoff_is_three_days_after_month_end() -> None:
    assert DEFAULT_CUTOFF_S == 72 * 3600
    assert closes_at("2026-11") == datetime(2026, 12, 4, tzinfo=UTC)


def test_a_late_event_within_the_cutoff_stays_in_its_own_period() -> None:
    late = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    watermark = closes_at("2026-11") - ONE_US
    assert place_in_period(late, watermark) == Placement("2026-11", None)


def test_a_late_event_at_the_cutoff_adjusts_its_period_from_the_next() -> None:
    late = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    watermark = closes_at("2026-11")
    assert place_in_period(late, watermark) == Placement("2026-12", "2026-11")


def test_a_very_late_event_goes_to_the_oldest_open_period() -> None:
    september = datetime(2026, 9, 15, tzinfo=UTC)
    watermark = datetime(2026, 12, 20, tzinfo=UTC)
    assert place_in_period(september, watermark) == Placement("2026-12", "2026-09")


def test_a_zero_cutoff_closes_a_month_at_its_end() -> None:
    last_instant = DEC_1 - ONE_US
    assert place_in_period(last_instant, DEC_1, cutoff_s=0) == Placement(
        "2026-12", "2026-11"
    )


def test_lateness_is_judged_by_the_watermark_not_the_wall_clock() -> None:
    # A backfill of last year's events, replayed in order, books them as it happened.
    old = datetime(2020, 3, 10, tzinfo=UTC)
    assert place_in_period(old, watermark=old) == Placement("2020-03", None)


def test_a_negative_cutoff_is_refused() -> None:
    with pytest.raises(ValueError, match="cutoff_s"):
        place_in_period(DEC_1, DEC_1, cutoff_s=-1)


@given(ts=times, watermark=times, cutoff_s=cutoffs_s)
def test_an_event_is_booked_in_its_own_period_or_adjusts_it(
    ts: datetime, watermark: datetime, cutoff_s: int
) -> None:
    placed = place_in_period(ts, watermark, cutoff_s)
    own = period_of(ts)
    parse_period(placed.period)
    assert watermark < closes_at(placed.period, cutoff_s)  # booked where open
    if placed.adjusts is None:
        assert placed.period == own
    else:
        assert placed.adjusts == own < placed.period
        assert watermark >= closes_at(own, cutoff_s)  # own period was closed
        # ... and no period between them was open: it went to the oldest open.
        assert watermark >= closes_at(_previous(placed.period), cutoff_s)


@given(
    ts=times,
    behind_s=st.integers(min_value=0, max_value=400 * 86_400),
    cutoff_s=cutoffs_s,
)
def test_an_event_at_or_ahead_of_the_watermark_is_never_late(
    ts: datetime, behind_s: int, cutoff_s: int
) -> None:
    watermark = ts - timedelta(seconds=behind_s)
    assert place_in_period(ts, watermark, cutoff_s) == Placement(period_of(ts), None)


def _previous(period: str) -> str:
    return period_of(period_start(period) - ONE_US)
