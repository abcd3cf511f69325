"""The steps of the events path that see every accepted event.

The ingest (`streams.ingest.EventIngest`) calls a processor's hooks in this
order, all on the event loop and under the ingest's lock:

1. `add_read` with each partition's accepted events of one poll (valid, not
   duplicates, not already in ClickHouse) and their offsets; by default it
   passes the events on to `add`;
2. `after_poll` once per poll: act now (a breaker trip cannot wait a flush);
3. `flush` before the flush's rollup marks the offsets done in ClickHouse:
   whatever a processor must not lose (ClickHouse rows, Kafka records) is
   written and acknowledged here. A crash after `flush` replays the records,
   so what a processor writes must be idempotent (ids derived from events);
4. `on_assigned` / `on_revoked` when events partitions come and go; the
   ingest flushes before revoking.
"""

from models.events import CostEvent


class EventProcessor:
    """A step of the events path; every hook does nothing unless overridden."""

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
        """Make durable what was added since the last flush."""

    async def on_assigned(self, partitions: list[int]) -> None:
        """Restore state for events partitions now owned by this worker."""

    async def on_revoked(self, partitions: list[int]) -> None:
        """Forget state of events partitions another worker now owns."""
