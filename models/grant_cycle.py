"""One cycle of changes to a worker's grants: ops, authorizations, sweeps.

A worker changes its grants in cycles, one at a time (`streams.grant_book`).
`GrantCycle` decides a cycle without I/O: it reads the stored entries
(`models.grant_replay.GrantEntry` dicts, by grant id), applies each item in
order to a private copy, and collects what to publish (`Emitted`) and the
entries to write back (`EntryStore.changed`). The worker publishes first and
writes back second, so a crash between the two replays the cycle's ops rather
than losing a transfer; replayed ops are harmless because:

- a command at or below a grant's mark, or with a command id it holds, is
  skipped (`models.grant_replay`);
- a transfer at or below the receiver's `seq` from its sender is dropped
  (`models.transfers`); a debit whose event id the grant holds is not
  counted again (`models.grants.RECENT_EVENT_IDS`);
- every `grant_activity` row carries an id derived from its cause
  (`ActivityRow`), so writing it again replaces it.

>>> from datetime import UTC, datetime
>>> from models.money import to_usd
>>> from models.records import GrantCommand
>>> ts = datetime(2026, 11, 1, tzinfo=UTC)
>>> opened = CommandOp(command=GrantCommand(command="open", grant_id="g", ts=ts,
...                    limit_usd=to_usd("1")), source_partition=0, source_offset=5)
>>> live = {}
>>> cycle = GrantCycle(live)
>>> cycle.apply(opened)
>>> live.update(cycle.store.changed())
>>> again = GrantCycle(live)
>>> again.apply(opened)
>>> again.emitted.ops
Counter({('command', 'skipped'): 1})
"""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from models.funding import expire
from models.grant_ops import CommandOp, DebitOp, GrantOp, TransferOp
from models.grant_outcomes import AuthorizeResult, Outcome
from models.grant_replay import CommandOrigin, GrantEntry, stored_deadline
from models.grants import Grant
from models.records import GrantActivity, GrantStatus
from models.reservations import DEFAULT_HOLD_S
from models.transfers import Transfer
from models.wallet import Wallet


class EntryStore:
    """A write-back copy of stored grant entries: a `GrantStore` for a `Wallet`.

    `live` maps grant ids to stored entries (`GrantEntry.to_dict()`); it is
    only read. `owned_ids` lists the grants this worker owns, for sweeps.
    """

    def __init__(
        self,
        live: Mapping[str, dict[str, Any]],
        owned_ids: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self._live = live
        self._owned_ids = owned_ids or (lambda: list(live))
        self._entries: dict[str, GrantEntry | None] = {}
        self.dirty: set[str] = set()

    def entry(self, grant_id: str) -> GrantEntry | None:
        if grant_id not in self._entries:
            value = self._live.get(grant_id)
            entry = None if value is None else GrantEntry.from_dict(value)
            self._entries[grant_id] = entry
        return self._entries[grant_id]

    def get(self, grant_id: str) -> Grant | None:
        entry = self.entry(grant_id)
        return None if entry is None else entry.grant

    def put(self, grant: Grant) -> None:
        entry = self.entry(grant.grant_id)
        if entry is None:
            self._entries[grant.grant_id] = GrantEntry(grant)
        else:
            entry.grant = grant
        self.dirty.add(grant.grant_id)

    def grant_ids(self) -> list[str]:
        return list(self._owned_ids())

    def deadline(self, grant_id: str) -> datetime | None:
        """When the grant next times out, decoding it only if this cycle did."""
        entry = self._entries.get(grant_id)
        if entry is not None:
            return entry.grant.next_deadline()
        value = self._live.get(grant_id)
        return None if value is None else stored_deadline(value)

    def seen(self, grant_id: str, origin: CommandOrigin) -> bool:
        entry = self.entry(grant_id)
        return entry is not None and entry.marks.seen(origin)

    def mark(self, grant_id: str, origin: CommandOrigin) -> None:
        """Record a command as applied on `grant_id`, if that grant exists."""
        entry = self.entry(grant_id)
        if entry is not None:
            entry.marks.mark(origin)
            self.dirty.add(grant_id)

    def changed(self) -> dict[str, dict[str, Any]]:
        """The entries this cycle changed, as values to store."""
        return {
            gid: entry.to_dict()
            for gid in sorted(self.dirty)
            if (entry := self._entries.get(gid)) is not None
        }


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """A `grant_activity` row and its id: grant, cause, kind and a count."""

    row_id: str
    activity: GrantActivity


@dataclass(slots=True)
class Emitted:
    """What a cycle publishes, and counts for the worker's metrics."""

    statuses: list[GrantStatus] = field(default_factory=list)
    rows: list[ActivityRow] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    flags: Counter[str] = field(default_factory=Counter)
    ops: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, cause: str, out: Outcome) -> None:
        """Take an outcome, numbering its rows per grant and kind within `cause`."""
        self.statuses.extend(out.statuses)
        self.transfers.extend(out.transfers)
        counts: Counter[tuple[str, str]] = Counter()
        for row in out.activity:
            n = counts[row.grant_id, row.kind]
            counts[row.grant_id, row.kind] += 1
            row_id = f"{row.grant_id}|{cause}|{row.kind}|{n}"
            self.rows.append(ActivityRow(row_id, row))


class GrantCycle:
    """Applies one cycle's items to a copy of the stored entries."""

    def __init__(
        self,
        live: Mapping[str, dict[str, Any]],
        owned_ids: Callable[[], Iterable[str]] | None = None,
        *,
        hold_s: float = DEFAULT_HOLD_S,
    ) -> None:
        self.store = EntryStore(live, owned_ids)
        self.wallet = Wallet(self.store, deliver_locally=False, hold_s=hold_s)
        self.emitted = Emitted()

    def apply(self, op: GrantOp) -> None:
        """Apply one op from the grant-ops topic."""
        if isinstance(op, CommandOp):
            self._command(op)
        elif isinstance(op, TransferOp):
            self.emitted.add(op.cause, self.wallet.receive(op.transfer))
            self.emitted.ops["transfer", "applied"] += 1
        else:
            self._debit(op)

    def _command(self, op: CommandOp) -> None:
        key = op.key
        if self.store.seen(key, op.origin):
            self.emitted.ops["command", "skipped"] += 1
            return
        out = self.wallet.apply(op.command)
        self.store.mark(key, op.origin)
        self.emitted.add(op.cause, out)
        refused = any(s.status == "refused" for s in out.statuses)
        self.emitted.ops["command", "refused" if refused else "applied"] += 1

    def _debit(self, op: DebitOp) -> None:
        result = self.wallet.spend(
            op.grant_id,
            op.event_id,
            op.cost_usd,
            op.ts,
            reservation_id=op.reservation_id,
            final=op.reservation_final,
        )
        if result.flag is not None:
            self.emitted.flags[result.flag] += 1
        self.emitted.add(op.cause, result.outcome)
        self.emitted.ops["debit", result.flag or "charged"] += 1

    def authorize(
        self,
        grant_id: str,
        amount_usd: Decimal,
        reservation_id: str,
        now: datetime,
        hold_s: float | None = None,
    ) -> AuthorizeResult:
        """Reserve on a grant (200) or refuse (402); `GrantError` for bad input."""
        result = self.wallet.authorize(
            grant_id, amount_usd, reservation_id, now, hold_s=hold_s
        )
        if result.approved and result.expires_at is not None:
            cause = f"auth/{reservation_id}/{result.expires_at.isoformat()}"
            self.emitted.add(cause, result.outcome)
        return result

    def sweep(self, now: datetime) -> None:
        """Release every hold that has run out and close every expired grant."""
        for grant_id in self.store.grant_ids():
            deadline = self.store.deadline(grant_id)
            if deadline is None or deadline > now:
                continue
            grant = self.store.get(grant_id)
            if grant is None:
                continue
            for rid, held in list(grant.reservations.items()):
                if held.expires_at <= now:
                    cause = f"release/{rid}/{held.expires_at.isoformat()}"
                    self.emitted.add(cause, self.wallet.release(grant_id, rid, now))
            self.emitted.add(f"expire/{grant_id}", self._expire(grant, now))

    def _expire(self, grant: Grant, now: datetime) -> Outcome:
        out = expire(grant, now)
        if out.statuses:
            self.store.put(grant)
        return out
