"""The velocity breaker on the events path: session states per events partition.

`BreakerProcessor` is an `EventProcessor` (`streams.processors` gives the order
of the hooks):

- `add` feeds each accepted event to its session (`models.breaker.Breaker`),
  lateness measured against the partition's newest event time; a trip waits
  for `after_poll`;
- `after_poll` publishes trips and unfreezes at once (`streams.trips`);
- `flush` cuts, in this order: the trips published so far and their rows
  (`streams.trips`); idle sessions, forgotten; the state of each session
  changed since the last flush, and a tombstone for each one forgotten, sent
  to the changelog (`streams.changelog`). `flushed`, while the ingest lands
  the flush, waits until Kafka has those trips and states and ClickHouse the
  trips' rows;
- `on_assigned` restores each partition's sessions from the changelog, once
  `spend.admin` has been read to its end; events that come meanwhile wait;
- `on_revoked` keeps the states aside: a partition that comes straight back,
  its changelog untouched by anyone else, is not read again.

Admin commands (`on_admin`) come from every worker's `streams.admin` reader:
`set_policy` replaces the policy here; `unfreeze` is applied by the worker
that owns the session, and remembered by all, so that the next owner applies
it to the states it restores.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import islice

from models.breaker import Breaker, SessionState
from models.errors import PolicyError, StateError
from models.events import CostEvent
from models.policy import Policy
from models.records import AdminCommand, BreakerTrip
from models.windows import Arrival, epoch_ms
from streams import metrics
from streams.changelog import StateChangelog
from streams.processors import EventProcessor
from streams.trips import TripSink

log = logging.getLogger(__name__)

RESTORE_RETRY_S = 2.0
OUTCOMES = (*Arrival, "after_trip")
"""How an event stood: its arrival (`models.windows.Arrival`), or after a trip."""
PRUNE_AT_LEAST = 1_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Sessions:
    """The breaker sessions of one events partition."""

    states: dict[str, SessionState] = field(default_factory=dict)
    """Least recently touched first: the expiry sweep starts at the front."""
    changed: set[str] = field(default_factory=set)
    forgotten: set[str] = field(default_factory=set)
    high_ms: int | None = None
    """The newest event time seen on the partition."""


@dataclass
class Hooks:
    """What the processor needs from the worker around it."""

    admin_ready: Callable[[], Awaitable[None]]
    partition_of: Callable[[str], int]
    owned: Callable[[list[int]], Awaitable[None]]


class BreakerProcessor(EventProcessor):
    """Trips runaway sessions as events arrive; keeps their state durable."""

    def __init__(
        self,
        breaker: Breaker,
        sink: TripSink,
        changelog: StateChangelog,
        hooks: Hooks,
        sweep_max: int,
    ) -> None:
        self.breaker = breaker
        self.sink = sink
        self.changelog = changelog
        self.hooks = hooks
        self.sweep_max = sweep_max
        self.parts: dict[int, Sessions] = {}
        self.leaving: dict[int, Sessions] = {}
        self.pending: dict[int, list[CostEvent]] = {}
        self.restoring: dict[int, asyncio.Task[None]] = {}
        self.outbox: list[BreakerTrip] = []
        self.unfreezes: dict[str, AdminCommand] = {}
        """The newest unfreeze command per session, from `spend.admin`."""
        self._prune_at = PRUNE_AT_LEAST

    def add(self, partition: int, events: list[CostEvent]) -> None:
        """Feed a poll's events; a partition not restored yet keeps them waiting."""
        if not events:
            return
        sessions = self.parts.get(partition)
        if sessions is None:
            self.pending.setdefault(partition, []).extend(events)
            self._restore_soon(partition)
            return
        self._feed(sessions, events)

    def _feed(self, sessions: Sessions, events: list[CostEvent]) -> None:
        breaker, states, now_ms = self.breaker, sessions.states, wall_ms()
        high_ms, outcomes = sessions.high_ms, dict.fromkeys(OUTCOMES, 0)
        for event in events:
            session_id = event.session_id
            state = states.pop(session_id, None) or breaker.restore(session_id, None)
            states[session_id] = state  # to the back: the sweep starts at the front
            decision = breaker.on_event(
                state, event, partition_high_ms=high_ms, wall_ms=now_ms
            )
            newest_ms = state.windows.newest_ms
            if newest_ms is not None and (high_ms is None or newest_ms > high_ms):
                high_ms = newest_ms
            outcomes["after_trip" if decision.after_trip else decision.arrival] += 1
            if decision.trip is not None:
                self.outbox.append(decision.trip)
            sessions.changed.add(session_id)
        sessions.high_ms = high_ms
        if sessions.forgotten:
            sessions.forgotten.difference_update(sessions.changed)
        for outcome, n in outcomes.items():
            if n:
                metrics.BREAKER_EVENTS.labels(outcome).inc(n)

    async def after_poll(self) -> None:
        """Publish what the poll decided, without waiting for a flush."""
        if self.outbox:
            records, self.outbox = self.outbox, []
            await self.sink.publish(records)

    async def flush(self) -> None:
        """Cut: trips, expiry, changed states on their way (steps in the docstring)."""
        if self.restoring:
            await asyncio.gather(*self.restoring.values())
        await self.after_poll()
        self.sink.cut()
        now_ms = wall_ms()
        for partition, sessions in self.parts.items():
            self._sweep(sessions, now_ms)
            await self._send_changes(partition, sessions)
        metrics.BREAKER_SESSIONS.set(sum(len(s.states) for s in self.parts.values()))

    async def flushed(self) -> None:
        """Wait until the trips and states of the last `flush` are durable."""
        await self.sink.landed()
        await self.changelog.acknowledged()

    def _sweep(self, sessions: Sessions, now_ms: int) -> None:
        """Forget idle sessions, least recently touched first, at most `sweep_max`.

        Active sessions share one ttl, so the first one not expired ends the
        sweep; a frozen one, kept much longer, moves to the back instead.
        Known shortcoming: the order is by the wall clock of the last event,
        so a backfill's sessions idle by event time but touched recently wait
        for their wall-clock ttl. Sweep by event time too if that matters.
        """
        breaker, states = self.breaker, sessions.states
        for session_id in list(islice(states, self.sweep_max)):
            state = states[session_id]
            if breaker.is_expired(
                state, event_now_ms=sessions.high_ms, wall_now_ms=now_ms
            ):
                del states[session_id]
                sessions.changed.discard(session_id)
                sessions.forgotten.add(session_id)
                metrics.BREAKER_EXPIRED.inc()
            elif state.trip is None:
                break
            else:
                states[session_id] = states.pop(session_id)

    async def _send_changes(self, partition: int, sessions: Sessions) -> None:
        states: dict[str, bytes | None] = {
            sid: sessions.states[sid].to_bytes()
            for sid in sessions.changed
            if sid in sessions.states
        }
        states.update(dict.fromkeys(sessions.forgotten))
        sessions.changed.clear()
        sessions.forgotten.clear()
        if states:
            await self.changelog.send(partition, states)

    async def on_assigned(self, partitions: list[int]) -> None:
        """Restore each partition's sessions, then tell the others we own them."""
        for partition in list(self.leaving):
            if partition not in partitions:
                del self.leaving[partition]
        restores = [self._restore_soon(p) for p in partitions]
        await asyncio.gather(*(task for task in restores if task is not None))
        await self.hooks.owned(partitions)

    async def on_revoked(self, partitions: list[int]) -> None:
        """Set the (flushed) states aside, in case the partition comes back."""
        for partition in partitions:
            sessions = self.parts.pop(partition, None)
            if sessions is not None:
                self.leaving[partition] = sessions

    def _restore_soon(self, partition: int) -> asyncio.Task[None] | None:
        """The task restoring `partition`, started if need be; None if restored."""
        if partition in self.parts:
            return None
        task = self.restoring.get(partition)
        if task is None:
            task = asyncio.create_task(self._restore(partition))
            self.restoring[partition] = task
        return task

    async def _restore(self, partition: int) -> None:
        started_s = time.monotonic()
        await self.hooks.admin_ready()
        while True:
            try:
                sessions = await self._load(partition)
                break
            except Exception:
                log.exception(
                    "restoring breaker partition=%d failed; again in %.0fs",
                    partition,
                    RESTORE_RETRY_S,
                )
                await asyncio.sleep(RESTORE_RETRY_S)
        self._apply_unfreezes(sessions)
        self.parts[partition] = sessions
        del self.restoring[partition]
        self._feed(sessions, self.pending.pop(partition, []))
        took_s = time.monotonic() - started_s
        metrics.BREAKER_RESTORE_SECONDS.observe(took_s)
        log.info(
            "restored breaker partition=%d sessions=%d in %.2fs",
            partition,
            len(sessions.states),
            took_s,
        )

    async def _load(self, partition: int) -> Sessions:
        """The partition's sessions: kept aside if nobody wrote since, else read."""
        kept = self.leaving.pop(partition, None)
        if kept is not None and await self.changelog.unchanged(partition):
            return kept
        sessions, spec = Sessions(), self.breaker.policy.window_spec
        for session_id, raw in (await self.changelog.read(partition)).items():
            try:
                state = SessionState.from_bytes(session_id, raw, spec)
            except StateError as exc:
                log.warning("dropped stored session_id=%s reason=%s", session_id, exc)
                metrics.BREAKER_STATE_RECORDS.labels("dropped").inc()
                sessions.forgotten.add(session_id)
                continue
            sessions.states[session_id] = state
            newest_ms = state.windows.newest_ms
            if newest_ms is not None and (
                sessions.high_ms is None or newest_ms > sessions.high_ms
            ):
                sessions.high_ms = newest_ms
        return sessions

    def on_admin(self, command: AdminCommand, live: bool) -> None:
        """Apply a command from `spend.admin`; `live` is False in the catch-up."""
        if command.command == "set_policy":
            self._set_policy(command)
        else:
            self._remember_unfreeze(command)
            self._unfreeze(command, live)

    def _set_policy(self, command: AdminCommand) -> None:
        try:
            policy = Policy.from_dict(command.policy or {})
        except PolicyError as exc:
            metrics.ADMIN_COMMANDS.labels("set_policy", "invalid").inc()
            log.error("set_policy refused by=%s reason=%s", command.by, exc)
            return
        self.breaker.policy = policy
        metrics.ADMIN_COMMANDS.labels("set_policy", "applied").inc()
        log.info("policy replaced by=%s ts=%s", command.by, command.ts.isoformat())

    def _remember_unfreeze(self, command: AdminCommand) -> None:
        """Keep the newest unfreeze per session; forget those past any freeze's ttl.

        A restore needs them only until the owner's next flush has written
        the unfrozen state; `frozen_ttl_s` is a generous bound.
        """
        assert command.session_id is not None
        known = self.unfreezes.get(command.session_id)
        if known is None or known.ts <= command.ts:
            self.unfreezes[command.session_id] = command
        if len(self.unfreezes) > self._prune_at:
            oldest_ms = wall_ms() - self.breaker.policy.frozen_ttl_s * 1000
            self.unfreezes = {
                sid: c
                for sid, c in self.unfreezes.items()
                if epoch_ms(c.ts) >= oldest_ms
            }
            self._prune_at = max(PRUNE_AT_LEAST, 2 * len(self.unfreezes))

    def _unfreeze(self, command: AdminCommand, live: bool) -> None:
        """Apply an unfreeze if this worker owns the session's partition now."""
        session_id = command.session_id
        assert session_id is not None
        sessions = self.parts.get(self.hooks.partition_of(session_id))
        if sessions is None:
            return
        state = sessions.states.get(session_id)
        record = self.breaker.on_unfreeze(
            state, session_id, command.ts, command.by, live=live
        )
        outcome = "ignored" if record is None else "applied"
        metrics.ADMIN_COMMANDS.labels("unfreeze", outcome).inc()
        if record is not None:
            self.outbox.append(record)
            if state is not None:
                sessions.changed.add(session_id)

    def _apply_unfreezes(self, sessions: Sessions) -> None:
        """Clear restored freezes that an unfreeze read meanwhile has cleared."""
        for session_id, command in self.unfreezes.items():
            state = sessions.states.get(session_id)
            if state is None or state.trip is None:
                continue
            record = self.breaker.on_unfreeze(
                state, session_id, command.ts, command.by, live=False
            )
            if record is not None:
                self.outbox.append(record)
                sessions.changed.add(session_id)

    def lookup(self, session_id: str) -> tuple[str, SessionState | None]:
        """`owned` (and the state, if any), `restoring` or `elsewhere`."""
        partition = self.hooks.partition_of(session_id)
        sessions = self.parts.get(partition)
        if sessions is not None:
            return "owned", sessions.states.get(session_id)
        if partition in self.restoring:
            return "restoring", None
        return "elsewhere", None
