"""Grants applied in one place: commands, cost events, authorizations, sweeps.

`Wallet` is the entry point. It finds each grant's state in a `GrantStore` (a
dict in one process, a Faust table keyed by grant id in the worker: wrap it so
`get` and `put` go through `Grant.from_dict` and `Grant.to_dict`) and returns
what to publish. With `deliver_locally=True` it applies the receiver half of
every transfer at once; with False it returns them in `Outcome.transfers`, for
the worker to produce keyed by `to_id` and apply on the receiver's partition
with `Wallet.receive`. The protocol is in `models.transfers`; `route_key` says
on which grant's partition a command is applied first.

>>> from datetime import UTC, datetime
>>> from models.money import to_usd
>>> ts = datetime(2026, 11, 1, tzinfo=UTC)
>>> w = Wallet()
>>> _ = w.apply(GrantCommand(command="open", grant_id="boss", ts=ts, limit_usd=10))
>>> _ = w.apply(GrantCommand(command="open", grant_id="coder", parent_id="boss",
...                          ts=ts, limit_usd=to_usd("2.00")))
>>> w.view("boss")["balance_usd"], w.view("coder")["parent_id"]
('8.000000000', 'boss')

Known shortcomings: a `Wallet` applies a command given twice twice; the
worker skips redeliveries before they reach it (`models.grant_replay`: source
offsets, and the optional `command_id`). Closed grants keep their
state for good; evicting them after a retention would be fine, with late
events on them then flagged `unknown` rather than `closed`. The sweeps
(`expire`, `release_expired`) visit every grant; index by
`Grant.next_deadline` when a partition holds too many for that.
"""

from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from models.events import CostEvent
from models.funding import close, expire, open_root, pay_child, receive, top_up
from models.grant_ledger import LedgerTotals, ledger_totals
from models.grant_outcomes import AuthorizeResult, Outcome, SpendResult
from models.grants import Grant
from models.money import ZERO_USD
from models.records import GrantCommand
from models.reservations import DEFAULT_HOLD_S, authorize, release, release_expired
from models.spending import debit, debit_unknown
from models.transfers import Transfer


class GrantStore(Protocol):
    """Where grant states live, by grant id."""

    def get(self, grant_id: str) -> Grant | None: ...

    def put(self, grant: Grant) -> None: ...

    def grant_ids(self) -> list[str]: ...


class MemoryStore:
    """Grant states in a dict: one process, and the tests."""

    def __init__(self, grants: Iterable[Grant] = ()) -> None:
        self.grants = {g.grant_id: g for g in grants}

    def get(self, grant_id: str) -> Grant | None:
        return self.grants.get(grant_id)

    def put(self, grant: Grant) -> None:
        self.grants[grant.grant_id] = grant

    def grant_ids(self) -> list[str]:
        return list(self.grants)


def route_key(command: GrantCommand) -> str:
    """The grant whose partition applies `command` first: the payer, if any."""
    pays = command.command == "fund" or command.command == "open"
    return command.parent_id if pays and command.parent_id else command.grant_id


class Wallet:
    """Grant commands, transfers, spend and reservations over a `GrantStore`."""

    def __init__(
        self,
        store: GrantStore | None = None,
        *,
        deliver_locally: bool = True,
        hold_s: float = DEFAULT_HOLD_S,
    ) -> None:
        self.store: GrantStore = store if store is not None else MemoryStore()
        self.deliver_locally = deliver_locally
        self.hold_s = hold_s

    def get(self, grant_id: str) -> Grant | None:
        return self.store.get(grant_id)

    def grants(self) -> list[Grant]:
        return [g for gid in self.store.grant_ids() if (g := self.store.get(gid))]

    def view(self, grant_id: str) -> dict[str, Any] | None:
        """What `GET /v1/grants/{id}` shows, or None for an unknown grant."""
        grant = self.store.get(grant_id)
        return None if grant is None else grant.view()

    def totals(self) -> dict[str, LedgerTotals]:
        """Ledger totals per tree over every grant in the store."""
        return ledger_totals(self.grants())

    def apply(self, command: GrantCommand) -> Outcome:
        """Apply a command on `spend.grants` (on the partition of `route_key`)."""
        ts, gid = command.ts, command.grant_id
        amount = command.amount_usd if command.amount_usd is not None else ZERO_USD
        if command.command == "open":
            out = self._open(command)
        elif command.command == "fund":
            out = self._pay(command, route_key(command), amount)
        elif command.command == "top_up":
            out = self._on_grant(gid, ts, lambda g: top_up(g, amount, ts))
        else:  # close: the command is one of four
            out = self._on_grant(gid, ts, lambda g: close(g, ts))
        return self._deliver(out)

    def _open(self, command: GrantCommand) -> Outcome:
        limit = command.limit_usd if command.limit_usd is not None else ZERO_USD
        if command.parent_id is not None:
            return self._pay(command, command.parent_id, limit)
        existing = self.store.get(command.grant_id)
        if existing is not None:
            out = Outcome()
            reason = f"grant {command.grant_id} exists already; open a new grant_id"
            out.refuse(command.grant_id, existing, command.ts, reason)
            return out
        grant, out = open_root(
            command.grant_id,
            limit,
            command.ts,
            principal=command.principal,
            expires_at=command.expires_at,
        )
        self.store.put(grant)
        return out

    def _pay(self, command: GrantCommand, payer_id: str, amount: Decimal) -> Outcome:
        kind: Literal["open", "fund"] = "open" if command.command == "open" else "fund"
        return self._on_grant(
            payer_id,
            command.ts,
            lambda parent: pay_child(
                parent,
                command.grant_id,
                amount,
                command.ts,
                kind=kind,
                principal=command.principal,
                expires_at=command.expires_at,
            ),
        )

    def _on_grant(
        self, grant_id: str, ts: datetime, change: Callable[[Grant], Outcome]
    ) -> Outcome:
        grant = self.store.get(grant_id)
        if grant is None:
            out = Outcome()
            out.refuse(grant_id, None, ts, f"unknown grant {grant_id}; open it first")
            return out
        out = change(grant)
        self.store.put(grant)
        return out

    def receive(self, transfer: Transfer) -> Outcome:
        """Apply the receiver half of a transfer (on the partition of `to_id`)."""
        return self._deliver(self._receive_one(transfer))

    def _receive_one(self, transfer: Transfer) -> Outcome:
        grant, out = receive(self.store.get(transfer.to_id), transfer)
        self.store.put(grant)
        return out

    def _deliver(self, out: Outcome) -> Outcome:
        """In one process, apply every transfer and the transfers they cause."""
        if not self.deliver_locally:
            return out
        pending = deque(out.transfers)
        out.transfers = []
        while pending:
            step = self._receive_one(pending.popleft())
            pending.extend(step.transfers)
            step.transfers = []
            out.extend(step)
        return out

    def spend(
        self,
        grant_id: str,
        event_id: str,
        cost_usd: Decimal,
        ts: datetime,
        *,
        reservation_id: str | None = None,
        final: bool = False,
    ) -> SpendResult:
        """Debit one cost event from its grant; flagged, never dropped."""
        grant = self.store.get(grant_id)
        if grant is None:
            return debit_unknown(grant_id, event_id, cost_usd, ts)
        result = debit(
            grant, event_id, cost_usd, ts, reservation_id=reservation_id, final=final
        )
        self.store.put(grant)
        return result

    def spend_event(self, event: CostEvent) -> SpendResult | None:
        """Debit a decoded cost event; None when it names no grant."""
        if event.grant_id is None:
            return None
        return self.spend(
            event.grant_id,
            event.event_id,
            event.cost,
            event.ts,
            reservation_id=event.reservation_id,
            final=event.reservation_final,
        )

    def authorize(
        self,
        grant_id: str,
        amount_usd: Decimal,
        reservation_id: str,
        now: datetime,
        *,
        hold_s: float | None = None,
    ) -> AuthorizeResult:
        """Reserve `amount_usd` on the grant (200), or refuse it (402)."""
        grant = self.store.get(grant_id)
        if grant is None:
            return _refuse_unknown(grant_id, amount_usd, reservation_id)
        hold_s = self.hold_s if hold_s is None else hold_s
        result = authorize(grant, amount_usd, reservation_id, now, hold_s=hold_s)
        if result.approved:
            self.store.put(grant)
        return result

    def release(self, grant_id: str, reservation_id: str, now: datetime) -> Outcome:
        """Release a held reservation before its timeout; no-op if not held."""
        return self._on_known(grant_id, lambda g: release(g, reservation_id, now))

    def release_expired(self, now: datetime) -> Outcome:
        """Release every reservation whose hold has run out, on every grant."""
        return self._sweep(lambda g: release_expired(g, now))

    def expire(self, now: datetime) -> Outcome:
        """Close every grant whose expiry has come."""
        return self._deliver(self._sweep(lambda g: expire(g, now)))

    def _on_known(self, grant_id: str, change: Callable[[Grant], Outcome]) -> Outcome:
        grant = self.store.get(grant_id)
        if grant is None:
            return Outcome()
        out = change(grant)
        if out.activity or out.statuses:
            self.store.put(grant)
        return out

    def _sweep(self, change: Callable[[Grant], Outcome]) -> Outcome:
        out = Outcome()
        for grant_id in self.store.grant_ids():
            out.extend(self._on_known(grant_id, change))
        return out


def _refuse_unknown(
    grant_id: str, amount_usd: Decimal, reservation_id: str
) -> AuthorizeResult:
    """The 402 for a grant no one opened: nothing to reserve from."""
    return AuthorizeResult(
        grant_id=grant_id,
        reservation_id=reservation_id,
        amount_usd=amount_usd,
        approved=False,
        balance_usd=ZERO_USD,
        reserved_usd=ZERO_USD,
        reason=f"unknown grant {grant_id}; open it first",
        expires_at=None,
        outcome=Outcome(),
    )
