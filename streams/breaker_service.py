"""The breaker on one worker: its processor, admin reader, routing and alerts.

`install_breaker` builds them around the events ingest: the processor joins
the ingest's processors, and `BreakerService` starts after the ingest (it
needs the ingest's producer) and stops after the ingest's last flush.
"""

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from mode import Service

from models.breaker import Breaker
from models.errors import InvalidRecord
from models.policy import DEFAULT_POLICY, load_policy
from streams.admin import AdminReader
from streams.alerts import Alerter
from streams.breaker import BreakerProcessor, Hooks
from streams.changelog import StateChangelog
from streams.dlq import dead_letter, encode
from streams.follow import Record
from streams.ingest import EventIngest
from streams.routing import Routing, partition_for
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics
from streams.trips import TripSink

log = logging.getLogger(__name__)


class BreakerService(Service):  # type: ignore[misc]
    """Starts and stops the breaker's parts; a dependency of the events ingest."""

    def __init__(
        self, settings: Settings, store: Store, ingest: EventIngest, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.ingest = ingest
        policy = load_policy(settings.policy) if settings.policy else DEFAULT_POLICY
        self.breaker = Breaker(policy)
        self.alerter = Alerter(settings)
        self.routing = Routing(settings, self.producer)
        self.changelog = StateChangelog(settings)
        hooks = Hooks(self._admin_ready, self.partition_of, self.routing.claim)
        sink = TripSink(settings, store, self.producer, self.alerter)
        self.processor = BreakerProcessor(
            self.breaker, sink, self.changelog, hooks, settings.breaker_sweep_max
        )
        self.admin = AdminReader(settings, self.processor.on_admin, self._invalid)
        self._sends: set[asyncio.Future[Any]] = set()

    def producer(self) -> AIOKafkaProducer:
        return self.ingest.producer

    async def on_start(self) -> None:
        await self.changelog.start()
        await self.alerter.start()
        await self.admin.start()
        await self.routing.start()

    async def on_stop(self) -> None:
        await self.admin.stop()
        await self.routing.stop()
        await self.changelog.stop()
        await self.alerter.stop()

    def partition_of(self, session_id: str) -> int:
        """The events partition of `session_id`, as the gateways' producers pick it."""
        found = self.ingest.consumer.partitions_for_topic(self.ingest.topic)
        count = len(found) if found else self.settings.events_partitions
        return partition_for(session_id, count)

    async def _admin_ready(self) -> None:
        """Wait until `spend.admin` is read to its end, or the timeout passes."""
        timeout_s = self.settings.admin_catch_up_timeout_s
        try:
            await asyncio.wait_for(self.admin.follower.caught_up.wait(), timeout_s)
        except TimeoutError:
            log.warning(
                "spend.admin not read to its end within %.0fs; restoring anyway",
                timeout_s,
            )

    def _invalid(self, record: Record, exc: InvalidRecord, live: bool) -> None:
        """Dead-letter a bad admin command once: from the owner of its key, live."""
        key = (record.key or b"").decode("utf-8", "replace")
        if not live or self.partition_of(key) not in self.processor.parts:
            return
        dlq = Topics(self.settings.topic_prefix).dlq
        letter = encode(dead_letter(record, exc.reason))
        send = asyncio.ensure_future(self.producer().send(dlq, letter, key=record.key))
        self._sends.add(send)
        send.add_done_callback(self._sends.discard)


def install_breaker(
    settings: Settings, store: Store, ingest: EventIngest
) -> BreakerService:
    """Add the breaker to `ingest`; its views are `streams.breaker_web`'s."""
    service = BreakerService(settings, store, ingest)
    ingest.processors.append(service.processor)
    ingest.add_dependency(service)
    return service
