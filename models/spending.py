"""Debiting cost events from grants: charged within the limit, flagged beyond it.

A cost is taken from the event's reservation first, then from the balance;
what neither covers is overspend: metered on the grant (`overspent_usd`) and
flagged in the result, never dropped, and outside the tree's money so no
balance goes negative. An event id a grant has seen is not counted again
(within `models.grants.RECENT_EVENT_IDS`).

>>> from datetime import UTC, datetime
>>> ts = datetime(2026, 11, 1, tzinfo=UTC)
>>> g = Grant.root("g1", to_usd("0.10"), opened_at=ts)
>>> debit(g, "e1", to_usd("0.10"), ts).outcome.statuses[0].status
'exhausted'
>>> late = debit(g, "e2", to_usd("0.05"), ts)
>>> late.flag, usd_text(late.overspend_usd), g.status
('exhausted', '0.050000000', 'exhausted')
"""

from datetime import datetime
from decimal import Decimal

from models.errors import GrantError
from models.grant_outcomes import Outcome, SpendFlag, SpendResult
from models.grants import Grant
from models.money import ZERO_USD, to_usd, usd_text
from models.records import GrantActivity
from models.reservations import draw


def debit(
    grant: Grant,
    event_id: str,
    cost_usd: Decimal,
    ts: datetime,
    *,
    reservation_id: str | None = None,
    final: bool = False,
) -> SpendResult:
    """Charge one cost event to `grant`; see the module docstring for the order."""
    cost = _cost(cost_usd)
    out = Outcome()
    if grant.remember_event(event_id):
        return SpendResult(
            grant.grant_id, event_id, ZERO_USD, ZERO_USD, "duplicate", out
        )
    if grant.closed:
        return _uncovered(grant, event_id, cost, ZERO_USD, ts, "closed", out)
    was_exhausted = grant.status == "exhausted"

    # The reservation first, so a call's own hold pays before shared money.
    from_hold = draw(grant, reservation_id, cost, ts, out, final=final)
    from_balance = min(cost - from_hold, grant.balance_usd)
    grant.balance_usd -= from_balance
    charged = from_hold + from_balance
    grant.spent_usd += charged
    if charged > 0:
        out.activity.append(grant.activity("spend", charged, ts))
        out.report(grant, ts)

    over = cost - charged
    if over == 0:
        return SpendResult(grant.grant_id, event_id, charged, ZERO_USD, None, out)
    flag: SpendFlag = "exhausted" if was_exhausted else "over_limit"
    return _uncovered(grant, event_id, over, charged, ts, flag, out)


def _cost(cost_usd: Decimal) -> Decimal:
    cost = to_usd(cost_usd)
    if cost < 0:
        raise GrantError(f"cost_usd must not be negative, got {usd_text(cost)}")
    return cost


def _uncovered(
    grant: Grant,
    event_id: str,
    over: Decimal,
    charged: Decimal,
    ts: datetime,
    flag: SpendFlag,
    out: Outcome,
) -> SpendResult:
    grant.overspent_usd += over
    out.activity.append(grant.activity("overspend", over, ts))
    return SpendResult(grant.grant_id, event_id, charged, over, flag, out)


def debit_unknown(
    grant_id: str, event_id: str, cost_usd: Decimal, ts: datetime
) -> SpendResult:
    """Meter a cost event charged to a grant no one opened: all of it overspend.

    There is no state to remember the event id in, so a duplicate is flagged
    again; the worker's dedup on `spend.events` is the guard.
    """
    cost = _cost(cost_usd)
    row = GrantActivity(
        ts=ts,
        grant_id=grant_id,
        kind="overspend",
        amount_usd=cost,
        balance_usd=ZERO_USD,
    )
    out = Outcome(activity=[row])
    return SpendResult(grant_id, event_id, ZERO_USD, cost, "unknown", out)
