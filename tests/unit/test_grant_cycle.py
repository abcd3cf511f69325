"""Grant cycles over two partitions, with crashes: every op counts once.

`World` plays the worker's part without Kafka: a log of op values per
partition, a stored entry per grant, and cycles that publish (transfers to the
logs, rows to a table keyed by row id) before they write back. A crashed cycle
publishes and then loses its write-back, so its ops are read again.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import InvalidRecord
from models.grant_cycle import ActivityRow, GrantCycle
from models.grant_ledger import ledger_problems
from models.grant_ops import (
    CommandOp,
    TransferOp,
    debit_value,
    decode_op,
    encode_op,
)
from models.grant_replay import GrantEntry
from models.grants import Grant
from models.money import to_usd
from models.records import GrantCommand

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


COUNT_ONCE = [
    ("command", "applied"),
    ("debit", "charged"),
    ("debit", "over_limit"),
    ("debit", "exhausted"),
    ("debit", "closed"),
]
"""Op outcomes that change a grant: each op may have one at most, once."""


def partition_of(grant_id: str) -> int:
    return sum(map(ord, grant_id)) % 2


class World:
    """Two partitions of grant ops, their stored entries, and the rows landed."""

    def __init__(self) -> None:
        self.logs: list[list[bytes]] = [[], []]
        self.done = [0, 0]
        self.live: list[dict[str, dict[str, Any]]] = [{}, {}]
        self.rows: dict[str, ActivityRow] = {}
        self.ops: Counter[tuple[str, str]] = Counter()
        self.applied: Counter[str] = Counter()
        self.source_offset = 0

    def append(self, key: str, value: bytes) -> None:
        self.logs[partition_of(key)].append(value)

    def command(
        self, command: str, grant_id: str, *, copies: int = 1, **fields: Any
    ) -> CommandOp:
        """Forward one command read at the next source offset, `copies` times."""
        cmd = GrantCommand.model_validate(
            {"command": command, "grant_id": grant_id, "ts": T0, **fields}
        )
        op = CommandOp(
            command=cmd, source_partition=0, source_offset=self.source_offset
        )
        self.source_offset += 1
        for _ in range(copies):
            self.append(op.key, encode_op(op))
        return op

    def debit(self, event_id: str, grant_id: str, cost: str, copies: int = 1) -> None:
        value = encode_op(debit_value(event_id, grant_id, to_usd(cost), T0))
        for _ in range(copies):
            self.append(grant_id, value)

    def cycle(self, partition: int, size: int, *, crash: bool = False) -> GrantCycle:
        """Apply up to `size` ops, publish, and write back unless it crashes."""
        start = self.done[partition]
        batch = self.logs[partition][start : start + size]
        cycle = GrantCycle(self.live[partition])
        applied: list[str] = []
        for raw in batch:
            op = decode_op(raw)
            before = sum(cycle.emitted.ops[k] for k in COUNT_ONCE)
            cycle.apply(op)
            if sum(cycle.emitted.ops[k] for k in COUNT_ONCE) > before:
                applied.append(op.cause)
        for transfer in cycle.emitted.transfers:
            self.append(transfer.to_id, encode_op(TransferOp(transfer=transfer)))
        self.rows.update((row.row_id, row) for row in cycle.emitted.rows)
        if not crash:
            self.live[partition].update(cycle.store.changed())
            self.done[partition] = start + len(batch)
            self.ops.update(cycle.emitted.ops)
            self.applied.update(applied)
        return cycle

    def settle(self) -> None:
        while any(self.done[p] < len(self.logs[p]) for p in (0, 1)):
            for p in (0, 1):
                self.cycle(p, 5)

    def grants(self) -> list[Grant]:
        return [
            GrantEntry.from_dict(value).grant
            for live in self.live
            for value in live.values()
        ]

    def grant(self, grant_id: str) -> Grant:
        value = self.live[partition_of(grant_id)][grant_id]
        return GrantEntry.from_dict(value).grant

    def row_sum(self, kind: str) -> Decimal:
        rows = self.rows.values()
        return sum(
            (r.activity.amount_usd for r in rows if r.activity.kind == kind), to_usd(0)
        )


def test_a_command_forwarded_twice_is_applied_once() -> None:
    world = World()
    world.command("open", "boss", limit_usd="5.00")
    world.command("top_up", "boss", amount_usd="1.00", copies=2)
    world.settle()

    boss = world.grant("boss")
    assert boss.minted_usd == boss.balance_usd == to_usd("6.00")
    assert world.ops["command", "skipped"] == 1


def test_a_gateway_retry_with_the_same_command_id_is_applied_once() -> None:
    world = World()
    world.command("open", "boss", limit_usd="5.00")
    world.command("top_up", "boss", amount_usd="1.00", command_id="t-1")
    world.command("top_up", "boss", amount_usd="1.00", command_id="t-1")
    world.command("top_up", "boss", amount_usd="1.00")
    world.settle()

    assert world.grant("boss").minted_usd == to_usd("7.00")


def test_a_crash_after_publishing_replays_the_cycle_once() -> None:
    world = World()
    world.command("open", "a", limit_usd="10.00")
    world.command("open", "b", parent_id="a", limit_usd="2.00")
    world.command("fund", "b", parent_id="a", amount_usd="0.50")
    world.cycle(partition_of("a"), 10, crash=True)
    world.cycle(partition_of("a"), 10)
    world.debit("e-1", "b", "0.25")
    world.cycle(partition_of("b"), 10, crash=True)
    world.settle()

    a, b = world.grant("a"), world.grant("b")
    assert a.balance_usd == to_usd("7.50")
    assert (b.balance_usd, b.spent_usd) == (to_usd("2.25"), to_usd("0.25"))
    assert ledger_problems(world.grants(), settled=True) == []
    assert world.row_sum("spend") == to_usd("0.25")
    assert world.row_sum("fund_out") == to_usd("2.50")


def test_a_replayed_cycle_writes_rows_with_the_same_ids() -> None:
    world = World()
    world.command("open", "a", limit_usd="1.00")
    world.debit("e-1", "a", "0.40")
    world.debit("e-2", "a", "0.70")
    p = partition_of("a")

    crashed = world.cycle(p, 10, crash=True)
    replayed = world.cycle(p, 10)

    assert [r.row_id for r in crashed.emitted.rows] == [
        r.row_id for r in replayed.emitted.rows
    ]
    ids = [r.row_id for r in replayed.emitted.rows]
    assert len(ids) == len(set(ids))
    assert replayed.emitted.flags == {"over_limit": 1}


def test_events_on_unknown_closed_and_exhausted_grants_are_flagged() -> None:
    world = World()
    world.command("open", "a", limit_usd="0.10")
    world.command("open", "c", limit_usd="1.00")
    world.command("close", "c")
    world.debit("e-1", "a", "0.10")
    world.debit("e-2", "a", "0.05")
    world.debit("e-3", "c", "0.05")
    world.debit("e-4", "nobody", "0.05")
    flags: Counter[str] = Counter()
    while any(world.done[p] < len(world.logs[p]) for p in (0, 1)):
        for p in (0, 1):
            flags.update(world.cycle(p, 10).emitted.flags)

    assert flags == {"exhausted": 1, "closed": 1, "unknown": 1}
    assert world.row_sum("overspend") == to_usd("0.15")
    exhausted = [r for r in world.rows.values() if r.activity.kind == "exhausted"]
    assert [r.activity.grant_id for r in exhausted] == ["a"]


def _held(cycle: GrantCycle, grant_id: str, rid: str, now: datetime) -> None:
    answer = cycle.authorize(grant_id, to_usd("0.10"), rid, now, hold_s=30)
    assert answer.approved


def test_a_hold_is_stored_and_a_later_sweep_releases_it() -> None:
    live: dict[str, dict[str, Any]] = {}
    opening = GrantCycle(live)
    opening.apply(
        CommandOp(command=_open("g", "1.00"), source_partition=0, source_offset=0)
    )
    live.update(opening.store.changed())
    first = GrantCycle(live)
    _held(first, "g", "r1", T0)
    _held(first, "g", "r2", T0 + timedelta(seconds=20))
    live.update(first.store.changed())
    assert GrantEntry.from_dict(live["g"]).grant.reserved_usd == to_usd("0.20")

    sweeps = []
    for after_s in (10, 31, 51):
        sweep = GrantCycle(live)
        sweep.sweep(T0 + timedelta(seconds=after_s))
        live.update(sweep.store.changed())
        sweeps.append([r.row_id for r in sweep.emitted.rows])

    grant = GrantEntry.from_dict(live["g"]).grant
    assert (grant.reserved_usd, grant.balance_usd) == (0, to_usd("1.00"))
    assert sweeps[0] == [] and len(sweeps[1]) == len(sweeps[2]) == 1
    assert sweeps[1] != sweeps[2]


def test_a_sweep_visits_only_the_grants_this_worker_owns() -> None:
    live: dict[str, dict[str, Any]] = {}
    setup = GrantCycle(live)
    for n, gid in enumerate(("mine", "theirs")):
        setup.apply(
            CommandOp(command=_open(gid, "1"), source_partition=0, source_offset=n)
        )
        _held(setup, gid, "r", T0)
    live.update(setup.store.changed())

    sweep = GrantCycle(live, owned_ids=lambda: ["mine"])
    sweep.sweep(T0 + timedelta(minutes=5))

    assert set(sweep.store.changed()) == {"mine"}


def test_an_expired_child_closes_and_its_money_returns_to_the_parent() -> None:
    world = World()
    world.command("open", "a", limit_usd="3.00")
    expires_at = T0 + timedelta(minutes=1)
    world.command("open", "b", parent_id="a", limit_usd="1.00", expires_at=expires_at)
    world.settle()
    p = partition_of("b")
    sweep = GrantCycle(world.live[p])
    sweep.sweep(expires_at)
    world.live[p].update(sweep.store.changed())
    for transfer in sweep.emitted.transfers:
        world.append(transfer.to_id, encode_op(TransferOp(transfer=transfer)))
    world.settle()

    assert world.grant("b").status == "closed"
    assert world.grant("a").balance_usd == to_usd("3.00")
    assert world.grant("a").children == []
    assert ledger_problems(world.grants(), settled=True) == []


def _open(grant_id: str, limit: str) -> GrantCommand:
    return GrantCommand(
        command="open", grant_id=grant_id, ts=T0, limit_usd=to_usd(limit)
    )


def test_the_stored_deadline_is_the_grants_next_deadline() -> None:
    grant = Grant.root(
        "g", to_usd("1"), opened_at=T0, expires_at=T0 + timedelta(hours=1)
    )
    entry = GrantEntry(grant).to_dict()
    assert entry["deadline"] == (T0 + timedelta(hours=1)).isoformat()
    assert GrantEntry.from_dict(entry).grant == grant


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"op": "debit", "grant_id": "g"}', "event_id: field required"),
        (b'{"op": "mint", "grant_id": "g"}', "does not match any of the expected tags"),
        (b"[1]", "value must be a JSON object"),
    ],
)
def test_an_op_that_is_not_one_says_why(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        decode_op(raw)


# Random commands, debits and crashes over two partitions.

GRANT_IDS = st.sampled_from(["a", "b", "c", "d"])
AMOUNTS = st.sampled_from(["0.05", "0.10", "0.50", "1.00", "3.00"])
COPIES = st.sampled_from([1, 2])
ACTIONS = st.one_of(
    st.tuples(st.just("open"), GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("child"), GRANT_IDS, GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("fund"), GRANT_IDS, GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("top_up"), GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("close"), GRANT_IDS, COPIES),
    st.tuples(st.just("debit"), GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("cycle"), st.integers(0, 1), st.integers(1, 4), st.booleans()),
)


def _act(world: World, action: tuple[Any, ...], debits: dict[str, Decimal]) -> None:
    kind, *args = action
    if kind == "open":
        world.command("open", args[0], limit_usd=args[1], copies=args[2])
    elif kind == "child":
        world.command(
            "open", args[0], parent_id=args[1], limit_usd=args[2], copies=args[3]
        )
    elif kind == "fund":
        world.command(
            "fund", args[0], parent_id=args[1], amount_usd=args[2], copies=args[3]
        )
    elif kind == "top_up":
        world.command("top_up", args[0], amount_usd=args[1], copies=args[2])
    elif kind == "close":
        world.command("close", args[0], copies=args[1])
    elif kind == "debit":
        event_id = f"e-{len(debits)}"
        debits[event_id] = to_usd(args[1])
        world.debit(event_id, args[0], args[1], copies=args[2])
    else:
        world.cycle(args[0], args[1], crash=args[2])


@settings(max_examples=200, deadline=None)
@given(st.lists(ACTIONS, max_size=40))
def test_crashes_and_redeliveries_neither_create_nor_lose_money(
    actions: list[tuple[Any, ...]],
) -> None:
    world = World()
    debits: dict[str, Decimal] = {}
    for action in actions:
        _act(world, action, debits)
    world.settle()

    grants = world.grants()
    assert ledger_problems(grants, settled=True) == []
    assert all(n == 1 for n in world.applied.values())
    commands = world.ops["command", "applied"] + world.ops["command", "refused"]
    assert commands >= world.source_offset
    spent = sum((g.spent_usd for g in grants), to_usd(0))
    assert world.row_sum("spend") == spent
    assert world.row_sum("spend") + world.row_sum("overspend") == sum(
        debits.values(), to_usd(0)
    )
