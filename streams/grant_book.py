"""The one place a worker changes its grants: cycles, one at a time.

Items (op batches from the grants agent, authorizations from the HTTP API,
sweeps from a timer) queue while a cycle runs; the next cycle takes them all,
so authorizations under load share their Kafka round trips. A cycle, in this
order:

1. apply every item to a copy of the stored entries (`models.grant_cycle`);
2. if the cycle moves money or reports a status: send its transfers (to
   grant-ops, keyed by `to_id`) and statuses (to spend.grant-status) and wait
   for the acks;
3. store the changed entries in the grants table, in memory and on its
   changelog (each carries its activity rows: `streams.grant_landing`); wait
   for the acks;
4. answer the items: an authorization's 200 goes out only now, so a worker
   killed after answering keeps the hold when its partition is restored.

A crash before 3 is done replays the cycle's ops (the grants agent commits
its offsets only after its batch's cycle); `models.grant_cycle` says why a
replay is harmless. An authorization has no transfer and no status, so it
costs one round trip.

The table is written outside of any Faust stream, so it partitions by key
(`use_partitioner`): a grant's entry, its ops and its changelog records all
go to the partition of its id under Kafka's default partitioner.

Known shortcomings:
- a cycle encodes each changed grant's whole state, its holds included, so a
  grant with hundreds of calls in flight costs milliseconds per change; give
  such a budget child grants, or store holds under keys of their own;
- statuses are at least once: a crash between 2 and 3 sends them again;
- if 3 fails after the table took a value, memory is ahead of the changelog
  until the grant is stored again (the ops are replayed and skipped in memory).
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust

from models.codec import dumps
from models.errors import InvalidRecord
from models.grant_api import AuthorizeRequest
from models.grant_cycle import Emitted, GrantCycle
from models.grant_entries import Decoded
from models.grant_ops import GrantOp, TransferOp, decode_op, encode_op
from models.grant_outcomes import AuthorizeResult
from models.grant_replay import GrantEntry
from streams import metrics
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)


class LiveEntries(Mapping[str, dict[str, Any]]):
    """The grants table's entries by grant id (the table keys are UTF-8 bytes)."""

    def __init__(self, table: faust.Table) -> None:
        self.table = table

    def __getitem__(self, grant_id: str) -> dict[str, Any]:
        value: dict[str, Any] = self.table.data[grant_id.encode()]
        return value

    def __iter__(self) -> Iterator[str]:
        return (key.decode() for key in list(self.table.data.keys()))

    def __len__(self) -> int:
        return len(self.table.data)


@dataclass
class _Item:
    run: Callable[[GrantCycle], Any]
    done: "asyncio.Future[Any]"


class GrantBook:
    """Every change to this worker's grants goes through `submit`, in cycles."""

    def __init__(self, app: faust.App, table: faust.Table, settings: Settings) -> None:
        self.app = app
        self.table = table
        self.live = LiveEntries(table)
        self.topics = Topics(settings.topic_prefix)
        self.hold_s = settings.grant_hold_s
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._running = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._partitions: dict[bytes, int] = {}
        self._decoded: Decoded = {}

    async def submit(self, run: Callable[[GrantCycle], Any]) -> Any:
        """Run `run` on the next cycle; its result once the cycle is stored."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(run, done))
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="grant-book")
        return await done

    async def apply_ops(self, values: list[bytes]) -> None:
        """Apply a batch of grant-ops values, in order."""
        ops = [op for value in values if (op := _decode(value)) is not None]
        if ops:
            await self.submit(lambda cycle: _apply_each(cycle, ops))

    async def authorize(
        self, grant_id: str, request: AuthorizeRequest, now: datetime
    ) -> AuthorizeResult:
        """Hold the amount on the grant, or refuse; answered once stored."""
        rid = request.reservation_id or uuid.uuid4().hex
        hold_s = request.hold_s or self.hold_s
        result: AuthorizeResult = await self.submit(
            lambda cycle: cycle.authorize(
                grant_id, request.amount_usd, rid, now, hold_s=hold_s
            )
        )
        answer = "approved" if result.approved else "refused"
        metrics.GRANT_AUTHORIZATIONS.labels(answer).inc()
        return result

    async def sweep(self, now: datetime) -> None:
        """Release held amounts that timed out and close expired grants."""
        await self.submit(lambda cycle: cycle.sweep(now))

    def view(self, grant_id: str) -> dict[str, Any] | None:
        """What `GET /v1/grants/{id}` shows, from the stored entry."""
        value = self.live.get(grant_id)
        grant = None if value is None else GrantEntry.from_dict(value).grant
        return None if grant is None else grant.view()

    def routable(self) -> bool:
        """Whether grant ids can be placed on partitions yet (metadata known)."""
        try:
            self._partition(b"")
        except Exception:
            return False
        return True

    def owns(self, grant_id: str) -> bool:
        """Whether this worker applies the grant's changes now."""
        return self._partition(grant_id.encode()) in self._active_partitions()

    async def drain(self) -> None:
        """Wait until the cycle running now (if any) is stored; forget decodings."""
        async with self._running:
            self._decoded.clear()

    async def stop(self) -> None:
        """Finish the running cycle and stop; items still queued get an error."""
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for item in self._queue:
            item.done.set_exception(RuntimeError("the worker is stopping"))
        self._queue.clear()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            items, self._queue = self._queue, []
            if items:
                async with self._running:
                    await self._cycle(items)

    async def _cycle(self, items: list[_Item]) -> None:
        """One cycle; the steps are numbered in the module docstring."""
        started_s = time.monotonic()
        cycle = GrantCycle(
            self.live,
            self._owned_ids,
            now=datetime.now(UTC),
            hold_s=self.hold_s,
            decoded=self._decoded,
        )
        answers = [_attempt(item, cycle) for item in items]
        changed = cycle.changed()
        try:
            await self._publish(cycle.emitted)
            await self._store(changed)
        except Exception as exc:
            log.exception("grant cycle failed items=%d; nothing stored", len(items))
            cycle.store.decoded_after({})
            for item in items:
                item.done.set_exception(exc)
            return
        cycle.store.decoded_after(changed)
        for item, (result, error) in zip(items, answers, strict=True):
            if error is None:
                item.done.set_result(result)
            else:
                item.done.set_exception(error)
        _measure(cycle.emitted, time.monotonic() - started_s)

    async def _publish(self, emitted: Emitted) -> None:
        """Step 2: transfers and statuses, acknowledged before anything is stored."""
        send = self.app.producer.send
        topics = self.topics
        acks = []
        for transfer in emitted.transfers:
            value = encode_op(TransferOp(transfer=transfer))
            key = transfer.to_id.encode()
            acks.append(await send(topics.grant_ops, key, value, None, None, None))
        for status in emitted.statuses:
            value = dumps(status.to_json_dict())
            key = status.grant_id.encode()
            acks.append(await send(topics.grant_status, key, value, None, None, None))
        await asyncio.gather(*acks)

    async def _store(self, changed: dict[str, dict[str, Any] | None]) -> None:
        """Step 3: entries to the table and its changelog; None deletes.

        The changelog goes straight to the producer, as JSON the way Faust
        reads it back, rather than through the table's buffer: a cycle waits
        for these acks, and the buffer's task adds a hop.
        """
        send = self.app.producer.send
        changelog = self.topics.grants_changelog
        acks = []
        for grant_id, value in changed.items():
            key = grant_id.encode()
            if value is None:
                self.table.data.pop(key, None)
            else:
                self.table.data[key] = value
            raw = None if value is None else dumps(value)
            partition = self._partition(key)
            acks.append(await send(changelog, key, raw, partition, None, None))
        await asyncio.gather(*acks)

    def _owned_ids(self) -> list[str]:
        active = self._active_partitions()
        return [
            key.decode()
            for key in list(self.table.data.keys())
            if self._partition(key) in active
        ]

    def _active_partitions(self) -> set[int]:
        names = (self.topics.grants_changelog, self.topics.grant_ops)
        actives = self.app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic in names}

    def _partition(self, key: bytes) -> int:
        partition = self._partitions.get(key)
        if partition is None:
            tp = self.app.producer.key_partition(self.topics.grants_changelog, key)
            partition = self._partitions[key] = tp.partition
        return partition


def _decode(value: bytes) -> GrantOp | None:
    try:
        return decode_op(value)
    except InvalidRecord as exc:
        # Only workers write grant-ops: a bad op is a bug, not bad input.
        log.error("skipped an undecodable grant op reason=%s", exc.reason)
        return None


def _apply_each(cycle: GrantCycle, ops: list[GrantOp]) -> None:
    """Apply ops in order; one that fails (a bug) is logged and skipped."""
    for op in ops:
        try:
            cycle.apply(op)
        except Exception:
            log.exception("skipped a grant op that failed cause=%s", op.cause)
            cycle.emitted.ops[op.op, "failed"] += 1


def _attempt(item: _Item, cycle: GrantCycle) -> tuple[Any, Exception | None]:
    """Run one item; an error fails that item only (a 400, a logged op)."""
    try:
        return item.run(cycle), None
    except Exception as exc:
        log.exception("grant item failed; the rest of the cycle goes on")
        return None, exc


def _measure(emitted: Emitted, took_s: float) -> None:
    for (op, outcome), count in emitted.ops.items():
        metrics.GRANT_OPS.labels(op, outcome).inc(count)
    for flag, count in emitted.flags.items():
        metrics.GRANT_FLAGGED.labels(flag).inc(count)
    if emitted.transfers:
        metrics.GRANT_TRANSFERS_SENT.inc(len(emitted.transfers))
    metrics.GRANT_CYCLE_SECONDS.observe(took_s)
