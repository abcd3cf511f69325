"""The fund protocol over two partitions: sender half, transfer, receiver half."""

from datetime import UTC, datetime

from models.codec import dumps, loads
from models.grant_ledger import ledger_problems, ledger_totals
from models.grants import Grant
from models.money import to_usd
from models.records import GrantCommand
from models.transfers import Transfer
from models.wallet import Wallet, route_key

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _cmd(command: str, grant_id: str, **fields: object) -> GrantCommand:
    return GrantCommand.model_validate(
        {"command": command, "grant_id": grant_id, "ts": T0, **fields}
    )


def _over_the_wire(transfer: Transfer) -> Transfer:
    return Transfer.model_validate(loads(dumps(transfer.to_json_dict())))


def _partitions() -> tuple[Wallet, Wallet]:
    """The manager lives on partition A, its workers on partition B."""
    a, b = Wallet(deliver_locally=False), Wallet(deliver_locally=False)
    a.apply(_cmd("open", "manager", limit_usd="10.00"))
    return a, b


def _all(a: Wallet, b: Wallet) -> list[Grant]:
    return a.grants() + b.grants()


def test_open_of_a_child_is_paid_on_one_partition_and_received_on_another() -> None:
    a, b = _partitions()

    out = a.apply(_cmd("open", "coder", parent_id="manager", limit_usd="2.00"))

    [transfer] = out.transfers
    assert (transfer.kind, transfer.from_id, transfer.to_id) == (
        "open",
        "manager",
        "coder",
    )
    [tree] = ledger_totals(_all(a, b)).values()
    assert tree.in_transit_usd == to_usd("2.00")
    assert tree.balanced
    assert b.get("coder") is None

    b.receive(_over_the_wire(transfer))

    coder = b.get("coder")
    assert coder is not None and coder.balance_usd == to_usd("2.00")
    assert coder.parent_id == "manager"
    assert ledger_problems(_all(a, b), settled=True) == []


def test_a_transfer_delivered_twice_is_applied_once() -> None:
    a, b = _partitions()
    [opened] = a.apply(
        _cmd("open", "coder", parent_id="manager", limit_usd="2.00")
    ).transfers
    b.receive(opened)
    [funded] = a.apply(
        _cmd("fund", "coder", parent_id="manager", amount_usd="0.50")
    ).transfers

    first = b.receive(_over_the_wire(funded))
    second = b.receive(_over_the_wire(funded))

    assert len(first.statuses) == 1 and second.statuses == []
    coder = b.get("coder")
    assert coder is not None and coder.balance_usd == to_usd("2.50")
    assert ledger_problems(_all(a, b), settled=True) == []


def test_a_fund_to_a_child_closed_meanwhile_comes_back() -> None:
    a, b = _partitions()
    [opened] = a.apply(
        _cmd("open", "coder", parent_id="manager", limit_usd="2.00")
    ).transfers
    b.receive(opened)
    b.spend("coder", "e1", to_usd("0.40"), T0)
    [funded] = a.apply(
        _cmd("fund", "coder", parent_id="manager", amount_usd="1.00")
    ).transfers
    [returned] = b.apply(_cmd("close", "coder")).transfers

    bounce = b.receive(funded)
    [refund] = bounce.transfers
    a.receive(returned)
    a.receive(refund)

    assert bounce.statuses[0].status == "refused"
    assert refund.kind == "refund" and refund.amount_usd == to_usd("1.00")
    manager = a.get("manager")
    assert manager is not None
    assert manager.balance_usd == to_usd("9.60")
    assert ledger_problems(_all(a, b), settled=True) == []


def test_opening_an_id_that_exists_elsewhere_is_refunded() -> None:
    a, b = _partitions()
    b.apply(_cmd("open", "coder", limit_usd="1.00"))
    [opened] = a.apply(
        _cmd("open", "coder", parent_id="manager", limit_usd="2.00")
    ).transfers

    [refund] = b.receive(opened).transfers
    a.receive(refund)

    manager, coder = a.get("manager"), b.get("coder")
    assert manager is not None and coder is not None
    assert manager.balance_usd == to_usd("10.00")
    assert manager.children == []
    assert coder.balance_usd == to_usd("1.00") and coder.parent_id is None
    assert ledger_problems(_all(a, b), settled=True) == []


def test_the_fund_command_is_routed_to_the_payer() -> None:
    fund = _cmd("fund", "coder", parent_id="manager", amount_usd="1")
    child = _cmd("open", "coder", parent_id="manager", limit_usd="1")
    root = _cmd("open", "manager", limit_usd="1")

    assert route_key(fund) == route_key(child) == "manager"
    assert route_key(root) == "manager"
    assert route_key(_cmd("close", "coder")) == "coder"
    assert route_key(_cmd("top_up", "coder", amount_usd="1")) == "coder"
