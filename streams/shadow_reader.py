"""Every worker's copy of the shadow model: the latest snapshot, followed live.

`ShadowReader` reads the model topic from its last record and keeps
following it; a new snapshot is loaded off the event loop and swapped in
whole, so an estimate always sees one complete model. Until the first
snapshot arrives the worker estimates with an empty model (zeros, said so).
"""

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from mode import Service

from models.errors import SnapshotError
from models.shadow import ShadowModel, snapshot_header
from streams import metrics
from streams.latest import last_offset
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)


class ShadowReader(Service):
    """Holds the latest published shadow model of this worker's topics."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.tp = TopicPartition(Topics(settings.topic_prefix).shadow_model, 0)
        self.model = ShadowModel(
            confidence_level=settings.shadow_confidence_level,
            min_tasks=settings.shadow_min_tasks,
        )
        self.loaded: dict[str, Any] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka,
            enable_auto_commit=False,
            max_partition_fetch_bytes=self.settings.max_message_bytes,
        )
        await self._consumer.start()
        self._consumer.assign([self.tp])
        last = await last_offset(self._consumer, self.tp)
        if last >= 0:
            self._consumer.seek(self.tp, last)
        self._loop_task = asyncio.create_task(self._follow(), name="shadow-reader")

    async def on_stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(self.tp, timeout_ms=1000)
            records = batch.get(self.tp)
            if records:
                await self._load(records[-1].value or b"")

    async def _load(self, snapshot: bytes) -> None:
        """Swap in a snapshot unless it is the one loaded; keep the old on error."""
        try:
            about = snapshot_header(snapshot)
            if self.loaded is not None and _same(about, self.loaded):
                return
            model = await asyncio.to_thread(ShadowModel.from_bytes, snapshot)
        except SnapshotError as exc:
            log.error("kept model_version=%s: %s", self.version, exc)
            return
        model.min_tasks = self.settings.shadow_min_tasks
        self.model, self.loaded = model, about
        metrics.SHADOW_VERSION.labels("reader").set(model.model_version)
        log.info(
            "loaded shadow model_version=%d n_learnt=%d bytes=%d",
            model.model_version,
            model.n_learnt,
            len(snapshot),
        )

    @property
    def version(self) -> int:
        """The loaded model's version, 0 before the first snapshot."""
        return self.model.model_version

    def status(self) -> dict[str, Any]:
        """What this worker estimates with, for `GET /v1/shadow`."""
        return {
            "model_version": self.model.model_version,
            "n_learnt": self.model.n_learnt,
            "min_tasks": self.model.min_tasks,
            "agents": sorted(self.model.agents),
            "snapshot_loaded": self.loaded is not None,
        }


def _same(about: dict[str, Any], loaded: dict[str, Any]) -> bool:
    keys = ("model_version", "n_learnt")
    return all(about.get(k) == loaded.get(k) for k in keys)
