"""The events path's step for the shadow model: task usage to the learner's log.

After each poll, `TaskUsageProcessor` sends one `UsageBatch` per events
partition that brought task events, marked with the partition's last flushed
offset and numbered from 0 under it (`models.usage_replay` says why that
makes replays harmless). Every `shadow_progress_interval_s` it sends one
`ProgressReport` for the partitions it owns: it reads the learner log's end
first, then the partitions' end offsets, which is the order the learner's
gate relies on. Sends are acknowledged in `flush`, before the ingest marks
the offsets done.
"""

import asyncio
import logging
import time
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from models.events import CostEvent
from models.task_log import encode_progress, encode_usage
from models.task_usage import ProgressReport, UsageAggregator, UsageBatch
from streams import metrics
from streams.ingest import EventIngest
from streams.processors import EventProcessor
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)

MAX_TASKS_PER_BATCH = 2_000
"""More tasks from one poll go in several parts: a batch stays well under the
producer's request size (about 300 bytes a task with the longest ids)."""


class TaskUsageProcessor(EventProcessor):
    """Sums task events per poll and partition; sends them and progress reports."""

    def __init__(self, ingest: EventIngest, settings: Settings) -> None:
        self.ingest = ingest
        self.log_tp = TopicPartition(Topics(settings.topic_prefix).task_log, 0)
        self.interval_s = settings.shadow_progress_interval_s
        self.default_partitions = settings.events_partitions
        self.sums: dict[int, UsageAggregator] = {}
        self.parts: dict[int, tuple[int, int]] = {}
        """Per partition: the marker of the last batch and the next part number."""
        self.sends: list[asyncio.Future[Any]] = []
        self.reported_s = float("-inf")

    def add(self, partition: int, events: list[CostEvent]) -> None:
        sums = self.sums.get(partition)
        if sums is None:
            sums = self.sums[partition] = UsageAggregator()
        sums.add(events)

    async def after_poll(self) -> None:
        for partition, sums in self.sums.items():
            if sums and partition in self.ingest.partitions:
                await self._send_usage(partition, sums)
        now_s = time.monotonic()
        if now_s - self.reported_s >= self.interval_s and self.ingest.partitions:
            self.reported_s = now_s
            await self._send_progress()

    async def flush(self) -> None:
        sends, self.sends = self.sends, []
        self.land_later(*sends)

    async def on_revoked(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.sums.pop(partition, None)
            self.parts.pop(partition, None)

    async def _send_usage(self, partition: int, sums: UsageAggregator) -> None:
        marker = self.ingest.partitions[partition].last_flushed
        tasks = list(sums.drain().items())
        for first in range(0, len(tasks), MAX_TASKS_PER_BATCH):
            chunk = dict(tasks[first : first + MAX_TASKS_PER_BATCH])
            part = self._next_part(partition, marker)
            batch = UsageBatch(partition, marker, part, sums.newest_s, chunk)
            sent = await self._send(encode_usage(batch), f"events-{partition}")
            self.sends.append(sent)
            metrics.TASK_USAGE_BATCHES.inc()

    def _next_part(self, partition: int, marker: int) -> int:
        held, part = self.parts.get(partition, (marker, 0))
        if held != marker:
            part = 0
        self.parts[partition] = (marker, part + 1)
        return part

    async def _send_progress(self) -> None:
        """Report the owned partitions: the log's end first, then theirs."""
        consumer, topic = self.ingest.consumer, self.ingest.topic
        owned = {p: TopicPartition(topic, p) for p in self.ingest.partitions}
        try:
            log_end = (await consumer.end_offsets([self.log_tp]))[self.log_tp]
            ends = await consumer.end_offsets(list(owned.values()))
        except KafkaError as exc:
            log.info("progress report skipped: end offsets unknown (%r)", exc)
            return
        states = self.ingest.partitions
        caught_up = frozenset(
            p for p, tp in owned.items() if states[p].last_read + 1 >= ends[tp]
        )
        newest = {p: self.sums[p].newest_s if p in self.sums else None for p in owned}
        known = consumer.partitions_for_topic(topic)
        partitions = len(known) if known else self.default_partitions
        report = ProgressReport(partitions, log_end, newest, caught_up)
        sent = await self._send(encode_progress(report), "progress")
        sent.add_done_callback(_log_failure)

    async def _send(self, value: bytes, key: str) -> asyncio.Future[Any]:
        """Queue a send; awaiting it (not its delivery) keeps the log's order."""
        producer = self.ingest.producer
        return await producer.send(self.log_tp.topic, value, key=key.encode())


def _log_failure(sent: asyncio.Future[Any]) -> None:
    """A lost progress report only delays releases until the next one."""
    if not sent.cancelled() and sent.exception() is not None:
        log.warning("progress report not delivered: %r", sent.exception())
