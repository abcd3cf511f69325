"""The breaker's state changelog: the latest state of each session, compacted.

`spend.breaker-state` has as many partitions as `spend.events`, and a session's
state is written to the partition number of the events partition it came
from, so the changelog is co-partitioned by construction. The key is the
session id, the value `SessionState.to_bytes()` (binary: several times cheaper
than JSON at every flush); a tombstone (no value) forgets the session.
Restoring a partition reads it from the beginning to the end it had when the
restore began.

Known shortcoming: the state written at a flush holds every event added since
the previous flush. A crash after that write and before the ingest's
ClickHouse write and commit replays those events into the restored state, so
they count twice in its windows: a trip can come early, never go missing.
Trip ids are deterministic, so a trip made again is deduplicated by
`breaker_trips` (ReplacingMergeTree) and by readers of the trip topic that key
on `trip_id`. Remove by writing the events offset with the state and skipping
replayed events at or below it.
"""

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from streams import metrics
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)

EMPTY_POLLS_MAX = 10
BATCH_BYTES = 1024 * 1024


class StateChangelog:
    """Writes changed sessions of a partition, and reads a partition back."""

    def __init__(self, settings: Settings) -> None:
        self.kafka = settings.kafka
        self.fetch_bytes = settings.max_message_bytes
        self.topic = Topics(settings.topic_prefix).breaker_state
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reading = asyncio.Lock()
        """One reader consumer, one partition at a time."""
        self._sending: list[tuple[int, asyncio.Future[Any], int]] = []
        self._ends: dict[int, int] = {}
        """Per partition, the end offset after this worker's last write or read."""

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()

    async def start(self) -> None:
        """Start the changelog's own producer: large batches, built here."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka,
            max_batch_size=BATCH_BYTES,
            max_request_size=max(self.fetch_bytes, BATCH_BYTES),
        )
        await self._producer.start()

    async def send(self, partition: int, states: dict[str, bytes | None]) -> None:
        """Start writing each session's state (None: a tombstone); see `acknowledged`.

        Records go in batches built here (`send_batch`): sending them one by
        one costs about twenty times more per record in aiokafka.
        """
        assert self._producer is not None, "changelog not started"
        producer, topic = self._producer, self.topic
        sends: list[tuple[asyncio.Future[Any], int]] = []
        batch = producer.create_batch()
        for session_id, value in states.items():
            key = session_id.encode()
            if batch.append(key=key, value=value, timestamp=None) is not None:
                continue
            sent = await producer.send_batch(batch, topic, partition=partition)
            sends.append((sent, batch.record_count()))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                one = await producer.send(topic, value, key=key, partition=partition)
                sends.append((one, 1))  # larger than a batch: on its own
        if batch.record_count():
            sent = await producer.send_batch(batch, topic, partition=partition)
            sends.append((sent, batch.record_count()))
        self._sending += [(partition, sent, n) for sent, n in sends]
        metrics.BREAKER_STATE_RECORDS.labels("written").inc(len(states))

    async def acknowledged(self) -> None:
        """Wait until Kafka has every state sent so far."""
        sending, self._sending = self._sending, []
        written = await asyncio.gather(*(sent for _, sent, _ in sending))
        for (partition, _, n), meta in zip(sending, written, strict=True):
            end = meta.offset + n
            self._ends[partition] = max(end, self._ends.get(partition, 0))

    async def unchanged(self, partition: int) -> bool:
        """Whether nobody wrote to `partition` since this worker last wrote or read."""
        known = self._ends.get(partition)
        if known is None:
            return False
        tp = TopicPartition(self.topic, partition)
        async with self._reading:
            consumer = await self._reader()
            ends = await consumer.end_offsets([tp])
        return bool(ends[tp] == known)

    async def read(self, partition: int) -> dict[str, bytes]:
        """Every session's latest value in `partition`, tombstoned ones left out."""
        tp = TopicPartition(self.topic, partition)
        async with self._reading:
            consumer = await self._reader()
            end = (await consumer.end_offsets([tp]))[tp]
            latest: dict[str, bytes] = {}
            if end > 0:
                consumer.assign([tp])
                await consumer.seek_to_beginning(tp)
                latest = await self._read_to(consumer, tp, end)
        self._ends[partition] = end
        metrics.BREAKER_STATE_RECORDS.labels("restored").inc(len(latest))
        return latest

    @staticmethod
    async def _read_to(
        consumer: AIOKafkaConsumer, tp: TopicPartition, end: int
    ) -> dict[str, bytes]:
        """Read `tp` up to offset `end`, keeping the last value per key.

        Compaction can leave no record at the last offsets before `end` (a
        tombstone cleaned away); after `EMPTY_POLLS_MAX` empty polls in a row
        the partition counts as read.
        """
        latest: dict[str, bytes] = {}
        empty_polls = 0
        while await consumer.position(tp) < end and empty_polls < EMPTY_POLLS_MAX:
            records = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
            empty_polls = 0 if records else empty_polls + 1
            for record in records:
                if record.offset >= end:
                    break
                key = (record.key or b"").decode()
                if record.value is None:
                    latest.pop(key, None)
                else:
                    latest[key] = record.value
        return latest

    async def _reader(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.kafka,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=self.fetch_bytes,
                fetch_max_bytes=self.fetch_bytes * 2,
            )
            await self._consumer.start()
        return self._consumer
