"""A session's partition, computed as gateways' producers compute it."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from streams.routing import partition_for
from tests.integration.harness import create_topics

pytestmark = pytest.mark.integration

JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}
"""Kafka's own test vectors for `Utils.murmur2` (signed 32-bit, as Java has it)."""


def test_the_hash_is_kafka_s_murmur2() -> None:
    for key, java in JAVA_MURMUR2.items():
        assert murmur2(key.encode()) == java % 2**32
        assert partition_for(key, 7) == (java & 0x7FFFFFFF) % 7


async def _placed(kafka: str, topic: str, keys: list[str]) -> dict[str, int]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"{}", key=k.encode()) for k in keys]
        return {k: (await s).partition for k, s in zip(keys, sent, strict=True)}
    finally:
        await producer.stop()


def test_partition_for_is_where_a_producer_puts_the_key(
    kafka: str, prefix: str, worker_env: dict[str, str]
) -> None:
    create_topics(worker_env)
    keys = [f"sess-{n:04x}" for n in range(300)] + ["é-ünïcode", "x" * 300]
    placed = asyncio.run(_placed(kafka, f"{prefix}events", keys))
    assert {k: partition_for(k, 3) for k in keys} == placed
    assert set(placed.values()) == {0, 1, 2}
