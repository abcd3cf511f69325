"""Authorize, settle by cost events, release by timeout: holds leave no state."""

from datetime import UTC, datetime, timedelta

import pytest

from models.errors import GrantError
from models.grants import Grant
from models.money import to_usd
from models.reservations import authorize, release, release_expired
from models.spending import debit

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _grant(limit: str = "1.00") -> Grant:
    return Grant.root("g", to_usd(limit), opened_at=T0)


def test_authorize_holds_the_amount_out_of_the_balance() -> None:
    grant = _grant()

    answer = authorize(grant, to_usd("0.30"), "r1", T0, hold_s=30)

    assert answer.http_status == 200
    assert answer.expires_at == T0 + timedelta(seconds=30)
    assert grant.balance_usd == answer.balance_usd == to_usd("0.70")
    assert grant.reserved_usd == answer.reserved_usd == to_usd("0.30")
    assert [row.kind for row in answer.outcome.activity] == ["reserve"]


def test_402_carries_the_balance_and_the_reason() -> None:
    grant = _grant("0.25")
    authorize(grant, to_usd("0.20"), "r1", T0)

    answer = authorize(grant, to_usd("0.10"), "r2", T0)

    assert answer.http_status == 402
    assert answer.balance_usd == to_usd("0.05")
    assert answer.reason is not None
    assert "short of 0.100000000 by 0.050000000" in answer.reason
    assert "0.200000000 is held by calls in flight" in answer.reason
    assert "r2" not in grant.reservations


def test_release_by_timeout_leaves_no_state() -> None:
    grant = _grant()
    authorize(grant, to_usd("0.40"), "r1", T0, hold_s=30)

    early = release_expired(grant, T0 + timedelta(seconds=29))
    assert early.activity == [] and "r1" in grant.reservations

    out = release_expired(grant, T0 + timedelta(seconds=30))

    assert grant.reservations == {}
    assert grant.to_dict()["reservations"] == {}
    assert grant.balance_usd == to_usd("1.00")
    assert [(row.kind, row.amount_usd) for row in out.activity] == [
        ("release", to_usd("0.40"))
    ]


def test_cost_events_draw_the_hold_down_and_the_last_one_settles_it() -> None:
    grant = _grant()
    authorize(grant, to_usd("0.10"), "link-1", T0)

    debit(grant, "browser", to_usd("0.05"), T0, reservation_id="link-1")
    assert grant.reserved_usd == to_usd("0.05")
    assert grant.balance_usd == to_usd("0.90")

    debit(grant, "summary", to_usd("0.05"), T0, reservation_id="link-1")
    assert grant.reservations == {}
    assert grant.spent_usd == to_usd("0.10")
    assert grant.balance_usd == to_usd("0.90")


def test_a_final_event_that_costs_less_releases_the_rest() -> None:
    grant = _grant()
    authorize(grant, to_usd("0.50"), "r1", T0)

    result = debit(grant, "e1", to_usd("0.20"), T0, reservation_id="r1", final=True)

    assert result.charged_usd == to_usd("0.20")
    assert grant.reservations == {}
    assert grant.balance_usd == to_usd("0.80")


def test_an_event_that_costs_more_takes_the_excess_from_the_balance() -> None:
    grant = _grant()
    authorize(grant, to_usd("0.10"), "r1", T0)

    result = debit(grant, "e1", to_usd("0.35"), T0, reservation_id="r1")

    assert result.flag is None
    assert grant.reservations == {}
    assert grant.spent_usd == to_usd("0.35")
    assert grant.balance_usd == to_usd("0.65")


def test_a_retried_authorize_holds_once() -> None:
    grant = _grant()
    first = authorize(grant, to_usd("0.30"), "r1", T0)

    again = authorize(grant, to_usd("0.30"), "r1", T0 + timedelta(seconds=5))
    other = authorize(grant, to_usd("0.40"), "r1", T0)

    assert again.approved and again.expires_at == first.expires_at
    assert grant.reserved_usd == to_usd("0.30")
    assert not other.approved
    assert other.reason is not None and "use a new reservation_id" in other.reason


def test_explicit_release_returns_the_hold_and_is_idempotent() -> None:
    grant = _grant()
    authorize(grant, to_usd("0.30"), "r1", T0)

    release(grant, "r1", T0)
    again = release(grant, "r1", T0)

    assert grant.reservations == {}
    assert grant.balance_usd == to_usd("1.00")
    assert again.activity == []


def test_expired_and_closed_grants_refuse() -> None:
    grant = _grant()
    grant.expires_at = T0 + timedelta(minutes=5)

    late = authorize(grant, to_usd("0.10"), "r1", T0 + timedelta(minutes=5))
    assert not late.approved and "expired" in (late.reason or "")

    grant.closed_at = T0
    closed = authorize(grant, to_usd("0.10"), "r2", T0)
    assert not closed.approved and "closed" in (closed.reason or "")


@pytest.mark.parametrize("amount", ["0", "-0.10"])
def test_authorize_needs_a_positive_amount(amount: str) -> None:
    with pytest.raises(GrantError, match="amount_usd must be positive"):
        authorize(_grant(), to_usd(amount), "r1", T0)


def test_a_hold_needs_a_positive_duration() -> None:
    with pytest.raises(GrantError, match="hold_s must be positive"):
        authorize(_grant(), to_usd("0.10"), "r1", T0, hold_s=0)
