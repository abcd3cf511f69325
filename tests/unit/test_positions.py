"""Positions per department and period: owed, owes, net; internal kept apart."""

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.codec import dumps, loads
from models.events import CostEvent
from models.ledger import Bookkeeper, ledger_keys
from models.money import ZERO_USD
from models.positions import DepartmentPositions, Position, positions_of
from models.records import LedgerEntry
from tests.unit.strategies import cost_event_lists, cutoffs_s, event


def _book(events: list[CostEvent], cutoff_s: int = 0) -> list[LedgerEntry]:
    keeper = Bookkeeper(cutoff_s)
    return [keeper.book(item) for item in events]


def test_the_seed_example_makes_marketing_owe_and_engineering_be_owed() -> None:
    positions = positions_of(_book([event(principal="marketing", owner="engineering")]))
    marketing = positions["marketing"].position("2026-11")
    engineering = positions["engineering"].position("2026-11")
    assert marketing == Position(charged_by_others_usd=Decimal("0.05"))
    assert engineering == Position(charged_to_others_usd=Decimal("0.05"))
    assert (marketing.net_usd, engineering.net_usd) == (
        Decimal("-0.05"),
        Decimal("0.05"),
    )


def test_internal_spend_is_kept_but_charges_nobody() -> None:
    positions = positions_of(
        _book([event(principal="legal", owner="legal", cost_usd="2")])
    )
    legal = positions["legal"].position("2026-11")
    assert legal.internal_usd == Decimal("2")
    assert legal.charged_to_others_usd == legal.charged_by_others_usd == ZERO_USD
    assert legal.net_usd == ZERO_USD


def test_the_chargeback_answer_names_department_period_and_exact_amounts() -> None:
    positions = positions_of(_book([event(cost_usd="0.000000001")]))
    assert positions["engineering"].answer("2026-11") == {
        "department": "engineering",
        "period": "2026-11",
        "charged_to_others_usd": "0.000000001",
        "charged_by_others_usd": "0.000000000",
        "net_usd": "0.000000001",
        "internal_usd": "0.000000000",
    }
    assert positions["engineering"].answer("2026-10")["net_usd"] == "0.000000000"


def test_an_entry_of_other_departments_is_refused() -> None:
    entry = _book([event(principal="marketing", owner="engineering")])[0]
    with pytest.raises(ValueError, match="'finance'"):
        DepartmentPositions("finance").apply(entry)


def test_an_entry_replayed_at_an_applied_offset_counts_once() -> None:
    first, second = _book([event(event_id="a"), event(event_id="b", cost_usd="1")])
    book = DepartmentPositions("marketing")
    assert book.apply(first, offset=7) and book.apply(second, offset=8)
    restored = DepartmentPositions.from_dict(loads(dumps(book.to_dict())))
    assert not restored.apply(first, offset=7)
    assert not restored.apply(second, offset=8)
    assert restored.position("2026-11").charged_by_others_usd == Decimal("1.05")


@given(events=cost_event_lists, cutoff_s=cutoffs_s)
def test_positions_sum_to_zero_and_match_the_entries_in_every_period(
    events: list[CostEvent], cutoff_s: int
) -> None:
    entries = _book(events, cutoff_s)
    chargeable: dict[str, Decimal] = defaultdict(Decimal)
    internal: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        (internal if entry.internal else chargeable)[entry.period] += entry.amount_usd

    books = positions_of(entries).values()
    for period in {entry.period for entry in entries}:
        held = [book.position(period) for book in books]
        assert sum(p.net_usd for p in held) == 0
        assert sum(p.charged_to_others_usd for p in held) == chargeable[period]
        assert sum(p.charged_by_others_usd for p in held) == chargeable[period]
        assert sum(p.internal_usd for p in held) == internal[period]


@given(events=cost_event_lists, cutoff_s=cutoffs_s)
def test_per_department_tables_fed_by_ledger_keys_agree_with_the_batch(
    events: list[CostEvent], cutoff_s: int
) -> None:
    # As the worker will: each keyed copy of an entry lands in its department's
    # table value, stored as JSON between records.
    table: dict[str, dict[str, object]] = {}
    for offset, entry in enumerate(_book(events, cutoff_s)):
        for department in ledger_keys(entry):
            stored = table.get(department)
            book = (
                DepartmentPositions.from_dict(loads(dumps(stored)))
                if stored
                else DepartmentPositions(department)
            )
            book.apply(entry, offset=offset)
            table[department] = book.to_dict()
    expected = positions_of(_book(events, cutoff_s))
    assert {name: value["periods"] for name, value in table.items()} == {
        name: book.to_dict()["periods"] for name, book in expected.items()
    }


def _sourced(events: list[CostEvent], source: str = "events:0") -> list[LedgerEntry]:
    keeper = Bookkeeper(0, source=source)
    return [keeper.book(item) for item in events]


def _feed(book: DepartmentPositions, entries: list[LedgerEntry], offset: int) -> int:
    """Apply the entries that concern `book` at the next offsets; the next offset."""
    for entry in entries:
        if book.department in ledger_keys(entry):
            book.apply(entry, offset=offset)
            offset += 1
    return offset


def test_an_entry_produced_again_after_a_crash_counts_once() -> None:
    entries = _sourced([event(event_id=f"e-{i}", cost_usd="1") for i in range(4)])
    book = DepartmentPositions("marketing")
    after_crash = _feed(book, entries[:3], offset=0)
    # The next worker restarts from the state saved after the first entry and
    # books entries 2 to 4 again: they come back at new offsets.
    _feed(book, entries[1:], offset=after_crash)
    assert book.position("2026-11").charged_by_others_usd == Decimal("4")
    assert book.sources == {"events:0": 4}


def test_sources_are_followed_each_on_their_own() -> None:
    one = _sourced([event(event_id="a", cost_usd="1")], source="events:0")
    two = _sourced(
        [event(event_id="b", cost_usd="2"), event(event_id="c", cost_usd="4")],
        source="events:1",
    )
    book = DepartmentPositions("engineering")
    _feed(book, [two[0], one[0], two[1], one[0]], offset=10)
    restored = DepartmentPositions.from_dict(loads(dumps(book.to_dict())))
    assert restored.sources == {"events:0": 1, "events:1": 2}
    assert restored.position("2026-11").charged_to_others_usd == Decimal("7")


@given(
    events=cost_event_lists,
    cutoff_s=cutoffs_s,
    crash=st.integers(min_value=0),
    restart=st.integers(min_value=0),
)
def test_positions_fed_through_any_crash_and_replay_equal_one_clean_pass(
    events: list[CostEvent], cutoff_s: int, crash: int, restart: int
) -> None:
    # A worker produces entries up to `crash`; the next one restores the
    # bookkeeper saved at `restart` (at or before the crash) and books the rest.
    crash %= len(events) + 1
    restart %= crash + 1
    first = Bookkeeper(cutoff_s, source="events:0")
    produced = [first.book(item) for item in events[:crash]]
    saved = Bookkeeper(cutoff_s, source="events:0")
    for item in events[:restart]:
        saved.book(item)
    again = Bookkeeper.from_dict(saved.to_dict(), cutoff_s, source="events:0")
    produced += [again.book(item) for item in events[restart:]]

    clean = positions_of(_book(events, cutoff_s))
    for department, expected in clean.items():
        book = DepartmentPositions(department)
        _feed(book, produced, offset=0)
        assert book.to_dict()["periods"] == expected.to_dict()["periods"]


def test_entries_applied_without_offsets_count_in_any_order() -> None:
    entries = _sourced([event(event_id=f"e-{i}", cost_usd="1") for i in range(3)])
    positions = positions_of(reversed(entries))
    assert positions["marketing"].position("2026-11").charged_by_others_usd == 3
