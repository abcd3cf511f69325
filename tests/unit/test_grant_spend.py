"""Debiting cost events: charged within the limit, flagged beyond it, never lost."""

from datetime import UTC, datetime

import pytest

from models.errors import GrantError
from models.grants import Grant
from models.money import to_usd
from models.spending import debit, debit_unknown

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _grant(limit: str = "1.00") -> Grant:
    return Grant.root("g", to_usd(limit), opened_at=T0)


def test_a_debit_moves_balance_into_spent_and_reports_it() -> None:
    grant = _grant()

    result = debit(grant, "e1", to_usd("0.30"), T0)

    assert (result.charged_usd, result.flag) == (to_usd("0.30"), None)
    assert grant.balance_usd == to_usd("0.70")
    [status] = result.outcome.statuses
    assert (status.status, status.spent_usd) == ("open", to_usd("0.30"))
    [row] = result.outcome.activity
    assert (row.kind, row.amount_usd, row.balance_usd) == (
        "spend",
        to_usd("0.30"),
        to_usd("0.70"),
    )


def test_the_same_event_twice_counts_once() -> None:
    grant = _grant()
    debit(grant, "e1", to_usd("0.30"), T0)

    again = debit(grant, "e1", to_usd("0.30"), T0)

    assert again.flag == "duplicate"
    assert again.charged_usd == again.overspend_usd == 0
    assert grant.spent_usd == to_usd("0.30")


def test_spend_beyond_the_balance_is_charged_up_to_it_and_flagged() -> None:
    grant = _grant()

    result = debit(grant, "e1", to_usd("1.25"), T0)

    assert result.flag == "over_limit"
    assert result.charged_usd == to_usd("1.00")
    assert result.overspend_usd == to_usd("0.25")
    assert grant.balance_usd == 0
    assert grant.overspent_usd == to_usd("0.25")
    assert [s.status for s in result.outcome.statuses] == ["exhausted"]
    kinds = [row.kind for row in result.outcome.activity]
    assert kinds == ["spend", "exhausted", "overspend"]


def test_spend_on_a_closed_grant_is_metered_and_flagged() -> None:
    grant = _grant()
    grant.closed_at = T0

    result = debit(grant, "e1", to_usd("0.10"), T0)

    assert result.flag == "closed"
    assert result.overspend_usd == to_usd("0.10")
    assert grant.spent_usd == 0 and grant.overspent_usd == to_usd("0.10")
    assert [row.kind for row in result.outcome.activity] == ["overspend"]


def test_spend_on_an_unknown_grant_is_metered_and_flagged() -> None:
    result = debit_unknown("ghost", "e1", to_usd("0.10"), T0)

    assert result.flag == "unknown"
    assert result.overspend_usd == to_usd("0.10")
    [row] = result.outcome.activity
    assert (row.grant_id, row.kind, row.amount_usd) == (
        "ghost",
        "overspend",
        to_usd("0.10"),
    )


def test_a_negative_cost_is_an_error() -> None:
    with pytest.raises(GrantError, match="must not be negative"):
        debit(_grant(), "e1", to_usd("-0.01"), T0)
