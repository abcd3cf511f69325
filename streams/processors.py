"""The steps of the events path that see every accepted event.

The ingest (`streams.ingest.EventIngest`) calls a processor's hooks in this
order, all on the event loop and, but for `flushed`, under the ingest's lock:

1. `add_read` with each partition's accepted events of one poll (valid, not
   duplicates, not already in ClickHouse) and their offsets; by default it
   passes the events on to `add`;
2. `after_poll` once per poll: act now (a breaker trip cannot wait a flush);
3. `flush` when the ingest cuts a flush: whatever a processor must not lose
   (ClickHouse rows, Kafka records) is written, or its writing started, here;
4. `flushed` in the background landing of that flush, before its rollup
   marks the offsets done in ClickHouse: wait until what `flush` started is
   written and acknowledged (a processor that waits in `flush` has nothing
   left to do). The next `flush` comes only after `flushed` returned. A
   crash after `flushed` replays the records, so what a processor writes must
   be idempotent (ids derived from events);
5. `on_assigned` / `on_revoked` when events partitions come and go; the
   ingest lands every flush before revoking.
"""

import asyncio
from collections.abc import Awaitable
from typing import Any

from models.events import CostEvent


class EventProcessor:
    """A step of the events path; every hook does nothing unless overridden."""

    _landing: "asyncio.Future[Any] | None" = None

    def add(self, partition: int, events: list[CostEvent]) -> None:
        """Take one partition's accepted events from one poll."""

    def add_read(
        self, partition: int, events: list[CostEvent], offsets: list[int]
    ) -> None:
        """Take them with their offsets: for outputs idempotent by source position."""
        self.add(partition, events)

    async def after_poll(self) -> None:
        """Act on what the poll brought, without waiting for a flush."""

    async def flush(self) -> None:
        """Make durable, or start making durable, what was added since the last."""

    def land_later(self, *writes: Awaitable[Any]) -> None:
        """Called from `flush`: the writes the default `flushed` waits for."""
        self._landing = asyncio.gather(*writes)

    async def flushed(self) -> None:
        """Wait until what the last `flush` started is durable: by default,
        what it passed to `land_later`."""
        landing, self._landing = self._landing, None
        if landing is not None:
            await landing

    async def on_assigned(self, partitions: list[int]) -> None:
        """Restore state for events partitions now owned by this worker."""

    async def on_revoked(self, partitions: list[int]) -> None:
        """Forget state of events partitions another worker now owns."""
