"""Send grant commands in order, each once the workers have answered the one before.

Commands for different grants reach the paying grant from different
partitions of `spend.grants`, so a child's `open` sent right behind its
parent's may arrive first and be refused. A sender that needs an order does
what a gateway would: it follows `spend.grant-status` and sends the next
command once a status names the last one's grant (or its parent refused it).
"""

import asyncio
import json
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from models.fleet import GatewayRecord
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 60.0


def answers(command: dict[str, object], status: dict[str, object]) -> bool:
    """True if `status` is the workers' answer to `command`."""
    if status.get("grant_id") == command.get("grant_id"):
        return True
    payer = command.get("parent_id")
    refused = status.get("status") == "refused"
    return refused and payer is not None and status.get("grant_id") == payer


async def send_in_order(settings: Settings, commands: list[GatewayRecord]) -> bool:
    """Send `commands` one by one; False if one is not answered in time."""
    topics = Topics(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka, enable_auto_commit=False
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    await consumer.start()
    await producer.start()
    try:
        status = topics.grant_status
        # The producer's lookup waits for the topic's metadata; the consumer's does not.
        parts = [
            TopicPartition(status, p) for p in await producer.partitions_for(status)
        ]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:  # the seek is lazy: fix the ends before the first send
            await consumer.position(tp)
        for command in commands:
            value = command.value if isinstance(command.value, dict) else {}
            await producer.send_and_wait(
                topics.name(command.topic), command.encode(), key=command.key.encode()
            )
            if not await _answered(consumer, value):
                log.warning(
                    "no status for grant command %s within %ss", value, ANSWER_TIMEOUT_S
                )
                return False
        return True
    finally:
        await producer.stop()
        await consumer.stop()


async def _answered(consumer: AIOKafkaConsumer, command: dict[str, object]) -> bool:
    deadline_s = time.monotonic() + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline_s:
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                if answers(command, json.loads(record.value)):
                    return True
    return False


def send_commands_in_order(settings: Settings, commands: list[GatewayRecord]) -> bool:
    """`send_in_order` from synchronous code."""
    return asyncio.run(send_in_order(settings, commands))
