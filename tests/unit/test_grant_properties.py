"""Random commands, events, authorizations and sweeps: money is conserved.

The machine drives one in-process wallet (transfers delivered at once) and a
wallet split over three partitions (transfers delivered later, in any order
that keeps each sender-receiver pair in order, some twice). It tracks what
was minted and charged on its own, and checks the books after every step.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from models.codec import dumps, loads
from models.grant_ledger import ledger_problems, ledger_totals
from models.grant_outcomes import Outcome
from models.grants import Grant
from models.money import to_usd
from models.records import GrantCommand
from models.transfers import Transfer
from models.wallet import MemoryStore, Wallet, route_key

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GRANT_IDS = st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])
RESERVATION_IDS = st.sampled_from(["r1", "r2", "r3"])
EVENT_IDS = st.sampled_from([f"e{i}" for i in range(15)])
NICE = [to_usd(x) for x in ("0", "0.05", "0.10", "0.50", "1", "2")]
AMOUNTS = st.one_of(
    st.sampled_from(NICE),
    st.integers(0, 3 * 10**9).map(lambda n: to_usd(Decimal(n).scaleb(-9))),
)
POSITIVE = AMOUNTS.filter(lambda amount: amount > 0)
EXPIRY_S = st.none() | st.integers(1, 600)


def _refused(out: Outcome) -> bool:
    """Whether a command was refused where it was first applied."""
    return bool(out.statuses) and out.statuses[0].status == "refused"


class WalletMachine(RuleBasedStateMachine):
    partitions = 1

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        local = self.partitions == 1
        self.wallets = [Wallet(deliver_locally=local) for _ in range(self.partitions)]
        self.pending: list[Transfer] = []
        self.delivered: list[Transfer] = []
        self.last_status: dict[str, str] = {}
        self.minted = Decimal(0)
        self.charged = Decimal(0)

    def wallet(self, grant_id: str) -> Wallet:
        return self.wallets[sum(map(ord, grant_id)) % len(self.wallets)]

    def grants(self) -> list[Grant]:
        return [g for w in self.wallets for g in w.grants()]

    def pick(self, data: st.DataObject) -> str:
        """A grant id: half the time one that exists, else any (maybe unknown)."""
        known = sorted(g.grant_id for g in self.grants())
        return data.draw(st.sampled_from(known) | GRANT_IDS if known else GRANT_IDS)

    def absorb(self, out: Outcome) -> None:
        self.pending.extend(out.transfers)
        for status in out.statuses:
            if status.status == "refused":
                continue
            twice = self.last_status.get(status.grant_id) == "exhausted"
            assert not (status.status == "exhausted" and twice), status
            self.last_status[status.grant_id] = status.status

    def command(self, **fields: object) -> Outcome:
        cmd = GrantCommand.model_validate({"ts": self.now, **fields})
        out = self.wallet(route_key(cmd)).apply(cmd)
        self.absorb(out)
        event(f"{cmd.command}: {'refused' if _refused(out) else 'accepted'}")
        return out

    @initialize()
    def two_roots(self) -> None:
        for gid, limit in (("a", "5.00"), ("b", "3.00")):
            self.command(command="open", grant_id=gid, limit_usd=to_usd(limit))
            self.minted += to_usd(limit)

    @rule(gid=GRANT_IDS, limit=AMOUNTS, expiry_s=EXPIRY_S)
    def open_root(self, gid: str, limit: Decimal, expiry_s: int | None) -> None:
        expires_at = (
            None if expiry_s is None else self.now + timedelta(seconds=expiry_s)
        )
        out = self.command(
            command="open", grant_id=gid, limit_usd=limit, expires_at=expires_at
        )
        if not _refused(out):
            self.minted += limit

    @rule(data=st.data(), gid=GRANT_IDS, limit=AMOUNTS, expiry_s=EXPIRY_S)
    def open_child(
        self, data: st.DataObject, gid: str, limit: Decimal, expiry_s: int | None
    ) -> None:
        parent = self.pick(data)
        expires_at = (
            None if expiry_s is None else self.now + timedelta(seconds=expiry_s)
        )
        self.command(
            command="open",
            grant_id=gid,
            parent_id=parent,
            limit_usd=limit,
            expires_at=expires_at,
        )

    @rule(data=st.data(), amount=AMOUNTS)
    def top_up(self, data: st.DataObject, amount: Decimal) -> None:
        gid = self.pick(data)
        out = self.command(command="top_up", grant_id=gid, amount_usd=amount)
        if not _refused(out):
            self.minted += amount

    @rule(data=st.data(), amount=AMOUNTS)
    def fund(self, data: st.DataObject, amount: Decimal) -> None:
        parent = self.pick(data)
        payer = self.wallet(parent).get(parent)
        children = payer.children if payer is not None else []
        child = data.draw(
            st.sampled_from(children) | GRANT_IDS if children else GRANT_IDS
        )
        before = None if payer is None else payer.balance_usd
        out = self.command(
            command="fund", grant_id=child, parent_id=parent, amount_usd=amount
        )
        if not _refused(out):
            assert payer is not None and before is not None
            refunds = [
                row.amount_usd
                for row in out.activity
                if (row.grant_id, row.kind) == (parent, "refund_in")
            ]
            assert payer.balance_usd == before - amount + sum(refunds, Decimal(0))

    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        gid = self.pick(data)
        self.command(command="close", grant_id=gid)
        grant = self.wallet(gid).get(gid)
        if grant is not None:
            assert grant.closed and grant.balance_usd == 0 and not grant.reservations

    def open_children(self) -> list[str]:
        return sorted(g.grant_id for g in self.grants() if g.parent_id and not g.closed)

    @precondition(lambda self: self.open_children())
    @rule(data=st.data())
    def close_a_child(self, data: st.DataObject) -> None:
        child = data.draw(st.sampled_from(self.open_children()))
        self.command(command="close", grant_id=child)

    @rule(
        data=st.data(),
        event_id=EVENT_IDS,
        cost=AMOUNTS,
        reservation=st.none() | RESERVATION_IDS,
        final=st.booleans(),
    )
    def spend(
        self,
        data: st.DataObject,
        event_id: str,
        cost: Decimal,
        reservation: str | None,
        final: bool,
    ) -> None:
        gid = self.pick(data)
        wallet = self.wallet(gid)
        result = wallet.spend(
            gid, event_id, cost, self.now, reservation_id=reservation, final=final
        )
        self.absorb(result.outcome)
        self.charged += result.charged_usd
        event(f"spend: {result.flag}")
        counted = 0 if result.flag == "duplicate" else cost
        assert result.charged_usd + result.overspend_usd == counted
        if result.overspend_usd > 0:
            assert result.flag in ("unknown", "closed", "exhausted", "over_limit")
        if result.flag in ("exhausted", "over_limit"):
            assert result.overspend_usd > 0
        grant = wallet.get(gid)
        settled = final and result.flag != "duplicate"
        if grant is not None and reservation is not None and settled:
            assert reservation not in grant.reservations

    @rule(data=st.data(), amount=POSITIVE, reservation=RESERVATION_IDS)
    def authorize(self, data: st.DataObject, amount: Decimal, reservation: str) -> None:
        gid = self.pick(data)
        wallet = self.wallet(gid)
        grant = wallet.get(gid)
        before = None if grant is None else grant.balance_usd
        held = grant is not None and reservation in grant.reservations
        answer = wallet.authorize(gid, amount, reservation, self.now)
        event(f"authorize: {answer.http_status}")
        if answer.approved and not held:
            assert before is not None and before >= amount
            assert answer.balance_usd == before - amount
        if not answer.approved:
            assert answer.http_status == 402 and answer.reason

    @rule(data=st.data(), reservation=RESERVATION_IDS)
    def release(self, data: st.DataObject, reservation: str) -> None:
        gid = self.pick(data)
        self.absorb(self.wallet(gid).release(gid, reservation, self.now))
        grant = self.wallet(gid).get(gid)
        assert grant is None or reservation not in grant.reservations

    @rule(seconds=st.integers(1, 120))
    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def release_expired(self) -> None:
        for wallet in self.wallets:
            self.absorb(wallet.release_expired(self.now))
        for grant in self.grants():
            assert all(r.expires_at > self.now for r in grant.reservations.values())

    @rule()
    def expire(self) -> None:
        for wallet in self.wallets:
            self.absorb(wallet.expire(self.now))
        for grant in self.grants():
            due = grant.expires_at is not None and grant.expires_at <= self.now
            assert grant.closed or not due

    @rule()
    def restart(self) -> None:
        """Every partition recovers its grants and in-flight transfers from JSON."""
        for wallet in self.wallets:
            states = [loads(dumps(g.to_dict())) for g in wallet.grants()]
            wallet.store = MemoryStore(Grant.from_dict(s) for s in states)
        self.pending = [
            Transfer.model_validate(loads(dumps(t.to_json_dict())))
            for t in self.pending
        ]

    def heads(self) -> list[int]:
        """Pending transfers that are first between their sender and receiver."""
        pairs = [(t.from_id, t.to_id) for t in self.pending]
        return [i for i, pair in enumerate(pairs) if pair not in pairs[:i]]

    def deliver_one(self, index: int) -> None:
        transfer = self.pending.pop(index)
        self.absorb(self.wallet(transfer.to_id).receive(transfer))
        event(f"deliver: {transfer.kind}")
        self.delivered.append(transfer)

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        self.deliver_one(data.draw(st.sampled_from(self.heads())))

    @precondition(lambda self: self.pending)
    @rule()
    def deliver_all(self) -> None:
        while self.pending:
            self.deliver_one(self.heads()[-1])

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        transfer = data.draw(st.sampled_from(self.delivered))
        out = self.wallet(transfer.to_id).receive(transfer)
        assert out == Outcome()

    @invariant()
    def books_balance(self) -> None:
        grants = self.grants()
        assert ledger_problems(grants, settled=not self.pending) == []
        totals = ledger_totals(grants).values()
        in_transit = sum((t.in_transit_usd for t in totals), Decimal(0))
        assert in_transit == sum((t.amount_usd for t in self.pending), Decimal(0))
        assert sum((t.minted_usd for t in totals), Decimal(0)) == self.minted
        assert sum((g.spent_usd for g in grants), Decimal(0)) == self.charged

    @invariant()
    def spend_and_holds_within_what_was_given(self) -> None:
        for g in self.grants():
            given = g.minted_usd + g.received_usd - g.sent_usd - g.returned_usd
            assert g.balance_usd >= 0
            assert g.spent_usd + g.reserved_usd <= given

    def teardown(self) -> None:
        self.deliver_all()
        assert ledger_problems(self.grants(), settled=True) == []


class PartitionedWalletMachine(WalletMachine):
    partitions = 3


_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestWalletInOneProcess = WalletMachine.TestCase
TestWalletInOneProcess.settings = _SETTINGS
TestWalletOverPartitions = PartitionedWalletMachine.TestCase
TestWalletOverPartitions.settings = _SETTINGS
