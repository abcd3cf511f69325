"""Grant cycles over two partitions, with crashes: every op counts once.

`World` plays the worker's part without Kafka: a log of op values per
partition, a stored entry per grant, and cycles that publish transfers to the
logs before they store. Rows land (in a table keyed by row id) from the
outboxes of the stored values, as the worker lands them from the changelog. A
cycle that crashes before its store has its ops read again; one that crashes
after it has them read again too, and skips them.
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
from models.grant_entries import Decoded
from models.grant_ledger import ledger_problems
from models.grant_ops import (
    CommandOp,
    GrantOp,
    TransferOp,
    debit_value,
    decode_op,
    encode_op,
)
from models.grant_replay import UNKNOWN_MARKS_S, GrantEntry
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


def _changes(cycle: GrantCycle, op: GrantOp) -> bool:
    """Apply `op`; True if it changed a grant (see `COUNT_ONCE`)."""
    before = sum(cycle.emitted.ops[k] for k in COUNT_ONCE)
    cycle.apply(op)
    return sum(cycle.emitted.ops[k] for k in COUNT_ONCE) > before


def partition_of(grant_id: str) -> int:
    return sum(map(ord, grant_id)) % 2


class World:
    """Two partitions of grant ops, their stored entries, and the rows landed."""

    def __init__(self) -> None:
        self.logs: list[list[bytes]] = [[], []]
        self.done = [0, 0]
        self.live: list[dict[str, dict[str, Any]]] = [{}, {}]
        self.decoded: list[Decoded] = [{}, {}]
        self.rows: dict[str, ActivityRow] = {}
        self.ops: Counter[tuple[str, str]] = Counter()
        self.applied: Counter[str] = Counter()
        self.source_offset = 0
        self.debits: list[tuple[str, bytes]] = []

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
        """Charge an event read at the next offset of an events partition."""
        source = (0, len(self.debits))
        value = encode_op(
            debit_value(event_id, grant_id, to_usd(cost), T0, source=source)
        )
        self.debits.append((grant_id, value))
        for _ in range(copies):
            self.append(grant_id, value)

    def replay_debits(self, count: int) -> None:
        """The ingest reads its last `count` events again after a crash."""
        for grant_id, value in self.debits[-count:]:
            self.append(grant_id, value)

    def cycle(
        self, partition: int, size: int, *, crash: str | None = None
    ) -> GrantCycle:
        """Apply up to `size` ops, publish, store; `crash` before or after storing."""
        start = self.done[partition]
        batch = self.logs[partition][start : start + size]
        cycle = GrantCycle(
            self.live[partition], now=T0, decoded=self.decoded[partition]
        )
        applied = [op.cause for op in map(decode_op, batch) if _changes(cycle, op)]
        changed = cycle.changed()
        for transfer in cycle.emitted.transfers:
            self.append(transfer.to_id, encode_op(TransferOp(transfer=transfer)))
        if crash is not None:
            self.decoded[partition].clear()
        if crash == "before_store":
            return cycle
        self.store(partition, changed)
        self.ops.update(cycle.emitted.ops)
        self.applied.update(applied)
        if crash == "after_store":
            return cycle
        cycle.store.decoded_after(changed)
        self.done[partition] = start + len(batch)
        return cycle

    def store(self, partition: int, changed: dict[str, Any]) -> None:
        """Store values; land the rows in their outboxes, as the changelog does."""
        for grant_id, value in changed.items():
            if value is None:
                self.live[partition].pop(grant_id, None)
                continue
            self.live[partition][grant_id] = value
            for row in value["outbox"]:
                self.rows[row["row_id"]] = ActivityRow.from_dict(row)

    def settle(self) -> None:
        while any(self.done[p] < len(self.logs[p]) for p in (0, 1)):
            for p in (0, 1):
                self.cycle(p, 5)

    def grants(self) -> list[Grant]:
        entries = [GrantEntry.from_dict(v) for live in self.live for v in live.values()]
        return [e.grant for e in entries if e.grant is not None]

    def grant(self, grant_id: str) -> Grant:
        value = self.live[partition_of(grant_id)][grant_id]
        grant = GrantEntry.from_dict(value).grant
        assert grant is not None
        return grant

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
    world.cycle(partition_of("a"), 10, crash="before_store")
    world.cycle(partition_of("a"), 10)
    world.debit("e-1", "b", "0.25")
    world.cycle(partition_of("b"), 10, crash="before_store")
    world.settle()

    a, b = world.grant("a"), world.grant("b")
    assert a.balance_usd == to_usd("7.50")
    assert (b.balance_usd, b.spent_usd) == (to_usd("2.25"), to_usd("0.25"))
    assert ledger_problems(world.grants(), settled=True) == []
    assert world.row_sum("spend") == to_usd("0.25")
    assert world.row_sum("fund_out") == to_usd("2.50")


def test_an_ingest_replay_of_300_events_on_one_grant_counts_each_once() -> None:
    world = World()
    world.command("open", "a", limit_usd="5.00")
    for n in range(300):
        world.debit(f"e-{n}", "a", "0.01")
    world.replay_debits(300)
    world.settle()

    assert world.grant("a").spent_usd == to_usd("3.00")
    assert world.ops["debit", "skipped"] == 300


def test_an_event_flagged_unknown_is_not_charged_when_replayed_later() -> None:
    world = World()
    world.debit("e-1", "late", "0.05")
    world.settle()
    world.command("open", "late", limit_usd="1.00")
    world.replay_debits(1)
    world.settle()

    assert world.grant("late").spent_usd == 0
    assert world.ops["debit", "unknown"] == world.ops["debit", "skipped"] == 1


def test_the_marks_of_a_grant_never_opened_are_forgotten_after_a_while() -> None:
    world = World()
    world.debit("e-1", "never", "0.05")
    world.settle()
    p = partition_of("never")
    assert GrantEntry.from_dict(world.live[p]["never"]).grant is None

    early = GrantCycle(world.live[p], now=T0)
    early.sweep(T0 + timedelta(seconds=UNKNOWN_MARKS_S - 1))
    late = GrantCycle(world.live[p], now=T0)
    late.sweep(T0 + timedelta(seconds=UNKNOWN_MARKS_S))

    assert early.changed() == {}
    assert late.changed() == {"never": None}


def test_a_replayed_cycle_writes_rows_with_the_same_ids() -> None:
    world = World()
    world.command("open", "a", limit_usd="1.00")
    world.debit("e-1", "a", "0.40")
    world.debit("e-2", "a", "0.70")
    p = partition_of("a")

    crashed = world.cycle(p, 10, crash="before_store")
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


class Worker:
    """One partition's stored entries, changed in cycles as the worker does."""

    def __init__(self) -> None:
        self.live: dict[str, dict[str, Any]] = {}
        self.decoded: Decoded = {}

    def cycle(self, **kwargs: Any) -> GrantCycle:
        return GrantCycle(self.live, now=T0, decoded=self.decoded, **kwargs)

    def store(self, cycle: GrantCycle) -> list[str]:
        """Store the cycle; the ids of the rows it made."""
        changed = cycle.changed()
        self.live.update({k: v for k, v in changed.items() if v is not None})
        cycle.store.decoded_after(changed)
        return [row.row_id for row in cycle.emitted.rows]

    def open(self, *grant_ids: str) -> None:
        cycle = self.cycle()
        for n, gid in enumerate(grant_ids):
            op = CommandOp(
                command=_open(gid, "1.00"), source_partition=0, source_offset=n
            )
            cycle.apply(op)
        self.store(cycle)

    def grant(self, grant_id: str) -> Grant:
        grant = GrantEntry.from_dict(self.live[grant_id]).grant
        assert grant is not None
        return grant


def _held(cycle: GrantCycle, grant_id: str, rid: str, now: datetime) -> None:
    answer = cycle.authorize(grant_id, to_usd("0.10"), rid, now, hold_s=30)
    assert answer.approved


def test_a_hold_is_stored_and_a_later_sweep_releases_it() -> None:
    worker = Worker()
    worker.open("g")
    first = worker.cycle()
    _held(first, "g", "r1", T0)
    _held(first, "g", "r2", T0 + timedelta(seconds=20))
    worker.store(first)
    assert worker.grant("g").reserved_usd == to_usd("0.20")

    sweeps = []
    for after_s in (10, 31, 51):
        sweep = worker.cycle()
        sweep.sweep(T0 + timedelta(seconds=after_s))
        sweeps.append(worker.store(sweep))

    grant = worker.grant("g")
    assert (grant.reserved_usd, grant.balance_usd) == (0, to_usd("1.00"))
    assert sweeps[0] == [] and len(sweeps[1]) == len(sweeps[2]) == 1
    assert sweeps[1] != sweeps[2]


def test_a_cycle_that_was_not_stored_leaves_no_trace() -> None:
    worker = Worker()
    worker.open("g")
    failed = worker.cycle()
    _held(failed, "g", "r1", T0)
    failed.changed()
    failed.store.decoded_after({})

    assert worker.cycle().store.get("g") == worker.grant("g")
    assert worker.grant("g").reserved_usd == 0


def test_each_stored_entry_carries_its_cycles_rows_and_no_older_ones() -> None:
    worker = Worker()
    worker.open("g", "h")
    first = worker.cycle()
    _held(first, "g", "r1", T0)
    first_rows = worker.store(first)
    second = worker.cycle()
    _held(second, "h", "r1", T0)
    worker.store(second)

    assert [r["row_id"] for r in worker.live["g"]["outbox"]] == first_rows
    assert [r["kind"] for r in worker.live["h"]["outbox"]] == ["reserve"]
    third = worker.cycle()
    _held(third, "g", "r2", T0)
    worker.store(third)
    assert [r["row_id"] for r in worker.live["g"]["outbox"]] != first_rows


def test_a_row_of_a_grant_without_an_entry_gets_one_to_travel_in() -> None:
    live: dict[str, dict[str, Any]] = {}
    cycle = GrantCycle(live, now=T0)
    cycle.apply(decode_op(encode_op(debit_value("e-1", "ghost", to_usd("1"), T0))))

    changed = cycle.changed()

    [row] = changed["ghost"]["outbox"]
    assert (row["kind"], row["amount_usd"]) == ("overspend", "1.000000000")
    assert changed["ghost"]["grant"] is None


def test_a_sweep_visits_only_the_grants_this_worker_owns() -> None:
    worker = Worker()
    worker.open("mine", "theirs")
    setup = worker.cycle()
    for gid in ("mine", "theirs"):
        _held(setup, gid, "r", T0)
    worker.store(setup)

    sweep = worker.cycle(owned_ids=lambda: ["mine"])
    sweep.sweep(T0 + timedelta(minutes=5))

    assert set(sweep.changed()) == {"mine"}


def test_an_expired_child_closes_and_its_money_returns_to_the_parent() -> None:
    world = World()
    world.command("open", "a", limit_usd="3.00")
    expires_at = T0 + timedelta(minutes=1)
    world.command("open", "b", parent_id="a", limit_usd="1.00", expires_at=expires_at)
    world.settle()
    p = partition_of("b")
    sweep = GrantCycle(world.live[p], now=T0)
    sweep.sweep(expires_at)
    world.store(p, sweep.changed())
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
CRASHES = st.sampled_from([None, None, "before_store", "after_store"])
ACTIONS = st.one_of(
    st.tuples(st.just("open"), GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("child"), GRANT_IDS, GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("fund"), GRANT_IDS, GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("top_up"), GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("close"), GRANT_IDS, COPIES),
    st.tuples(st.just("debit"), GRANT_IDS, AMOUNTS, COPIES),
    st.tuples(st.just("replay"), st.integers(1, 200)),
    st.tuples(st.just("cycle"), st.integers(0, 1), st.integers(1, 4), CRASHES),
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
    elif kind == "replay":
        world.replay_debits(args[0])
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
    considered = ("applied", "refused", "skipped")
    assert sum(world.ops["command", o] for o in considered) >= world.source_offset
    minted = sum((g.minted_usd for g in grants), to_usd(0))
    roots_opened = sum(
        (
            r.activity.amount_usd
            for r in world.rows.values()
            if r.activity.kind == "open" and r.activity.parent_id is None
        ),
        to_usd(0),
    )
    assert minted == roots_opened + world.row_sum("top_up")
    spent = sum((g.spent_usd for g in grants), to_usd(0))
    assert world.row_sum("spend") == spent
    assert world.row_sum("spend") + world.row_sum("overspend") == sum(
        debits.values(), to_usd(0)
    )
