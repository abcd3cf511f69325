"""One cycle of changes to a worker's grants: ops, authorizations, sweeps.

A worker changes its grants in cycles, one at a time (`streams.grant_book`).
`GrantCycle` decides a cycle without I/O: it reads the stored entries
(`models.grant_replay.GrantEntry` dicts, by grant id), applies each item in
order to a private copy, and collects what to publish (`Emitted`) and the
entries to store (`GrantCycle.changed`). The worker sends the transfers and
statuses and waits for them before it stores; a crash in between replays the
cycle's ops, which is harmless because:

- a command or a debit at or below a grant's mark for its source partition,
  or a command with a command id the grant holds, is skipped; a grant that
  does not exist keeps marks too, for a while (`models.grant_replay`); a
  debit without a source counts its event id once
  (`models.grants.RECENT_EVENT_IDS`);
- a transfer at or below the receiver's `seq` from its sender is dropped
  (`models.transfers`).

Activity rows travel inside the stored entries: each entry the cycle stores
carries that cycle's rows for its grant (its outbox), so a row reaches Kafka
exactly when its state does, and a cycle of authorizations costs one round
trip. A row's id is derived from its cause (`ActivityRow`), so a replayed op
writes the same row again, and it replaces itself.

>>> from datetime import UTC, datetime
>>> from models.money import to_usd
>>> from models.records import GrantCommand
>>> ts = datetime(2026, 11, 1, tzinfo=UTC)
>>> opened = CommandOp(command=GrantCommand(command="open", grant_id="g", ts=ts,
...                    limit_usd=to_usd("1")), source_partition=0, source_offset=5)
>>> live = {}
>>> cycle = GrantCycle(live, now=ts)
>>> cycle.apply(opened)
>>> live.update(cycle.changed())
>>> again = GrantCycle(live, now=ts)
>>> again.apply(opened)
>>> again.emitted.ops
Counter({('command', 'skipped'): 1})
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from models.funding import expire
from models.grant_entries import Decoded, EntryStore
from models.grant_ops import CommandOp, DebitOp, GrantOp, TransferOp
from models.grant_outcomes import AuthorizeResult, Outcome
from models.grants import Grant
from models.records import GrantActivity, GrantStatus
from models.reservations import DEFAULT_HOLD_S
from models.transfers import Transfer
from models.wallet import Wallet


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """A `grant_activity` row and its id: grant, cause, kind and a count."""

    row_id: str
    activity: GrantActivity

    def to_dict(self) -> dict[str, Any]:
        return {"row_id": self.row_id, **self.activity.to_json_dict()}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "ActivityRow":
        fields = dict(value)
        return cls(fields.pop("row_id"), GrantActivity.model_validate(fields))


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
    """Applies one cycle's items to a copy of the stored entries.

    `now` is the wall clock at the cycle's start: it dates the marks kept for
    grants that do not exist (`models.grant_replay.GrantEntry`).
    """

    def __init__(
        self,
        live: Mapping[str, dict[str, Any]],
        owned_ids: Callable[[], Iterable[str]] | None = None,
        *,
        now: datetime,
        hold_s: float = DEFAULT_HOLD_S,
        decoded: Decoded | None = None,
    ) -> None:
        self.now = now
        self.store = EntryStore(live, owned_ids, decoded)
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
        self.store.mark(key, op.origin, self.now)
        self.emitted.add(op.cause, out)
        refused = any(s.status == "refused" for s in out.statuses)
        self.emitted.ops["command", "refused" if refused else "applied"] += 1

    def _debit(self, op: DebitOp) -> None:
        origin = op.origin
        if origin is not None and self.store.seen(op.grant_id, origin):
            self.emitted.ops["debit", "skipped"] += 1
            return
        result = self.wallet.spend(
            op.grant_id,
            op.event_id,
            op.cost_usd,
            op.ts,
            reservation_id=op.reservation_id,
            final=op.reservation_final,
        )
        if origin is not None:
            self.store.mark(op.grant_id, origin, self.now)
        if result.flag is not None:
            self.emitted.flags[result.flag] += 1
        self.emitted.add(op.cause, result.outcome)
        self.emitted.ops["debit", result.flag or "charged"] += 1

    def changed(self) -> dict[str, dict[str, Any] | None]:
        """The entries to store, each with this cycle's rows as its outbox.

        A row of a grant that has no entry (an event without a source on a
        grant no one opened) gets a marks-only one to travel in.
        """
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.emitted.rows:
            rows[row.activity.grant_id].append(row.to_dict())
        for grant_id in rows:
            self.store.keep(grant_id, self.now)
        for grant_id in self.store.dirty:
            entry = self.store.entry(grant_id)
            if entry is not None:
                entry.outbox = rows.get(grant_id, [])
        return self.store.changed()

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
                self.store.forget(grant_id)
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
