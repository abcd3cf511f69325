"""Keyed records for one topic, gathered into aiokafka batches per partition.

`producer.send` costs a coroutine, a serializer and a partitioner per record;
on the events path that is a large share of the work. Here a record is
appended to its partition's open batch (synchronous, a few hundred
nanoseconds), batches go to the producer once per poll, and their delivery
futures are gathered at the flush and awaited while it lands.

Keys are placed as Kafka's default partitioner (and Faust's router) places
them: murmur2 of the UTF-8 key, modulo the partition count, which is read
once; a topic that gains partitions needs a restart of the worker.
"""

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

log = logging.getLogger(__name__)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of `key` among `partitions`, as Kafka's clients choose it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class TopicBatches:
    """Records for one topic: append now, send per poll, acknowledged per flush."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._partitions = 0
        self._placed: dict[str, tuple[bytes, int]] = {}
        self._open: dict[int, Any] = {}
        self._full: list[tuple[int, Any]] = []
        self._sent: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        """Learn the topic's partition count (waits for its metadata)."""
        self._partitions = len(await self.producer.partitions_for(self.topic))

    def append(self, key: str, value: bytes) -> None:
        """Add a record to its partition's open batch; a full batch is set aside."""
        placed = self._placed.get(key)
        if placed is None:
            raw = key.encode()
            placed = self._placed[key] = (raw, key_partition(raw, self._partitions))
        raw, partition = placed
        batch = self._open.get(partition)
        if batch is None:
            batch = self._open[partition] = self.producer.create_batch()
        if batch.append(key=raw, value=value, timestamp=None) is not None:
            return
        self._full.append((partition, batch))
        batch = self._open[partition] = self.producer.create_batch()
        if batch.append(key=raw, value=value, timestamp=None) is None:
            msg = f"a record of {len(value)} bytes does not fit an empty batch"
            raise ValueError(msg)

    async def send(self) -> None:
        """Hand every batch to the producer, in order per partition."""
        batches = [*self._full, *self._open.items()]
        self._full, self._open = [], {}
        for partition, batch in batches:
            batch.close()
            future = await self.producer.send_batch(
                batch, self.topic, partition=partition
            )
            self._sent.append(future)

    def acknowledged(self) -> "asyncio.Future[list[Any]]":
        """A future done when Kafka holds every batch sent so far (not later ones)."""
        sent, self._sent = self._sent, []
        return asyncio.gather(*sent)
