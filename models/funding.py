"""Money into, between and out of grants: top up, pay a child, receive, close.

`pay_child` is the sender half and `receive` the receiver half of the fund
protocol described in `models.transfers`. Every function here mutates the
grant it is given and returns what to publish; a refusal mutates nothing.

Top up on a child is refused: `top_up` mints money, and only a root may mint;
a child gets more money by a `fund` from its parent.
"""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from models.grant_outcomes import Outcome
from models.grants import Grant
from models.money import ZERO_USD, to_usd, usd_text
from models.records import GrantActivityKind
from models.transfers import Transfer, TransferKind

_SENT: dict[TransferKind, GrantActivityKind] = {
    "open": "fund_out",
    "fund": "fund_out",
    "return": "return_out",
    "refund": "refund_out",
}
_RECEIVED: dict[TransferKind, GrantActivityKind] = {
    "open": "open",
    "fund": "fund_in",
    "return": "return_in",
    "refund": "refund_in",
}


def open_root(
    grant_id: str,
    limit_usd: Decimal,
    ts: datetime,
    *,
    principal: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[Grant, Outcome]:
    """A new root grant with `limit_usd` minted for it."""
    grant = Grant.root(
        grant_id, limit_usd, opened_at=ts, principal=principal, expires_at=expires_at
    )
    out = Outcome()
    out.activity.append(grant.activity("open", grant.minted_usd, ts))
    out.report(grant, ts)
    return grant, out


def top_up(grant: Grant, amount_usd: Decimal, ts: datetime) -> Outcome:
    """Mint `amount_usd` into a root grant."""
    amount = to_usd(amount_usd)
    out = Outcome()
    reason = _top_up_refusal(grant, amount)
    if reason is not None:
        out.refuse(grant.grant_id, grant, ts, reason)
        return out
    grant.minted_usd += amount
    grant.balance_usd += amount
    out.activity.append(grant.activity("top_up", amount, ts))
    out.report(grant, ts)
    return out


def _top_up_refusal(grant: Grant, amount: Decimal) -> str | None:
    if grant.closed:
        return f"grant {grant.grant_id} is closed; open a new grant instead"
    if grant.parent_id is not None:
        return (
            f"grant {grant.grant_id} is a child and only a root may be topped up; "
            f"fund it from its parent {grant.parent_id}"
        )
    if amount <= 0:
        return f"top_up amount_usd must be positive, got {usd_text(amount)}"
    return None


def pay_child(
    parent: Grant,
    child_id: str,
    amount_usd: Decimal,
    ts: datetime,
    *,
    kind: Literal["open", "fund"],
    principal: str | None = None,
    expires_at: datetime | None = None,
) -> Outcome:
    """Sender half of `open` (a new child) or `fund`: the parent pays `child_id`."""
    amount = to_usd(amount_usd)
    out = Outcome()
    reason = _payment_refusal(parent, child_id, amount, kind)
    if reason is not None:
        out.refuse(parent.grant_id, parent, ts, reason)
        return out
    parent.balance_usd -= amount
    if kind == "open":
        parent.children.append(child_id)
    transfer = _send(
        parent, kind, child_id, amount, ts, principal=principal, expires_at=expires_at
    )
    out.transfers.append(transfer)
    if amount > 0:
        out.activity.append(parent.activity("fund_out", amount, ts))
        out.report(parent, ts)
    return out


def _payment_refusal(
    parent: Grant, child_id: str, amount: Decimal, kind: str
) -> str | None:
    pid = parent.grant_id
    if parent.closed:
        return f"grant {pid} is closed and cannot {kind} child {child_id}"
    if child_id == pid:
        return f"grant {pid} cannot be its own child; choose another grant_id"
    if kind == "open" and child_id in parent.children:
        return f"grant {child_id} is a child of {pid} already; open a new grant_id"
    if kind == "fund" and child_id not in parent.children:
        return f"grant {child_id} is not a child of {pid}; fund only own children"
    if kind == "fund" and amount <= 0:
        return f"fund amount_usd must be positive, got {usd_text(amount)}"
    if amount > parent.balance_usd:
        return (
            f"balance {usd_text(parent.balance_usd)} of grant {pid} is short of "
            f"{usd_text(amount)} by {usd_text(amount - parent.balance_usd)} to "
            f"{kind} {child_id}; top up or fund {pid}, or ask for less"
        )
    return None


def _send(
    sender: Grant,
    kind: TransferKind,
    to_id: str,
    amount: Decimal,
    ts: datetime,
    **details: object,
) -> Transfer:
    """Book `amount` out of `sender` and number the transfer that carries it."""
    sender.sent_usd += amount
    return Transfer.model_validate(
        {
            "ts": ts,
            "kind": kind,
            "from_id": sender.grant_id,
            "to_id": to_id,
            "seq": sender.take_seq(),
            "amount_usd": amount,
            "root_id": sender.root_id,
            **details,
        }
    )


def receive(grant: Grant | None, transfer: Transfer) -> tuple[Grant, Outcome]:
    """Receiver half: credit, refund or pass on; `grant` is None if unknown."""
    if grant is None and transfer.kind == "open":
        return _open_child(transfer)
    if grant is None:
        grant = _placeholder(transfer)
    elif transfer.seq <= grant.seq_from.get(transfer.from_id, -1):
        return grant, Outcome()
    grant.seq_from[transfer.from_id] = transfer.seq
    grant.received_usd += transfer.amount_usd
    _drop_child(grant, transfer)
    out = Outcome()
    reason = _receipt_refusal(grant, transfer)
    if reason is not None:
        _refund(grant, transfer, reason, out)
    elif grant.closed:
        _pass_on(grant, transfer.amount_usd, transfer.ts, out)
    else:
        _credit(grant, transfer, out)
    return grant, out


def _open_child(transfer: Transfer) -> tuple[Grant, Outcome]:
    child = Grant(
        grant_id=transfer.to_id,
        root_id=transfer.root_id,
        opened_at=transfer.ts,
        parent_id=transfer.from_id,
        principal=transfer.principal,
        expires_at=transfer.expires_at,
        received_usd=transfer.amount_usd,
        balance_usd=transfer.amount_usd,
        seq_from={transfer.from_id: transfer.seq},
    )
    out = Outcome()
    out.activity.append(child.activity("open", transfer.amount_usd, transfer.ts))
    out.report(child, transfer.ts)
    return child, out


def _placeholder(transfer: Transfer) -> Grant:
    """A closed, empty state for an unknown receiver: it refunds or passes on."""
    return Grant(
        grant_id=transfer.to_id,
        root_id=transfer.root_id,
        opened_at=transfer.ts,
        closed_at=transfer.ts,
    )


def _receipt_refusal(grant: Grant, transfer: Transfer) -> str | None:
    gid, payer = grant.grant_id, transfer.from_id
    if transfer.kind == "open":
        return f"grant {gid} exists already; the open from {payer} is refunded"
    if transfer.kind != "fund":
        return None
    if grant.closed:
        return f"grant {gid} is closed or unknown; the fund from {payer} is refunded"
    if grant.parent_id != payer:
        return f"grant {gid} is not a child of {payer}; the fund is refunded"
    return None


def _refund(grant: Grant, transfer: Transfer, reason: str, out: Outcome) -> None:
    amount = transfer.amount_usd
    refund = _send(
        grant,
        "refund",
        transfer.from_id,
        amount,
        transfer.ts,
        refund_of=transfer.kind,
        reason=reason,
    )
    out.transfers.append(refund)
    out.activity.append(grant.activity("refund_out", amount, transfer.ts))
    out.refuse(grant.grant_id, grant, transfer.ts, reason)


def _credit(grant: Grant, transfer: Transfer, out: Outcome) -> None:
    if transfer.amount_usd == 0:
        return
    grant.balance_usd += transfer.amount_usd
    kind = _RECEIVED[transfer.kind]
    out.activity.append(grant.activity(kind, transfer.amount_usd, transfer.ts))
    out.report(grant, transfer.ts, reason=transfer.reason)


def _drop_child(grant: Grant, transfer: Transfer) -> None:
    """Forget a child that closed, or whose open was refunded."""
    undone_open = transfer.kind == "refund" and transfer.refund_of == "open"
    if (undone_open or transfer.child_closed) and transfer.from_id in grant.children:
        grant.children.remove(transfer.from_id)


def _pass_on(grant: Grant, amount: Decimal, ts: datetime, out: Outcome) -> None:
    """Hand money a closed grant holds up to its parent, or out at a root."""
    if amount == 0:
        return
    if grant.parent_id is None:
        grant.returned_usd += amount
        out.activity.append(grant.activity("returned", amount, ts))
        return
    out.transfers.append(_send(grant, "return", grant.parent_id, amount, ts))
    out.activity.append(grant.activity("return_out", amount, ts))


def close(grant: Grant, ts: datetime, reason: str | None = None) -> Outcome:
    """Release held reservations and hand the unspent balance up (or out).

    A child always tells its parent, with a `return` of what it had left.
    """
    out = Outcome()
    if grant.closed:
        out.refuse(grant.grant_id, grant, ts, f"grant {grant.grant_id} is closed")
        return out
    for reservation in grant.reservations.values():
        grant.balance_usd += reservation.amount_usd
        out.activity.append(grant.activity("release", reservation.amount_usd, ts))
    grant.reservations.clear()
    unspent, grant.balance_usd = grant.balance_usd, ZERO_USD
    grant.closed_at = ts
    if grant.parent_id is None:
        _pass_on(grant, unspent, ts, out)
    else:
        returned = _send(
            grant, "return", grant.parent_id, unspent, ts, child_closed=True
        )
        out.transfers.append(returned)
        if unspent > 0:
            out.activity.append(grant.activity("return_out", unspent, ts))
    out.activity.append(grant.activity("closed", unspent, ts))
    out.report(grant, ts, reason=reason)
    return out


def expire(grant: Grant, now: datetime) -> Outcome:
    """Close the grant if its expiry has come (`expires_at` <= `now`)."""
    if grant.closed or grant.expires_at is None or grant.expires_at > now:
        return Outcome()
    return close(grant, now, reason=f"expired at {grant.expires_at.isoformat()}")
