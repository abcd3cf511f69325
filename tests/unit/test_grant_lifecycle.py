"""Grants over their life in one process: open, top up, close, expire, restart."""

from datetime import UTC, datetime, timedelta

from models.codec import dumps, loads
from models.events import decode_cost_event
from models.grant_ledger import assert_conserved, ledger_totals
from models.grants import Grant
from models.money import to_usd
from models.records import GrantCommand
from models.wallet import MemoryStore, Wallet

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _cmd(command: str, grant_id: str, **fields: object) -> GrantCommand:
    return GrantCommand.model_validate(
        {"command": command, "grant_id": grant_id, "ts": T0, **fields}
    )


def _manager_and_coder() -> Wallet:
    wallet = Wallet()
    wallet.apply(_cmd("open", "manager", limit_usd="10.00"))
    wallet.apply(_cmd("open", "coder", parent_id="manager", limit_usd="2.00"))
    return wallet


def _balance(wallet: Wallet, grant_id: str) -> object:
    grant = wallet.get(grant_id)
    assert grant is not None
    return grant.balance_usd


def test_close_returns_the_unspent_balance_to_the_parent() -> None:
    wallet = _manager_and_coder()
    wallet.spend("coder", "e1", to_usd("0.70"), T0)

    out = wallet.apply(_cmd("close", "coder"))

    assert _balance(wallet, "manager") == to_usd("9.30")
    assert _balance(wallet, "coder") == 0
    assert [(s.grant_id, s.status) for s in out.statuses] == [
        ("coder", "closed"),
        ("manager", "open"),
    ]
    kinds = [(row.grant_id, row.kind, row.amount_usd) for row in out.activity]
    assert ("coder", "return_out", to_usd("1.30")) in kinds
    assert ("manager", "return_in", to_usd("1.30")) in kinds
    assert_conserved(wallet.grants(), settled=True)


def test_close_releases_held_reservations_first() -> None:
    wallet = _manager_and_coder()
    wallet.authorize("coder", to_usd("0.50"), "r1", T0)

    wallet.apply(_cmd("close", "coder"))

    coder = wallet.get("coder")
    assert coder is not None and coder.reservations == {}
    assert _balance(wallet, "manager") == to_usd("10.00")
    late = wallet.spend("coder", "e1", to_usd("0.05"), T0, reservation_id="r1")
    assert late.flag == "closed" and late.overspend_usd == to_usd("0.05")


def test_closing_a_root_returns_its_money_to_the_minting_side() -> None:
    wallet = _manager_and_coder()
    wallet.spend("manager", "e1", to_usd("1.00"), T0)

    wallet.apply(_cmd("close", "manager"))
    wallet.apply(_cmd("close", "coder"))

    [tree] = ledger_totals(wallet.grants()).values()
    assert tree.minted_usd == to_usd("10.00")
    assert tree.spent_usd == to_usd("1.00")
    assert tree.returned_usd == to_usd("9.00")
    assert tree.balance_usd == 0


def test_a_return_passes_through_a_closed_parent() -> None:
    wallet = _manager_and_coder()
    wallet.apply(_cmd("open", "intern", parent_id="coder", limit_usd="0.50"))
    wallet.apply(_cmd("close", "coder"))

    wallet.apply(_cmd("close", "intern"))

    assert _balance(wallet, "manager") == to_usd("10.00")
    assert_conserved(wallet.grants(), settled=True)


def test_an_expired_grant_closes_itself_at_its_expiry() -> None:
    wallet = Wallet()
    wallet.apply(_cmd("open", "manager", limit_usd="10.00"))
    expires_at = T0 + timedelta(hours=1)
    wallet.apply(
        _cmd(
            "open",
            "coder",
            parent_id="manager",
            limit_usd="2.00",
            expires_at=expires_at,
        )
    )

    assert wallet.expire(expires_at - timedelta(seconds=1)).statuses == []
    out = wallet.expire(expires_at)

    closed = out.statuses[0]
    assert (closed.grant_id, closed.status) == ("coder", "closed")
    assert closed.reason == f"expired at {expires_at.isoformat()}"
    assert _balance(wallet, "manager") == to_usd("10.00")
    assert wallet.expire(expires_at + timedelta(hours=1)).statuses == []


def test_top_up_mints_into_a_root_and_reopens_an_exhausted_one() -> None:
    wallet = Wallet()
    wallet.apply(_cmd("open", "team", limit_usd="1.00"))
    spent = wallet.spend("team", "e1", to_usd("1.00"), T0)
    assert spent.outcome.statuses[0].status == "exhausted"

    out = wallet.apply(_cmd("top_up", "team", amount_usd="0.50"))

    [status] = out.statuses
    assert (status.status, status.balance_usd) == ("open", to_usd("0.50"))
    assert status.limit_usd == to_usd("1.50")
    assert wallet.authorize("team", to_usd("0.50"), "r1", T0).approved


def test_top_up_of_a_child_is_refused_fund_it_instead() -> None:
    wallet = _manager_and_coder()

    out = wallet.apply(_cmd("top_up", "coder", amount_usd="1.00"))

    [status] = out.statuses
    assert status.status == "refused"
    assert status.reason is not None and "fund it from its parent" in status.reason
    assert _balance(wallet, "coder") == to_usd("2.00")


def test_commands_on_grants_that_cannot_take_them_are_refused() -> None:
    wallet = _manager_and_coder()
    wallet.apply(_cmd("open", "other", limit_usd="1"))
    commands = {
        "exists already": _cmd("open", "manager", limit_usd="1"),
        "unknown grant ghost": _cmd("open", "c2", parent_id="ghost", limit_usd="1"),
        "not a child of manager": _cmd(
            "fund", "other", parent_id="manager", amount_usd="1"
        ),
        "is a child of manager already": _cmd(
            "open", "coder", parent_id="manager", limit_usd="1"
        ),
        "unknown grant nobody": _cmd("close", "nobody"),
    }
    for reason, command in commands.items():
        [status] = wallet.apply(command).statuses
        assert status.status == "refused"
        assert status.reason is not None and reason in status.reason
    assert _balance(wallet, "manager") == to_usd("8.00")


def test_a_zero_limit_grant_is_exhausted_until_funded() -> None:
    wallet = Wallet()
    wallet.apply(_cmd("open", "manager", limit_usd="1.00"))

    opened = wallet.apply(_cmd("open", "idle", parent_id="manager", limit_usd="0"))
    funded = wallet.apply(_cmd("fund", "idle", parent_id="manager", amount_usd="1"))

    assert [s.status for s in opened.statuses if s.grant_id == "idle"] == ["exhausted"]
    assert [s.status for s in funded.statuses if s.grant_id == "idle"] == ["open"]
    assert [s.status for s in funded.statuses if s.grant_id == "manager"] == [
        "exhausted"
    ]


def test_a_cost_event_settles_the_reservation_it_carries() -> None:
    wallet = _manager_and_coder()
    wallet.authorize("coder", to_usd("0.10"), "r1", T0)
    event = decode_cost_event(
        b'{"event_id":"e1","ts":"2026-11-02T09:00:01Z","session_id":"s",'
        b'"agent":"coder","principal":"eng","grant_id":"coder","cost_usd":0.04,'
        b'"reservation_id":"r1","reservation_final":true}'
    )

    result = wallet.spend_event(event)

    assert result is not None and result.charged_usd == to_usd("0.04")
    assert _balance(wallet, "coder") == to_usd("1.96")
    coder = wallet.get("coder")
    assert coder is not None and coder.reservations == {}


def test_a_restart_between_authorize_and_settle_leaks_nothing() -> None:
    wallet = _manager_and_coder()
    wallet.authorize("coder", to_usd("0.10"), "r1", T0, hold_s=30)
    wallet.authorize("coder", to_usd("0.20"), "r2", T0, hold_s=30)
    saved = [loads(dumps(g.to_dict())) for g in wallet.grants()]

    restarted = Wallet(MemoryStore(Grant.from_dict(state) for state in saved))
    restarted.spend("coder", "e1", to_usd("0.10"), T0, reservation_id="r1")
    restarted.release_expired(T0 + timedelta(seconds=30))

    coder = restarted.get("coder")
    assert coder is not None and coder.reservations == {}
    assert coder.balance_usd == to_usd("1.90")
    assert_conserved(restarted.grants(), settled=True)
