"""Saved state per input partition, matched to the high water a worker resumes at."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.checkpoint import Checkpoint, CheckpointMismatch


def test_nothing_saved_resumes_from_the_empty_state() -> None:
    assert Checkpoint.first().state_at(high_water=-1) == {}


def test_a_completed_flush_resumes_from_its_own_state() -> None:
    saved = Checkpoint.first().next(9, {"n": 10}).next(19, {"n": 20})
    assert saved.state_at(19) == {"n": 20}


def test_a_flush_that_never_completed_resumes_from_the_state_before_it() -> None:
    saved = Checkpoint.first().next(9, {"n": 10}).next(19, {"n": 20})
    assert saved.state_at(9) == {"n": 10}
    assert Checkpoint.first().next(9, {"n": 10}).state_at(-1) == {}


def test_a_save_after_resuming_behind_a_lost_flush_outranks_it() -> None:
    lost = Checkpoint.first().next(9, {"n": 10}).next(29, {"n": 30})
    resumed = lost.at(high_water=9).next(19, {"n": 20})
    assert resumed.version > lost.version
    assert (resumed.prev_offset, resumed.prev_state) == (9, {"n": 10})


def test_state_ahead_of_both_saves_is_refused_with_what_to_do() -> None:
    saved = Checkpoint.first().next(9, {"n": 10}).next(19, {"n": 20})
    with pytest.raises(CheckpointMismatch, match="ahead of the high water 5"):
        saved.state_at(5)


def test_a_save_must_move_forward() -> None:
    with pytest.raises(ValueError, match="does not follow"):
        Checkpoint.first().next(9, {}).next(9, {})


@given(
    flush_ends=st.lists(st.integers(min_value=1, max_value=50), max_size=20),
    crashes=st.lists(st.booleans(), max_size=20),
)
def test_every_resume_finds_the_state_of_its_high_water(
    flush_ends: list[int], crashes: list[bool]
) -> None:
    # A flush saves, then either completes (the high water moves) or the
    # worker crashes and the next one resumes at the old high water.
    high_water, saved = -1, Checkpoint.first()
    for step, crash in zip(flush_ends, crashes, strict=False):
        saved = saved.at(high_water)
        end = high_water + step
        saved = saved.next(end, {"read_to": end})
        if not crash:
            high_water = end
        expected = {"read_to": high_water} if high_water >= 0 else {}
        assert saved.state_at(high_water) == expected
