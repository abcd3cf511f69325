"""One budget grant's state: its money, its reservations, its place in a tree.

Every grant keeps one identity, checked by `models.grant_ledger`:

    minted + received = balance + reserved + spent + sent + returned

`minted` is money created by `open` (of a root) and `top_up`; `received` and
`sent` are transfers with its parent and children (`models.transfers`);
`returned` is unspent money handed back to the minting side when a root closes.
How money crosses between grants on different partitions: `models.transfers`.
`limit_usd` is what the grant may spend itself, spent + reserved + balance: a
fund to a child lowers the parent's limit, the child's unspent return raises it.

A grant is exhausted when its spent reaches its limit: nothing left to reserve
and nothing reserved. Spend it cannot cover is metered in `overspent_usd`,
outside the identity. A closed grant keeps its state, so later events are
flagged `closed` rather than `unknown` and returns can pass through it.

The state round-trips through JSON-able dicts (a Faust table value):

>>> from datetime import UTC, datetime
>>> g = Grant.root("g1", to_usd("5"), opened_at=datetime(2026, 11, 1, tzinfo=UTC))
>>> g.status, usd_text(g.limit_usd)
('open', '5.000000000')
>>> Grant.from_dict(g.to_dict()) == g
True
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from models.money import ZERO_USD, to_usd, usd_text
from models.records import GrantActivity, GrantActivityKind, GrantStatus

GrantState = Literal["open", "exhausted", "closed"]

RECENT_EVENT_IDS = 128
"""Event ids each grant remembers to drop a duplicate debit.

A duplicate further back than this many events on the same grant is counted
again: the worker's `DedupWindow` on `spend.events` is the guard for those.
Raise it only with the changelog cost in mind: the list is part of each state.
"""

_MONEY_FIELDS = (
    "minted_usd",
    "received_usd",
    "sent_usd",
    "returned_usd",
    "spent_usd",
    "balance_usd",
    "overspent_usd",
)


@dataclass(slots=True)
class Reservation:
    """Money held for an authorized call until its cost events draw it down."""

    amount_usd: Decimal
    expires_at: datetime


@dataclass(slots=True)
class Grant:
    """The state of one grant; the operations live in the modules that use it."""

    grant_id: str
    root_id: str
    opened_at: datetime
    parent_id: str | None = None
    principal: str | None = None
    expires_at: datetime | None = None
    closed_at: datetime | None = None
    minted_usd: Decimal = ZERO_USD
    received_usd: Decimal = ZERO_USD
    sent_usd: Decimal = ZERO_USD
    returned_usd: Decimal = ZERO_USD
    spent_usd: Decimal = ZERO_USD
    balance_usd: Decimal = ZERO_USD
    overspent_usd: Decimal = ZERO_USD
    reservations: dict[str, Reservation] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    next_seq: int = 0
    seq_from: dict[str, int] = field(default_factory=dict)
    recent_event_ids: list[str] = field(default_factory=list)

    @classmethod
    def root(
        cls,
        grant_id: str,
        limit_usd: Decimal,
        *,
        opened_at: datetime,
        principal: str | None = None,
        expires_at: datetime | None = None,
    ) -> "Grant":
        """A new root grant holding `limit_usd` of freshly minted money."""
        amount = to_usd(limit_usd)
        return cls(
            grant_id=grant_id,
            root_id=grant_id,
            opened_at=opened_at,
            principal=principal,
            expires_at=expires_at,
            minted_usd=amount,
            balance_usd=amount,
        )

    @property
    def reserved_usd(self) -> Decimal:
        return sum((r.amount_usd for r in self.reservations.values()), ZERO_USD)

    @property
    def limit_usd(self) -> Decimal:
        return self.spent_usd + self.reserved_usd + self.balance_usd

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def status(self) -> GrantState:
        if self.closed:
            return "closed"
        if self.balance_usd == 0 and not self.reservations:
            return "exhausted"
        return "open"

    def remember_event(self, event_id: str) -> bool:
        """Return True if `event_id` was debited already; otherwise remember it."""
        if event_id in self.recent_event_ids:
            return True
        self.recent_event_ids.append(event_id)
        del self.recent_event_ids[:-RECENT_EVENT_IDS]
        return False

    def take_seq(self) -> int:
        """The sequence number of the next transfer this grant sends."""
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def next_deadline(self) -> datetime | None:
        """When a reservation or the grant itself next times out, if ever."""
        times = [r.expires_at for r in self.reservations.values()]
        if self.expires_at is not None and not self.closed:
            times.append(self.expires_at)
        return min(times, default=None)

    def status_record(
        self, ts: datetime, *, refused: bool = False, reason: str | None = None
    ) -> GrantStatus:
        """The grant's numbers as a `spend.grant-status` record."""
        return GrantStatus(
            grant_id=self.grant_id,
            parent_id=self.parent_id,
            ts=ts,
            status="refused" if refused else self.status,
            limit_usd=self.limit_usd,
            spent_usd=self.spent_usd,
            reserved_usd=self.reserved_usd,
            balance_usd=self.balance_usd,
            reason=reason,
        )

    def activity(
        self, kind: GrantActivityKind, amount_usd: Decimal, ts: datetime
    ) -> GrantActivity:
        """A `grant_activity` row for this grant, with its balance after it."""
        return GrantActivity(
            ts=ts,
            grant_id=self.grant_id,
            parent_id=self.parent_id,
            kind=kind,
            amount_usd=amount_usd,
            balance_usd=self.balance_usd,
        )

    def view(self) -> dict[str, Any]:
        """What `GET /v1/grants/{id}` shows: numbers, family and status."""
        return {
            "grant_id": self.grant_id,
            "parent_id": self.parent_id,
            "children": list(self.children),
            "principal": self.principal,
            "status": self.status,
            "limit_usd": usd_text(self.limit_usd),
            "spent_usd": usd_text(self.spent_usd),
            "reserved_usd": usd_text(self.reserved_usd),
            "balance_usd": usd_text(self.balance_usd),
            "overspent_usd": usd_text(self.overspent_usd),
            "expires_at": _time_text(self.expires_at),
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-able values: decimals and times as strings."""
        return {
            "grant_id": self.grant_id,
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "principal": self.principal,
            "opened_at": self.opened_at.isoformat(),
            "expires_at": _time_text(self.expires_at),
            "closed_at": _time_text(self.closed_at),
            **{name: usd_text(getattr(self, name)) for name in _MONEY_FIELDS},
            "reservations": {
                rid: {
                    "amount_usd": usd_text(r.amount_usd),
                    "expires_at": r.expires_at.isoformat(),
                }
                for rid, r in self.reservations.items()
            },
            "children": list(self.children),
            "next_seq": self.next_seq,
            "seq_from": dict(self.seq_from),
            "recent_event_ids": list(self.recent_event_ids),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "Grant":
        """Rebuild a grant from `to_dict`'s output (or its JSON round trip)."""
        reservations = {
            rid: Reservation(to_usd(r["amount_usd"]), _time(r["expires_at"]))
            for rid, r in state["reservations"].items()
        }
        return cls(
            grant_id=state["grant_id"],
            root_id=state["root_id"],
            parent_id=state["parent_id"],
            principal=state["principal"],
            opened_at=_time(state["opened_at"]),
            expires_at=_optional_time(state["expires_at"]),
            closed_at=_optional_time(state["closed_at"]),
            **{name: to_usd(state[name]) for name in _MONEY_FIELDS},
            reservations=reservations,
            children=list(state["children"]),
            next_seq=int(state["next_seq"]),
            seq_from={k: int(v) for k, v in state["seq_from"].items()},
            recent_event_ids=list(state["recent_event_ids"]),
        )


def _time_text(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else _time(text)
