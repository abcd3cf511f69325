"""The one learner: the task log's single partition, owned by one group member.

Every worker runs this service in the consumer group `<app_id>-shadow-learner`
on the single-partition task log, so Kafka gives the partition to exactly one
of them: that worker learns, the others stand by and take over on a
rebalance. The learner never trusts the group's committed offset: on
assignment it restores its latest checkpoint (`spend.shadow-learner`) and
seeks to the offset after the one the checkpoint stands at.

A checkpoint, in this order:

1. the progressive-validation rows of every task learnt so far are in
   ClickHouse (written after each poll, before this step);
2. the checkpoint is written to the learner topic and acknowledged;
3. when tasks were learnt since the last one, the model snapshot it holds
   (a new version) is written to the model topic, which every worker follows;
4. the task log offset is committed, for lag monitoring only.

A crash after 1 re-learns the tasks after the checkpoint and writes their
rows again, which `shadow_predictions` keeps once per task.

Known shortcoming: when a checkpoint cannot be written (over
`shadow_checkpoint_max_bytes`), the model is still published; a crash before
the next good checkpoint then publishes a later snapshot under a version
number already used. Estimates carry `n_learnt` too, which tells them apart.
"""

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from mode import Service

from models.errors import InvalidRecord, InvalidTask, SnapshotError
from models.shadow import ShadowModel
from models.shadow_eval import ShadowScore
from models.shadow_learner import ShadowLearner
from models.task_gate import ReleaseGate
from models.task_log import decode_log_entry
from models.tasks import FinishedTask, TaskTracker
from streams import metrics
from streams.latest import read_latest
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics

log = logging.getLogger(__name__)

POLL_RECORDS = 500
REPLAY_ENTRIES = 20_000
RETRY_S = 1.0


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: "ShadowLearnerService") -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.service.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.service.owned = bool(assigned)


class ShadowLearnerService(Service):
    """Learns from the task log while this worker owns its partition."""

    def __init__(self, settings: Settings, store: Store, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.store = store
        self.topics = Topics(settings.topic_prefix)
        self.tp = TopicPartition(self.topics.task_log, 0)
        self.lock = asyncio.Lock()
        self.owned = False
        self.learner: ShadowLearner | None = None
        self.score = ShadowScore()
        self.resumed_from: dict[str, Any] | None = None
        self.learnt_here = 0
        self._since_publish = 0
        self.checkpointed = _about(None)
        """Where the last checkpoint taken (or resumed from) stands; a failed
        write is counted in metrics, not retried before the next one is due."""
        self._checkpointed_s = time.monotonic()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        s = self.settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka, max_request_size=s.shadow_checkpoint_max_bytes
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka,
            group_id=f"{s.app_id}-shadow-learner",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=s.max_message_bytes,
        )
        await self._producer.start()
        await self._consumer.start()
        self._consumer.subscribe([self.tp.topic], listener=_Rebalance(self))
        self._loop_task = asyncio.create_task(self._consume(), name="shadow-learner")

    async def on_stop(self) -> None:
        """Stop learning, checkpoint what was learnt, and close."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        async with self.lock:
            await self._checkpoint()
            self.learner = None
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "learner not started"
        return self._consumer

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "learner not started"
        return self._producer

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Checkpoint before the partition goes to another worker."""
        self.owned = False
        async with self.lock:
            await self._checkpoint()
            self.learner = None
        if revoked:
            log.info("learner partition revoked topic=%s", self.tp.topic)

    async def _consume(self) -> None:
        try:
            while True:
                if self.owned and self.learner is None:
                    await self._resume()
                batches = await self.consumer.getmany(
                    timeout_ms=500, max_records=POLL_RECORDS
                )
                async with self.lock:
                    if self.learner is not None:
                        await self._take(batches.get(self.tp, []))
                        if self._checkpoint_due():
                            await self._checkpoint()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("shadow learner failed; stopping the worker")
            await self.crash(exc)

    async def _resume(self) -> None:
        """Restore the latest checkpoint and seek to the entry after it."""
        async with self.lock:
            while self.owned and self.learner is None:
                try:
                    self.learner = await self._restore()
                except KafkaError:
                    log.exception("cannot read the learner topic; retrying")
                    await asyncio.sleep(RETRY_S)
            learner = self.learner
            if learner is None or self.tp not in self.consumer.assignment():
                self.learner = None  # revoked while restoring
                return
            if learner.log_offset < 0:
                await self.consumer.seek_to_beginning(self.tp)
            else:
                self.consumer.seek(self.tp, learner.log_offset + 1)
            self.checkpointed = _about(learner)
            self._checkpointed_s = time.monotonic()
            if learner.model.n_learnt:
                await self._send_model(learner.model.to_bytes())

    async def _restore(self) -> ShadowLearner:
        s = self.settings
        found = await read_latest(
            s.kafka, self.topics.shadow_learner, s.shadow_checkpoint_max_bytes
        )
        if found is None:
            log.info(
                "learner starts afresh: no checkpoint on %s", self.topics.shadow_learner
            )
            return self._fresh()
        try:
            learner = await asyncio.to_thread(ShadowLearner.restore, found.value or b"")
        except SnapshotError as exc:
            log.error("learner starts afresh: %s", exc)
            return self._fresh()
        learner.model.min_tasks = s.shadow_min_tasks
        self.resumed_from = _about(learner)
        log.info(
            "learner resumed log_offset=%d model_version=%d n_learnt=%d",
            learner.log_offset,
            learner.model.model_version,
            learner.model.n_learnt,
        )
        return learner

    def _fresh(self) -> ShadowLearner:
        s = self.settings
        model = ShadowModel(
            confidence_level=s.shadow_confidence_level, min_tasks=s.shadow_min_tasks
        )
        tracker = TaskTracker(
            ttl_s=s.shadow_task_ttl_s, max_tasks=s.shadow_max_open_tasks
        )
        return ShadowLearner(model, tracker, ReleaseGate(s.shadow_settle_s))

    async def _take(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Take a poll's entries; learn each task due, yielding in between.

        Every `shadow_publish_tasks` tasks a checkpoint is taken, between
        entries, never inside one: the tasks an entry releases are learnt and
        their rows written before the checkpoint stands at that entry.
        """
        learner = self.learner
        assert learner is not None
        rows: list[dict[str, Any]] = []
        for record in records:
            if record.offset <= learner.log_offset:
                continue
            for task in self._entry(learner, record):
                row = self._learn(learner, task)
                if row is not None:
                    rows.append(row)
                await asyncio.sleep(0)  # estimates get their turn between tasks
            if self._since_publish >= self.settings.shadow_publish_tasks:
                await self._land(rows)
                rows = []
                await self._checkpoint()
        await self._land(rows)

    def _entry(
        self, learner: ShadowLearner, record: ConsumerRecord[bytes, bytes]
    ) -> list[FinishedTask]:
        """The tasks a log entry releases; a damaged entry is skipped."""
        try:
            entry = decode_log_entry(record.value or b"")
        except InvalidRecord as exc:
            log.warning("skipped offset=%d reason=%s", record.offset, exc.reason)
            learner.log_offset = record.offset
            return []
        return learner.take(record.offset, entry)

    async def _land(self, rows: list[dict[str, Any]]) -> None:
        """Write prediction rows to ClickHouse and update the score metrics."""
        if rows:
            await self._write(rows)
            self._measure()

    def _learn(
        self, learner: ShadowLearner, task: FinishedTask
    ) -> dict[str, Any] | None:
        try:
            prediction = learner.learn(task)
        except InvalidTask as exc:
            metrics.SHADOW_TASKS.labels("skipped").inc()
            log.info("skipped task_id=%s reason=%s", task.task_id, exc.reason)
            return None
        self.score.update(prediction)
        self.learnt_here += 1
        self._since_publish += 1
        metrics.SHADOW_TASKS.labels("learnt").inc()
        return prediction.to_row()

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        delay_s = 0.2
        while True:
            try:
                await self.store.run(self.store.write_shadow_predictions, rows)
                return
            except Exception:
                log.exception("writing predictions failed; retrying in %.1fs", delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)

    def _measure(self) -> None:
        values = self.score.as_metrics()
        for target in ("steps", "tokens", "cost_usd"):
            metrics.SHADOW_MAE.labels(target, "model").set(values[f"mae_{target}"])
            baseline = values[f"baseline_mae_{target}"]
            metrics.SHADOW_MAE.labels(target, "agent_mean").set(baseline)
            metrics.SHADOW_COVERAGE.labels(target).set(values[f"coverage_{target}"])

    def _checkpoint_due(self) -> bool:
        """`shadow_publish_interval_s` after a task was learnt (`_take` takes one
        every `shadow_publish_tasks`). Entries that teach nothing (progress
        reports, usage of open tasks) wait until `REPLAY_ENTRIES` of them would
        be read again."""
        s = self.settings
        offset = self.checkpointed["log_offset"]
        behind = self.learner is not None and self.learner.log_offset - offset
        if behind and behind >= REPLAY_ENTRIES:
            return True
        age_s = time.monotonic() - self._checkpointed_s
        return self._since_publish > 0 and age_s >= s.shadow_publish_interval_s

    async def _checkpoint(self) -> None:
        """Checkpoint and publish; the steps are numbered in the module docstring."""
        learner = self.learner
        if learner is None or learner.log_offset == self.checkpointed["log_offset"]:
            return
        publish = self._since_publish > 0
        model = learner.model
        snapshot = await asyncio.to_thread(model.publish if publish else model.to_bytes)
        data = await asyncio.to_thread(learner.checkpoint, snapshot)
        try:
            await self._send(self.topics.shadow_learner, data)
            metrics.SHADOW_SNAPSHOT_BYTES.labels("checkpoint").set(len(data))
        except KafkaError:
            metrics.SHADOW_CHECKPOINT_FAILURES.inc()
            log.exception("checkpoint of %d bytes not written", len(data))
        if publish:
            await self._send_model(snapshot)
        self._since_publish = 0
        self.checkpointed = _about(learner)
        self._checkpointed_s = time.monotonic()
        await self._commit(learner.log_offset + 1)
        log.info(
            "checkpoint log_offset=%d model_version=%d n_learnt=%d",
            learner.log_offset,
            model.model_version,
            model.n_learnt,
        )

    async def _send_model(self, snapshot: bytes) -> None:
        await self._send(self.topics.shadow_model, snapshot)
        metrics.SHADOW_SNAPSHOT_BYTES.labels("model").set(len(snapshot))
        if self.learner is not None:
            metrics.SHADOW_VERSION.labels("learner").set(
                self.learner.model.model_version
            )

    async def _send(self, topic: str, value: bytes) -> None:
        await (await self.producer.send(topic, value, key=b"shadow"))

    async def _commit(self, offset: int) -> None:
        try:
            await self.consumer.commit({self.tp: offset})
        except KafkaError:
            log.info("learner offset commit lost to a rebalance; the checkpoint has it")

    def status(self) -> dict[str, Any]:
        """What this worker's learner holds, for `GET /v1/shadow`."""
        learner = self.learner
        if learner is None:
            return {"active": False, "learnt_here": self.learnt_here}
        return {
            "active": True,
            "log_offset": learner.log_offset,
            "checkpoint": self.checkpointed,
            "model_version": learner.model.model_version,
            "n_learnt": learner.model.n_learnt,
            "learnt_here": self.learnt_here,
            "open_tasks": len(learner.tracker),
            "held_finished": len(learner.gate.held),
            "resumed_from": self.resumed_from,
        }


def _about(learner: ShadowLearner | None) -> dict[str, int]:
    """Where a learner stands: log offset, model version, tasks learnt."""
    if learner is None:
        return {"log_offset": -1, "model_version": 0, "n_learnt": 0}
    return {
        "log_offset": learner.log_offset,
        "model_version": learner.model.model_version,
        "n_learnt": learner.model.n_learnt,
    }
