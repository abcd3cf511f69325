"""`grant_activity` rows into ClickHouse, read from the grants changelog.

Every stored grant entry carries the activity rows of the cycle that stored it
(its outbox, `models.grant_replay.GrantEntry`), so the changelog is also the
stream of activity rows, and a row reaches Kafka exactly when its state does.
This service reads the changelog with a plain aiokafka consumer in its own
group, in batches (rows come at event rate: off Faust's per-event path):

1. take a batch of changelog records and the rows in their outboxes;
2. write the rows to ClickHouse, retrying until it takes them (a row written
   again replaces itself: its id comes from its cause);
3. commit the batch's offsets.

Known shortcoming: the changelog is compacted. A record whose entry was
written again survives at least `streams.topics.GRANTS_CHANGELOG_LAG_MS` (the
topic's `min.compaction.lag.ms`, an hour), so a landing that stays behind
longer than that can miss the rows of entries changed meanwhile; raise it (at
the cost of longer recovery reads) where a ClickHouse outage may last longer.
"""

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from mode import Service

from models.codec import loads
from streams import metrics
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics

log = logging.getLogger(__name__)

BATCH_RECORDS = 5_000
POLL_MS = 500
PAUSE_S = 0.5
"""Between batches: rows arrive one changelog record at a time, and a write
plus a commit per record would cost the worker's loop more than the rows."""


def landing_group(settings: Settings) -> str:
    """The consumer group that lands activity rows from the changelog."""
    return f"{settings.app_id}-grant-activity"


async def rows_behind(settings: Settings) -> int:
    """Changelog records the landing group has not committed yet (all workers)."""
    topic = Topics(settings.topic_prefix).grants_changelog
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka, group_id=landing_group(settings)
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(parts)
        done = [await consumer.committed(tp) or 0 for tp in parts]
    finally:
        await consumer.stop()
    return sum(ends[tp] - offset for tp, offset in zip(parts, done, strict=True))


def outbox_rows(value: bytes | None) -> list[tuple[Any, ...]]:
    """The `grant_activity` rows of one changelog record (none in a tombstone)."""
    if value is None:
        return []
    return [
        (
            row["row_id"],
            datetime.fromisoformat(row["ts"]),
            row["grant_id"],
            row.get("parent_id") or "",
            row["kind"],
            row["amount_usd"],
            row["balance_usd"],
        )
        for row in loads(value).get("outbox", [])
    ]


class ActivityLanding(Service):
    """Lands the rows of the grants changelog in ClickHouse; steps in the docstring."""

    def __init__(self, settings: Settings, store: Store, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.store = store
        self.topic = Topics(settings.topic_prefix).grants_changelog
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.settings.kafka,
            group_id=landing_group(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._land_forever(), name="grant-landing")

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _land_forever(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(
                timeout_ms=POLL_MS, max_records=BATCH_RECORDS
            )
            rows = [
                row
                for records in batches.values()
                for record in records
                for row in outbox_rows(record.value)
            ]
            if rows:
                await self._write(rows)
            if batches:
                await self._consumer.commit()
                await asyncio.sleep(PAUSE_S)

    async def _write(self, rows: list[tuple[Any, ...]]) -> None:
        delay_s = 0.2
        while True:
            try:
                await self.store.run(self.store.write_grant_activity, rows)
                metrics.GRANT_ACTIVITY_ROWS.inc(len(rows))
                return
            except Exception:
                log.exception("grant_activity write failed; retrying in %.1fs", delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)
