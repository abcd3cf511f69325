"""The latest value on a single-key, single-partition compacted topic.

Snapshot and checkpoint topics hold one key, so the latest value is always
the partition's last record: compaction never touches the active segment.
Reading it costs one fetch from `end - 1`, however long the topic's history.
"""

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition


async def last_offset(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """The offset of the partition's last record, -1 when it is empty."""
    end: int = (await consumer.end_offsets([tp]))[tp]
    return end - 1


async def read_latest(
    kafka: str, topic: str, max_bytes: int, timeout_s: float = 30
) -> ConsumerRecord[bytes, bytes] | None:
    """The last record of partition 0 of `topic`, None when there is none."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka,
        enable_auto_commit=False,
        max_partition_fetch_bytes=max_bytes,
        fetch_max_bytes=max_bytes,
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        last = await last_offset(consumer, tp)
        if last < 0:
            return None
        consumer.seek(tp, last)
        async with asyncio.timeout(timeout_s):
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                if batch.get(tp):
                    return batch[tp][-1]
    finally:
        await consumer.stop()
