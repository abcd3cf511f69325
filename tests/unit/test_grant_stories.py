"""The issue's stories, told against one in-process wallet."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from models.grant_ledger import assert_conserved
from models.grant_outcomes import AuthorizeResult
from models.money import to_usd
from models.records import GrantCommand
from models.wallet import Wallet

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _open(wallet: Wallet, grant_id: str, limit: str, parent: str | None = None) -> None:
    wallet.apply(
        GrantCommand(
            command="open",
            grant_id=grant_id,
            parent_id=parent,
            limit_usd=to_usd(limit),
            ts=T0,
        )
    )


def _visit_links(
    wallet: Wallet, grant_id: str, links: int
) -> tuple[int, AuthorizeResult | None]:
    """Authorize $0.10 per link, then settle with a browser call and a summary."""
    found = 0
    for n in range(1, links + 1):
        now = T0 + timedelta(seconds=n)
        answer = wallet.authorize(grant_id, to_usd("0.10"), f"link-{n}", now)
        if not answer.approved:
            return found, answer
        for call in ("browser", "summary"):
            result = wallet.spend(
                grant_id, f"{call}-{n}", to_usd("0.05"), now, reservation_id=f"link-{n}"
            )
            assert result.flag is None
        found += 1
    return found, None


def test_research_agent_finds_50_links_and_gets_402_on_the_51st() -> None:
    wallet = Wallet()
    _open(wallet, "research", "5.00")

    found, refusal = _visit_links(wallet, "research", 60)

    assert found == 50
    assert refusal is not None
    assert refusal.http_status == 402
    assert refusal.reservation_id == "link-51"
    assert refusal.balance_usd == 0
    assert "exhausted" in refusal.reason
    grant = wallet.get("research")
    assert grant is not None
    assert grant.spent_usd == to_usd("5.00")
    assert grant.reservations == {}
    assert_conserved(wallet.grants(), settled=True)


def test_research_agent_exhaustion_is_published_once() -> None:
    wallet = Wallet()
    _open(wallet, "research", "5.00")
    statuses = []
    for n in range(1, 51):
        wallet.authorize("research", to_usd("0.10"), f"r{n}", T0)
        for call in ("browser", "summary"):
            result = wallet.spend(
                "research", f"{call}-{n}", to_usd("0.05"), T0, reservation_id=f"r{n}"
            )
            statuses += result.outcome.statuses
    late = wallet.spend("research", "late", to_usd("0.05"), T0)

    exhausted = [s for s in statuses if s.status == "exhausted"]
    assert len(exhausted) == 1
    assert exhausted[0].spent_usd == exhausted[0].limit_usd == to_usd("5.00")
    assert late.flag == "exhausted"
    assert late.overspend_usd == to_usd("0.05")
    assert late.outcome.statuses == []
    assert [row.kind for row in late.outcome.activity] == ["overspend"]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_twenty_concurrent_callers_are_approved_no_more_than_the_grant(
    data: st.DataObject,
) -> None:
    """Callers interleave authorize, browser call and summary in any order."""
    wallet = Wallet()
    _open(wallet, "research", "5.00")
    steps = {caller: 0 for caller in range(20)}
    approved = Decimal(0)
    while steps:
        caller = data.draw(st.sampled_from(sorted(steps)))
        step, link = steps[caller] % 3, steps[caller] // 3
        reservation = f"caller-{caller}-link-{link}"
        if step == 0:
            answer = wallet.authorize("research", to_usd("0.10"), reservation, T0)
            if not answer.approved:
                del steps[caller]
                continue
            approved += answer.amount_usd
            assert approved <= to_usd("5.00")
        else:
            event_id = f"{reservation}-call-{step}"
            cost = to_usd("0.05")
            result = wallet.spend(
                "research", event_id, cost, T0, reservation_id=reservation
            )
            assert result.flag is None
        steps[caller] += 1

    grant = wallet.get("research")
    assert grant is not None
    assert approved == grant.spent_usd == to_usd("5.00")
    assert grant.reservations == {}


def test_manager_balance_falls_by_exactly_what_each_hire_costs() -> None:
    for hire, price in (("premium-coder", "2.00"), ("cheap-coder", "0.50")):
        wallet = Wallet()
        _open(wallet, "manager", "10.00")

        _open(wallet, hire, price, parent="manager")

        manager, coder = wallet.get("manager"), wallet.get(hire)
        assert manager is not None and coder is not None
        assert manager.balance_usd == to_usd("10.00") - to_usd(price)
        assert coder.balance_usd == to_usd(price)
        assert coder.parent_id == "manager"
        assert manager.children == [hire]
        assert_conserved(wallet.grants(), settled=True)


def test_manager_short_of_balance_is_refused_with_the_reason() -> None:
    wallet = Wallet()
    _open(wallet, "manager", "1.00")
    _open(wallet, "cheap-coder", "0.50", parent="manager")

    out = wallet.apply(
        GrantCommand(
            command="fund",
            grant_id="cheap-coder",
            parent_id="manager",
            amount_usd=to_usd("0.75"),
            ts=T0,
        )
    )

    [status] = out.statuses
    assert status.status == "refused"
    assert status.grant_id == "manager"
    assert status.balance_usd == to_usd("0.50")
    assert status.reason is not None
    assert "short of 0.750000000 by 0.250000000" in status.reason
    coder = wallet.get("cheap-coder")
    assert coder is not None and coder.balance_usd == to_usd("0.50")
