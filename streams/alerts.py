"""Breaker alerts to a webhook: a JSON POST per trip, retried, never blocking.

Trips are offered to a bounded queue; one background task sends them in
order with aiohttp and retries each with doubling delays. A full queue drops
the alert (the trip itself is on the trip topic either way). Drops, retries
and failures are logged and counted (`spendstream_alerts_total`).
"""

import asyncio
import logging
from typing import Any

import aiohttp

from models.breaker import describe_trip
from models.codec import dumps
from models.records import BreakerTrip
from streams import metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


def alert_body(trip: BreakerTrip) -> dict[str, Any]:
    """The JSON a webhook gets: a line for chat tools (`text`) and the trip."""
    who = ", ".join(x for x in (trip.agent, trip.principal) if x)
    text = f"spendstream froze session {trip.session_id} ({who}): {describe_trip(trip)}"
    return {"text": text, "trip": trip.to_json_dict()}


class Alerter:
    """Sends trip alerts to `settings.alert_webhook`; does nothing without one."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.alert_webhook
        self.attempts = settings.alert_attempts
        self.backoff_s = settings.alert_backoff_s
        self.timeout = aiohttp.ClientTimeout(total=settings.alert_timeout_s)
        self.queue: asyncio.Queue[BreakerTrip] = asyncio.Queue(settings.alert_queue_max)
        self._task: asyncio.Task[None] | None = None

    def offer(self, trip: BreakerTrip) -> None:
        """Queue an alert for `trip`, or drop it if the queue is full."""
        if self.url is None:
            return
        try:
            self.queue.put_nowait(trip)
        except asyncio.QueueFull:
            metrics.ALERTS.labels("dropped").inc()
            log.warning(
                "alert queue full; dropped alert session_id=%s trip_id=%s",
                trip.session_id,
                trip.trip_id,
            )

    async def start(self) -> None:
        if self.url is not None:
            self._task = asyncio.create_task(self._run(), name="breaker-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.queue.qsize():
            log.warning("stopped with %d alerts unsent", self.queue.qsize())

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=self.timeout) as http:
            while True:
                trip = await self.queue.get()
                await self._deliver(http, trip)

    async def _deliver(self, http: aiohttp.ClientSession, trip: BreakerTrip) -> None:
        """POST one alert, retrying with doubling delays; give up after the last."""
        assert self.url is not None
        body = dumps(alert_body(trip))
        headers = {"Content-Type": "application/json"}
        delay_s = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                async with http.post(self.url, data=body, headers=headers) as answer:
                    answer.raise_for_status()
                metrics.ALERTS.labels("sent").inc()
                return
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = repr(exc)
            if attempt < self.attempts:
                metrics.ALERTS.labels("retried").inc()
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, MAX_BACKOFF_S)
        metrics.ALERTS.labels("failed").inc()
        log.error(
            "alert failed after %d attempts session_id=%s trip_id=%s reason=%s",
            self.attempts,
            trip.session_id,
            trip.trip_id,
            reason,
        )
