"""Ledger entries: who is debited and credited, internal entries, late events, ids."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.events import CostEvent
from models.ledger import LEDGER_NAMESPACE, Bookkeeper, entry_id_for, ledger_keys
from models.periods import place_in_period
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


def test_a_source_numbers_its_entries_and_a_restart_goes_on_counting() -> None:
    keeper = Bookkeeper(source="spend.events:2")
    first = [keeper.book(event(event_id=f"e-{i}")) for i in range(3)]
    assert [(e.source, e.source_seq) for e in first] == [
        ("spend.events:2", 1),
        ("spend.events:2", 2),
        ("spend.events:2", 3),
    ]
    restored = Bookkeeper.from_dict(keeper.to_dict(), source="spend.events:2")
    assert restored.book(event(event_id="e-3")).source_seq == 4


def test_an_entry_without_a_source_carries_no_number() -> None:
    entry = Bookkeeper().book(event())
    assert (entry.source, entry.source_seq) == (None, None)
    assert "source" not in entry.to_json_dict()


@given(events=cost_event_lists, cutoff_s=cutoffs_s)
def test_booking_places_every_event_as_place_in_period_does(
    events: list[CostEvent], cutoff_s: int
) -> None:
    # The bookkeeper caches months; the placement must not notice.
    keeper = Bookkeeper(cutoff_s)
    watermark: datetime | None = None
    for item in events:
        watermark = item.ts if watermark is None else max(watermark, item.ts)
        entry = keeper.book(item)
        expected = place_in_period(item.ts, watermark, cutoff_s)
        assert (entry.period, entry.adjusts) == expected


@given(event_id=st.text(min_size=1, max_size=80))
def test_entry_ids_are_uuid5_of_the_event_id_in_the_ledger_namespace(
    event_id: str,
) -> None:
    assert entry_id_for(event_id) == str(uuid.uuid5(LEDGER_NAMESPACE, event_id))


def test_the_instant_the_cutoff_ends_closes_the_period() -> None:
    keeper = Bookkeeper(cutoff_s=3600)
    keeper.book(event(event_id="oct", ts=datetime(2026, 10, 31, 23, tzinfo=UTC)))
    keeper.book(event(event_id="edge", ts=datetime(2026, 11, 1, 1, tzinfo=UTC)))
    late = keeper.book(
        event(event_id="late", ts=datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    )
    assert (late.period, late.adjusts) == ("2026-11", "2026-10")
