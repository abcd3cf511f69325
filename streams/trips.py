"""Where breaker decisions go: the trip topic at once, the webhook, ClickHouse.

`publish` sends each record to `spend.breaker-trips` (keyed by session id)
without waiting for the acknowledgement, queues an alert per freeze and holds
its `breaker_trips` row; `cut` sets aside what a flush covers, and `landed`
waits for those acknowledgements and writes those rows, retrying until
ClickHouse has them.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from models.breaker import describe_trip
from models.codec import dumps
from models.records import BreakerTrip
from streams import metrics
from streams.alerts import Alerter
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics

log = logging.getLogger(__name__)


def trip_row(trip: BreakerTrip) -> tuple[Any, ...]:
    """The `breaker_trips` row of a freeze (`schema.BREAKER_TRIPS_COLUMNS`)."""
    extra = trip.model_extra or {}
    return (
        trip.trip_id,
        trip.ts,
        trip.session_id,
        trip.agent or "",
        trip.principal or "",
        trip.rule,
        int(trip.window_s),
        trip.spend_usd,
        trip.threshold_usd,
        trip.rate_usd_per_s,
        int(extra.get("events", 0)),
        int(extra.get("threshold_events", 0)),
        str(extra.get("event_id", "")),
        trip.detected_at or trip.ts,
    )


class TripSink:
    """Publishes trips and unfreezes; lands freezes in ClickHouse at flush."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        producer: Callable[[], AIOKafkaProducer],
        alerter: Alerter,
    ) -> None:
        self.topic = Topics(settings.topic_prefix).breaker_trips
        self.store = store
        self.alerter = alerter
        self._producer = producer
        self._sends: list[asyncio.Future[Any]] = []
        self._rows: list[tuple[Any, ...]] = []
        self._cut: tuple[list[asyncio.Future[Any]], list[tuple[Any, ...]]] = ([], [])

    async def publish(self, records: list[BreakerTrip]) -> None:
        """Send `records` now; alert and hold a row for each freeze."""
        producer = self._producer()
        for trip in records:
            value = dumps(trip.to_json_dict())
            key = trip.session_id.encode()
            self._sends.append(await producer.send(self.topic, value, key=key))
            if trip.state == "frozen":
                self._rows.append(trip_row(trip))
                self.alerter.offer(trip)
                metrics.BREAKER_TRIPS.labels(trip.rule).inc()
            else:
                metrics.BREAKER_UNFREEZES.inc()
            log.info(
                "%s session_id=%s trip_id=%s reason=%s",
                trip.state,
                trip.session_id,
                trip.trip_id,
                describe_trip(trip),
            )

    def cut(self) -> None:
        """Set aside what was published so far, for `landed`."""
        self._cut = (self._sends, self._rows)
        self._sends, self._rows = [], []

    async def landed(self) -> None:
        """Wait until Kafka has the records cut, then write the freezes' rows."""
        (sends, rows), self._cut = self._cut, ([], [])
        await asyncio.gather(*sends)
        if rows:
            await self._write(rows)

    async def _write(self, rows: list[tuple[Any, ...]]) -> None:
        delay_s = 0.2
        while True:
            try:
                await self.store.run(self.store.write_trips, rows)
                return
            except Exception:
                metrics.FLUSH_FAILURES.inc()
                log.exception("writing breaker trips failed; again in %.1fs", delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)
