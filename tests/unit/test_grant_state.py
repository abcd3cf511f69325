"""A grant's state: its numbers, its status, and its JSON round trip."""

from datetime import UTC, datetime, timedelta

from models.codec import dumps, loads
from models.grants import RECENT_EVENT_IDS, Grant, Reservation
from models.money import to_usd

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _busy_grant() -> Grant:
    grant = Grant.root(
        "team", to_usd("10"), opened_at=T0, principal="research", expires_at=T0
    )
    grant.balance_usd = to_usd("6.25")
    grant.spent_usd = to_usd("2.5")
    grant.sent_usd = to_usd("1.000000001")
    grant.received_usd = to_usd("0.000000001")
    grant.reservations["r1"] = Reservation(to_usd("0.25"), T0 + timedelta(seconds=30))
    grant.children.append("coder")
    grant.seq_from["coder"] = 3
    grant.next_seq = 7
    grant.remember_event("e1")
    return grant


def test_state_survives_a_json_round_trip_exactly() -> None:
    grant = _busy_grant()

    restored = Grant.from_dict(loads(dumps(grant.to_dict())))

    assert restored == grant
    assert restored.sent_usd == to_usd("1.000000001")
    assert restored.reservations["r1"].expires_at == T0 + timedelta(seconds=30)


def test_limit_is_spent_plus_reserved_plus_balance() -> None:
    grant = _busy_grant()

    assert grant.reserved_usd == to_usd("0.25")
    assert grant.limit_usd == to_usd("9.00")
    view = grant.view()
    assert view["limit_usd"] == "9.000000000"
    assert view["children"] == ["coder"]
    assert view["status"] == "open"


def test_status_follows_the_numbers() -> None:
    grant = Grant.root("g", to_usd("1"), opened_at=T0)
    assert grant.status == "open"

    grant.balance_usd, grant.spent_usd = to_usd("0"), to_usd("1")
    assert grant.status == "exhausted"

    grant.reservations["r"] = Reservation(to_usd("0.1"), T0)
    assert grant.status == "open"

    grant.closed_at = T0
    assert grant.status == "closed"


def test_event_ids_are_remembered_in_bounded_memory() -> None:
    grant = Grant.root("g", to_usd("1"), opened_at=T0)

    assert grant.remember_event("first") is False
    assert grant.remember_event("first") is True
    for n in range(RECENT_EVENT_IDS):
        grant.remember_event(f"e{n}")

    assert len(grant.recent_event_ids) == RECENT_EVENT_IDS
    assert grant.remember_event("first") is False


def test_next_deadline_is_the_earliest_hold_or_expiry() -> None:
    grant = Grant.root("g", to_usd("1"), opened_at=T0)
    assert grant.next_deadline() is None

    grant.expires_at = T0 + timedelta(hours=1)
    grant.reservations["r"] = Reservation(to_usd("0.1"), T0 + timedelta(seconds=60))

    assert grant.next_deadline() == T0 + timedelta(seconds=60)
    grant.reservations.clear()
    assert grant.next_deadline() == T0 + timedelta(hours=1)


def test_a_refused_status_names_the_reason_and_keeps_the_numbers() -> None:
    grant = Grant.root("g", to_usd("1"), opened_at=T0)

    record = grant.status_record(T0, refused=True, reason="why")

    assert record.status == "refused"
    assert record.reason == "why"
    assert record.balance_usd == to_usd("1")
    assert record.to_json_dict()["limit_usd"] == "1.000000000"
