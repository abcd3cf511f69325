"""Ledger entries: who is debited and credited, internal entries, late events, ids."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.events import CostEvent
from models.ledger import Bookkeeper, entry_id_for, ledger_keys
from models.records import LedgerEntry
from models.validation import validate
from tests.unit.strategies import cost_event_lists, cutoffs_s, event


def test_the_seed_example_debits_marketing_and_credits_engineering() -> None:
    entry = Bookkeeper().book(event(principal="marketing", owner="engineering"))
    assert (entry.debit, entry.credit) == ("marketing", "engineering")
    assert entry.amount_usd == Decimal("0.05")
    assert not entry.internal
    assert (entry.period, entry.adjusts) == ("2026-11", None)
    assert (entry.agent, entry.model, entry.event_id) == ("database", "gpt-4o", "e-1")
    assert ledger_keys(entry) == ("marketing", "engineering")


def test_a_call_inside_one_department_is_internal_and_keyed_once() -> None:
    entry = Bookkeeper().book(event(principal="sales", owner=None, cost_usd="1.5"))
    assert (entry.debit, entry.credit, entry.internal) == ("sales", "sales", True)
    assert entry.amount_usd == Decimal("1.5")
    assert ledger_keys(entry) == ("sales",)


def test_a_late_event_past_the_cutoff_becomes_an_adjustment() -> None:
    keeper = Bookkeeper(cutoff_s=72 * 3600)
    keeper.book(event(event_id="new", ts=datetime(2026, 12, 5, tzinfo=UTC)))
    late_ts = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    entry = keeper.book(event(event_id="late", ts=late_ts))
    assert (entry.period, entry.adjusts) == ("2026-12", "2026-11")
    assert entry.ts == late_ts  # the entry keeps the event's own time


def test_a_late_event_within_the_cutoff_is_booked_in_its_month() -> None:
    keeper = Bookkeeper(cutoff_s=72 * 3600)
    keeper.book(event(event_id="new", ts=datetime(2026, 12, 3, 23, tzinfo=UTC)))
    entry = keeper.book(event(event_id="late", ts=datetime(2026, 11, 30, tzinfo=UTC)))
    assert (entry.period, entry.adjusts) == ("2026-11", None)


def test_an_entry_survives_the_topic_round_trip() -> None:
    entry = Bookkeeper(cutoff_s=0).book(event(cost_usd="0.000000001"))
    again = validate(LedgerEntry, loads(dumps(entry.to_json_dict())))
    assert again == entry


def test_an_entry_whose_internal_flag_contradicts_its_departments_is_invalid() -> None:
    value = Bookkeeper().book(event()).to_json_dict() | {"internal": True}
    with pytest.raises(InvalidRecord, match="internal"):
        validate(LedgerEntry, value)


def test_an_adjustment_must_name_an_earlier_period() -> None:
    value = Bookkeeper().book(event()).to_json_dict() | {"adjusts": "2026-11"}
    with pytest.raises(InvalidRecord, match="adjusts"):
        validate(LedgerEntry, value)


def test_a_negative_cutoff_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="cutoff_s"):
        Bookkeeper(cutoff_s=-3600)


@given(events=cost_event_lists, cutoff_s=cutoffs_s)
def test_every_entry_balances_and_follows_its_event(
    events: list[CostEvent], cutoff_s: int
) -> None:
    keeper = Bookkeeper(cutoff_s=cutoff_s)
    for item in events:
        entry = keeper.book(item)
        assert entry.debit == item.principal
        assert entry.credit == (item.owner or item.principal)
        assert entry.amount_usd == item.cost_usd
        assert entry.internal == (entry.debit == entry.credit)
        assert entry.adjusts in (None, f"{item.ts:%Y-%m}")


@given(events=cost_event_lists, cutoff_s=cutoffs_s)
def test_entry_ids_are_unique_per_event_and_stable_under_replay(
    events: list[CostEvent], cutoff_s: int
) -> None:
    first = [Bookkeeper(cutoff_s).book(item).entry_id for item in events]
    replayed = [Bookkeeper(cutoff_s).book(item).entry_id for item in events]
    assert first == replayed == [entry_id_for(item.event_id) for item in events]
    assert len(set(first)) == len(events)


@given(events=cost_event_lists, split=st.integers(min_value=0), cutoff_s=cutoffs_s)
def test_a_restart_from_saved_state_books_as_an_unbroken_run(
    events: list[CostEvent], split: int, cutoff_s: int
) -> None:
    unbroken = Bookkeeper(cutoff_s)
    expected = [unbroken.book(item) for item in events]

    cut = split % (len(events) + 1)
    before = Bookkeeper(cutoff_s)
    booked = [before.book(item) for item in events[:cut]]
    after = Bookkeeper.from_dict(loads(dumps(before.to_dict())), cutoff_s)
    booked += [after.book(item) for item in events[cut:]]
    assert booked == expected
