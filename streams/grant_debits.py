"""Spend against grants: each cost event that names a grant becomes a debit op.

A processor on the events path (`streams.processors`). After every poll it
produces one debit op per accepted event with a `grant_id` to grant-ops, keyed
by the grant, so the grant's partition charges it within milliseconds; at a
flush it waits for their acks, so the ingest marks events done in ClickHouse
only once their debits are in Kafka. Events without a grant cost one
attribute test each.

A crash before the ingest's flush completes replays those events and sends
their debits again; each debit carries the event's partition and offset, and
the grant skips what it has applied (`models.grant_replay`).
"""

import asyncio
from typing import Any

from models.events import CostEvent
from models.grant_ops import debit_value, encode_op
from streams.ingest import EventIngest
from streams.processors import EventProcessor


class GrantDebits(EventProcessor):
    """Produces a debit op per accepted event that is charged to a grant."""

    def __init__(self, ingest: EventIngest, topic: str) -> None:
        self.ingest = ingest
        self.topic = topic
        self._pending: list[tuple[bytes, bytes]] = []
        self._sends: list[asyncio.Future[Any]] = []

    def add_read(
        self, partition: int, events: list[CostEvent], offsets: list[int]
    ) -> None:
        pending = self._pending
        for event, offset in zip(events, offsets, strict=True):
            if event.grant_id is None:
                continue
            value = debit_value(
                event.event_id,
                event.grant_id,
                event.cost,
                event.ts,
                source=(partition, offset),
                reservation_id=event.reservation_id,
                final=event.reservation_final,
            )
            pending.append((event.grant_id.encode(), encode_op(value)))

    async def after_poll(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        send = self.ingest.producer.send
        for key, value in pending:
            self._sends.append(await send(self.topic, value, key=key))

    async def flush(self) -> None:
        await self.after_poll()
        sends, self._sends = self._sends, []
        self.land_later(*sends)
