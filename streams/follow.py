"""Following a small topic whole on every worker: no consumer group, from its start.

Every worker must see every record of `spend.admin` and `spend.workers`, so
these are not read in a shared group. A follower assigns itself every
partition, reads from the beginning and hands each record to a callback with
`live`: False for records that were already there when it started (the
catch-up), True for later ones. `caught_up` is set once the catch-up is done.
"""

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

log = logging.getLogger(__name__)

Record = ConsumerRecord[bytes, bytes]
Handler = Callable[[Record, bool], None]
RETRY_S = 2.0


class TopicFollower:
    """Reads all of `topic` and every record added later, until stopped."""

    def __init__(self, kafka: str, topic: str, handle: Handler) -> None:
        self.kafka = kafka
        self.topic = topic
        self.handle = handle
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"follow-{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        """Follow the topic; on an error, start again from its beginning."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "following topic=%s failed; again in %.0fs", self.topic, RETRY_S
                )
                await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        # Without a group, a consumer given the topic is assigned all of it.
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.kafka,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tps = list(consumer.assignment())
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            behind = {tp for tp in tps if ends[tp] > 0}
            while True:
                if not behind:
                    self.caught_up.set()
                batches = await consumer.getmany(timeout_ms=1_000)
                for tp, records in batches.items():
                    self._hand_over(records, ends[tp])
                for tp in list(behind):
                    if await consumer.position(tp) >= ends[tp]:
                        behind.discard(tp)
        finally:
            await consumer.stop()

    def _hand_over(self, records: list[Record], end: int) -> None:
        for record in records:
            try:
                self.handle(record, record.offset >= end)
            except Exception:
                log.exception(
                    "handling a record failed topic=%s partition=%d offset=%d",
                    record.topic,
                    record.partition,
                    record.offset,
                )
