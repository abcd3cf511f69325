"""The chargeback ledger on the events path: every accepted event booked once.

A `Bookkeeper` per events partition books the partition's events in the order
read. Each entry is encoded once, as JSON, and that text goes to `spend.ledger`
under each department it moves (`ledger_keys`) and to ClickHouse
`ledger_entries`.

A flush (the ingest's step 2), in this order:

1. book what is still pending and hand every open batch to the producer;
2. write the flush's entries to ClickHouse, then a checkpoint per events
   partition booked: the bookkeeper's state at the flush's last offset;
3. in `flushed`, while the ingest lands the flush and the loop reads on:
   wait until Kafka holds every batch and ClickHouse the rows.

The ingest marks the flush's offsets done only after that. A crash before
replays the flush: the bookkeeper is restored from the checkpoint that matches
the ingest's high water (`models.checkpoint`), so the replay books the same
periods, ids and sequence numbers. ClickHouse rows replace their twins, and
the positions drop entries produced twice (`DepartmentPositions.apply`).
"""

import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from models.checkpoint import Checkpoint
from models.events import CostEvent
from models.ledger import Bookkeeper, ledger_keys
from streams import metrics
from streams.batches import TopicBatches
from streams.ingest import EventIngest
from streams.processors import EventProcessor
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class _Books:
    """One events partition's bookkeeper and the checkpoint saved last."""

    keeper: Bookkeeper
    checkpoint: Checkpoint


class LedgerProcessor(EventProcessor):
    """Books accepted cost events to `spend.ledger` and ClickHouse."""

    def __init__(self, settings: Settings, store: Store, ingest: EventIngest) -> None:
        topics = Topics(settings.topic_prefix)
        self.cutoff_s = settings.ledger_cutoff_s
        self.store = store
        self.ingest = ingest
        self.events_topic = topics.events
        self.ledger_topic = topics.ledger
        self.books: dict[int, _Books] = {}
        self.pending: deque[tuple[int, list[CostEvent]]] = deque()
        self.rows: list[bytes] = []
        self.booked: set[int] = set()
        self._out: TopicBatches | None = None

    def add(self, partition: int, events: list[CostEvent]) -> None:
        if events:
            self.pending.append((partition, events))

    async def after_poll(self) -> None:
        await self._book_pending()

    async def flush(self) -> None:
        """Steps 1 and 2 of the module docstring: booked, sent, writing."""
        out = await self._book_pending()
        rows, self.rows = self.rows, []
        checkpoints = [self._checkpoint(p) for p in sorted(self.booked)]
        self.booked = set()
        written = self.store.write_until_done(
            self.store.write_ledger, rows, checkpoints
        )
        self.land_later(out.acknowledged(), written)  # step 3, in `flushed`

    async def on_revoked(self, partitions: list[int]) -> None:
        """Forget revoked partitions; the ingest flushed before calling this."""
        for partition in partitions:
            self.books.pop(partition, None)

    async def _book_pending(self) -> TopicBatches:
        """Book every pending poll, then hand the batches to the producer.

        A poll leaves the queue only once booked: a cancellation while a
        partition is restored loses nothing, and the flush books it.
        """
        out = await self._batches()
        while self.pending:
            partition, events = self.pending[0]
            books = self.books.get(partition) or await self._restore(partition)
            self._book(out, books.keeper, events)
            self.booked.add(partition)
            self.pending.popleft()
        await out.send()
        return out

    def _book(self, out: TopicBatches, keeper: Bookkeeper, events: list[Any]) -> None:
        """The hot loop: one entry per event, encoded once, appended per key."""
        rows = self.rows
        adjustments = 0
        for event in events:
            entry = keeper.book(event)
            value = entry.model_dump_json(exclude_none=True).encode()
            rows.append(value)
            for department in ledger_keys(entry):
                out.append(department, value)
            if entry.adjusts is not None:
                adjustments += 1
        metrics.LEDGER_ENTRIES.inc(len(events))
        if adjustments:
            metrics.LEDGER_ADJUSTMENTS.inc(adjustments)

    async def _batches(self) -> TopicBatches:
        if self._out is None:
            out = TopicBatches(self.ingest.producer, self.ledger_topic)
            await out.start()
            self._out = out
        return self._out

    async def _restore(self, partition: int) -> _Books:
        """The partition's bookkeeper as it was at the ingest's high water."""
        high_water = self.ingest.partitions[partition].high_water
        saved = await self.store.run(
            self.store.ledger_checkpoint, self.events_topic, partition
        )
        checkpoint = (saved or Checkpoint.first()).at(high_water)
        keeper = Bookkeeper.from_dict(
            checkpoint.state, self.cutoff_s, source=f"{self.events_topic}:{partition}"
        )
        books = self.books[partition] = _Books(keeper, checkpoint)
        log.info(
            "restored ledger topic=%s partition=%d high_water=%d watermark=%s "
            "booked=%d",
            self.events_topic,
            partition,
            high_water,
            keeper.watermark,
            keeper.booked,
        )
        return books

    def _checkpoint(self, partition: int) -> tuple[Any, ...]:
        """The row saving `partition`'s bookkeeper at the flush's last offset."""
        books = self.books[partition]
        offset = self.ingest.partitions[partition].last_read
        saved = books.checkpoint = books.checkpoint.next(offset, books.keeper.to_dict())
        return (
            self.events_topic,
            partition,
            saved.version,
            saved.offset,
            json.dumps(saved.state),
            saved.prev_offset,
            json.dumps(saved.prev_state),
        )
