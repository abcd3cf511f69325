"""Which worker owns which events partition, so any worker can answer for any key.

A session lives on the worker that owns its events partition: the partition
Kafka's default partitioner gives its key (`partition_for`). Each worker
publishes its owned partitions and its URL to the compacted `spend.workers`
(keyed by URL) on every assignment, and follows that topic whole
(`streams.follow`); the newest claim of a partition wins, so a dead worker's
last claim is overridden as soon as the new owner publishes.

Known shortcoming: a worker that stopped for good keeps its last record in
`spend.workers` until compaction; it owns nothing once another worker claims
its partitions. Remove by publishing a tombstone on a clean stop.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from models.codec import dumps, loads
from streams import metrics
from streams.follow import Record, TopicFollower
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)

FORWARDED_HEADER = "X-Spendstream-Forwarded-By"
"""Set on a forwarded request; the receiver answers itself and never forwards."""


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` (murmur2, as Java's)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class Routing:
    """The owners of events partitions, as every worker's claims say."""

    def __init__(
        self, settings: Settings, producer: Callable[[], AIOKafkaProducer]
    ) -> None:
        self.url = settings.advertised_url
        self.topic = Topics(settings.topic_prefix).workers
        self.owners: dict[int, str] = {}
        self.claims: dict[str, set[int]] = {}
        self.follower = TopicFollower(settings.kafka, self.topic, self._handle)
        self._producer = producer
        self._http: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=5)

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()
        if self._http is not None:
            await self._http.close()

    async def claim(self, partitions: list[int]) -> None:
        """Publish that this worker now owns exactly `partitions`."""
        value = {
            "url": self.url,
            "partitions": sorted(partitions),
            "ts": datetime.now(UTC).isoformat(),
        }
        await self._producer().send_and_wait(
            self.topic, dumps(value), key=self.url.encode()
        )
        log.info("claimed partitions=%s url=%s", sorted(partitions), self.url)

    def owner_of(self, partition: int) -> str | None:
        """The URL of the worker that claimed `partition` last, if any."""
        return self.owners.get(partition)

    def _handle(self, record: Record, live: bool) -> None:
        url = (record.key or b"").decode()
        claimed = (
            set() if record.value is None else set(loads(record.value)["partitions"])
        )
        for partition in self.claims.get(url, set()) - claimed:
            if self.owners.get(partition) == url:
                del self.owners[partition]
        for partition in claimed:
            self.owners[partition] = url
        self.claims[url] = claimed

    async def forward_get(self, owner_url: str, path: str) -> tuple[int, bytes]:
        """GET `path` from the worker at `owner_url`: its status and body."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        headers = {FORWARDED_HEADER: self.url}
        try:
            async with self._http.get(owner_url + path, headers=headers) as answer:
                body = await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.FORWARDED.labels("failed").inc()
            log.warning("forward failed url=%s%s reason=%r", owner_url, path, exc)
            reason = f"the owner {owner_url} did not answer ({exc!r}); retry shortly"
            return 503, dumps({"error": reason})
        metrics.FORWARDED.labels("answered").inc()
        return answer.status, body
