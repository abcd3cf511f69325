"""Reservations: money held for an authorized call until its cost events arrive.

`authorize` moves the amount from the balance into a reservation held until
`hold_s` after `now`. Each cost event carrying the reservation id draws its
cost from the reservation first (`draw`, used by `models.spending`). The
reservation ends, leaving no state, when it is drawn to zero, when an event
marks it final, when it is released, or when it times out
(`release_expired`, with `expires_at` <= `now`): its remainder returns to the
balance. So a call that costs less than it reserved keeps the rest held until
its final event or its timeout; one that costs more takes the excess from the
balance.

Approved reservations plus spend never exceed the limit: a reservation takes
only what the balance holds, a debit only what its reservation and the balance
hold. Reservations alone publish no grant status: the caller has its answer,
and other gateways need only the spend.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 11, 1, tzinfo=UTC)
>>> g = Grant.root("g1", to_usd("0.15"), opened_at=now)
>>> authorize(g, to_usd("0.10"), "r1", now).http_status
200
>>> answer = authorize(g, to_usd("0.10"), "r2", now)
>>> answer.http_status, usd_text(answer.balance_usd)
(402, '0.050000000')
"""

from datetime import datetime, timedelta
from decimal import Decimal

from models.errors import GrantError
from models.grant_outcomes import AuthorizeResult, Outcome
from models.grants import Grant, Reservation
from models.money import ZERO_USD, to_usd, usd_text

DEFAULT_HOLD_S = 60.0
"""How long an authorized amount is held when no cost event settles it."""


def authorize(
    grant: Grant,
    amount_usd: Decimal,
    reservation_id: str,
    now: datetime,
    *,
    hold_s: float = DEFAULT_HOLD_S,
) -> AuthorizeResult:
    """Reserve `amount_usd` for one call, or refuse with the balance and why.

    Asking again with a reservation id that is held for the same amount
    answers as the first time (a retried request), and reserves nothing more.
    """
    amount = to_usd(amount_usd)
    if amount <= 0:
        msg = f"amount_usd must be positive to authorize, got {usd_text(amount)}"
        raise GrantError(msg)
    if hold_s <= 0:
        raise GrantError(f"hold_s must be positive, got {hold_s}")
    out = Outcome()
    held = grant.reservations.get(reservation_id)
    reason = _refusal(grant, amount, reservation_id, now)
    if reason is not None:
        return _answer(grant, reservation_id, amount, reason, None, out)
    if held is not None:
        return _answer(grant, reservation_id, amount, None, held.expires_at, out)
    expires_at = now + timedelta(seconds=hold_s)
    grant.balance_usd -= amount
    grant.reservations[reservation_id] = Reservation(amount, expires_at)
    out.activity.append(grant.activity("reserve", amount, now))
    return _answer(grant, reservation_id, amount, None, expires_at, out)


def _refusal(
    grant: Grant, amount: Decimal, reservation_id: str, now: datetime
) -> str | None:
    gid = grant.grant_id
    held = grant.reservations.get(reservation_id)
    if grant.closed:
        return f"grant {gid} is closed"
    if grant.expires_at is not None and grant.expires_at <= now:
        return f"grant {gid} expired at {grant.expires_at.isoformat()}"
    if held is not None:
        if held.amount_usd == amount:
            return None
        return (
            f"reservation {reservation_id} is held for {usd_text(held.amount_usd)}"
            " already; use a new reservation_id"
        )
    if grant.status == "exhausted":
        spent, limit = usd_text(grant.spent_usd), usd_text(grant.limit_usd)
        return f"grant {gid} is exhausted: spent {spent} of its limit {limit}"
    if amount > grant.balance_usd:
        short = usd_text(amount - grant.balance_usd)
        return (
            f"balance {usd_text(grant.balance_usd)} of grant {gid} is short of "
            f"{usd_text(amount)} by {short}; {usd_text(grant.reserved_usd)} is "
            "held by calls in flight"
        )
    return None


def _answer(
    grant: Grant,
    reservation_id: str,
    amount: Decimal,
    reason: str | None,
    expires_at: datetime | None,
    out: Outcome,
) -> AuthorizeResult:
    return AuthorizeResult(
        grant_id=grant.grant_id,
        reservation_id=reservation_id,
        amount_usd=amount,
        approved=reason is None,
        balance_usd=grant.balance_usd,
        reserved_usd=grant.reserved_usd,
        reason=reason,
        expires_at=expires_at,
        outcome=out,
    )


def draw(
    grant: Grant,
    reservation_id: str | None,
    cost_usd: Decimal,
    ts: datetime,
    out: Outcome,
    *,
    final: bool = False,
) -> Decimal:
    """Take up to `cost_usd` from a held reservation; return what was taken.

    The reservation goes when drawn to zero or when `final`, its remainder
    back to the balance. An id not held (settled, released, never made)
    takes nothing.
    """
    if reservation_id is None:
        return ZERO_USD
    held = grant.reservations.get(reservation_id)
    if held is None:
        return ZERO_USD
    taken = min(cost_usd, held.amount_usd)
    held.amount_usd -= taken
    if final or held.amount_usd == 0:
        out.extend(release(grant, reservation_id, ts))
    return taken


def release(grant: Grant, reservation_id: str, ts: datetime) -> Outcome:
    """Return a held reservation's remainder to the balance; no-op if not held."""
    out = Outcome()
    held = grant.reservations.pop(reservation_id, None)
    if held is None or held.amount_usd == 0:
        return out
    grant.balance_usd += held.amount_usd
    out.activity.append(grant.activity("release", held.amount_usd, ts))
    return out


def release_expired(grant: Grant, now: datetime) -> Outcome:
    """Release every reservation whose hold has run out (`expires_at` <= `now`)."""
    out = Outcome()
    for reservation_id, held in list(grant.reservations.items()):
        if held.expires_at <= now:
            out.extend(release(grant, reservation_id, now))
    return out
