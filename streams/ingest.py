"""The events path: batches from `spend.events` into ClickHouse, exactly once.

Faust's per-event stream costs far more per record than the work itself (see
`scripts/bench`), so this path reads with a plain aiokafka consumer in batches,
inside the Faust worker, and keeps its state per batch.

A flush, in this order:

1. cut it on the event loop: the records read so far, and each processor's
   `flush` (`streams.processors`), which starts writing its outputs;
2. land it in the background while the loop keeps reading, one flush at a
   time and in order: wait until Kafka acknowledges its DLQ records and each
   processor's outputs (`flushed`); their outputs land first;
3. write the flush to ClickHouse (`Store.write_flush`), retrying until it lands;
4. commit the consumer offsets.

Landing in the background keeps the loop from waiting on ClickHouse (a write
takes up to a few hundred ms under load, which trip latency would pay). The
next flush is cut only once the previous one has landed, unless it grows past
twice `flush_events`: then the loop waits. Revoking partitions and stopping
land everything first.

A crash after 3 and before 4 replays records that ClickHouse holds already:
records at or below a partition's high water (`Store.high_water`) are skipped,
and the dedup window is rebuilt from the ids of completed flushes.

Known shortcoming: one worker lands about 14,000 events/s against a bare
decode-and-validate consumer's 114,000 (`scripts/bench`, one run); the target
is 50,000. The processors' per-event work in this one thread sets it (breaker
windows and ledger booking, a fifth each of the loop's time); more worker
processes per host, or booking the ledger per batch, would raise it.
"""

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, TopicPartition
from mode import Service

from models.dedup import DedupWindow
from models.errors import InvalidRecord
from models.events import CostEvent, decode_cost_event
from models.rollup import MinuteRollup
from streams import metrics
from streams.dlq import dead_letter, encode
from streams.processors import EventProcessor
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics

log = logging.getLogger(__name__)

Record = ConsumerRecord[bytes, bytes]


@dataclass
class PartitionState:
    """What a worker keeps for one events partition it owns."""

    high_water: int
    dedup: DedupWindow
    last_read: int = -1
    last_flushed: int = -1


@dataclass
class Flush:
    """Everything read since the last flush."""

    rollups: dict[int, MinuteRollup] = field(default_factory=dict)
    seen: list[tuple[Any, ...]] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    dlq_sends: list[asyncio.Future[Any]] = field(default_factory=list)
    records: int = 0
    started_s: float = field(default_factory=time.monotonic)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, ingest: "EventIngest") -> None:
        self.ingest = ingest

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.ingest.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.ingest.on_assigned(assigned)


class EventIngest(Service):
    """Reads cost events in batches, rolls them up and lands them in ClickHouse."""

    def __init__(self, settings: Settings, store: Store, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.store = store
        self.topic = Topics(settings.topic_prefix).events
        self.dlq_topic = Topics(settings.topic_prefix).dlq
        self.partitions: dict[int, PartitionState] = {}
        self.flush = Flush()
        self.lock = asyncio.Lock()
        self.processors: list[EventProcessor] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._landing: asyncio.Task[None] | None = None
        self._landing_offsets: dict[TopicPartition, int] = {}

    async def on_start(self) -> None:
        s = self.settings
        # Large batches: aiokafka holds one queued batch per partition, and a
        # processor's output at event rate would otherwise wait on each.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka,
            max_request_size=s.max_message_bytes,
            max_batch_size=min(s.producer_batch_bytes, s.max_message_bytes),
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka,
            group_id=f"{s.app_id}-events",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.poll_max_records,
            fetch_max_bytes=s.max_message_bytes * 2,
            max_partition_fetch_bytes=s.max_message_bytes,
        )
        await self._producer.start()
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        # What the worker built at start-up lives as long as it does: moving it
        # out of the collector's generations keeps full collections short.
        gc.freeze()
        self._loop_task = asyncio.create_task(self._consume(), name="event-ingest")
        log.info("reading topic=%s group=%s-events", self.topic, s.app_id)

    async def on_stop(self) -> None:
        """Stop reading, flush what is held, commit, and close.

        The loop is cancelled only between polls (under the lock): cancelled
        inside a flush, it would drop the flush it had already taken.
        """
        async with self.lock:
            if self._loop_task is not None:
                self._loop_task.cancel()
                await asyncio.gather(self._loop_task, return_exceptions=True)
            await self._flush(wait=True)
            await self._drain()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        log.info("stopped reading topic=%s; everything read is flushed", self.topic)

    @property
    def producer(self) -> AIOKafkaProducer:
        """The worker's producer for processors' outputs; started with the ingest."""
        assert self._producer is not None, "ingest not started"
        return self._producer

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "ingest not started"
        return self._consumer

    async def _consume(self) -> None:
        try:
            await self._consume_forever()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("event ingest failed; stopping the worker")
            await self.crash(exc)

    async def _consume_forever(self) -> None:
        s = self.settings
        while True:
            batches = await self.consumer.getmany(
                timeout_ms=int(s.flush_interval_s * 1000 / 2),
                max_records=s.poll_max_records,
            )
            async with self.lock:
                for tp, records in batches.items():
                    self._take(tp, await self._state(tp.partition), records)
                for processor in self.processors:
                    await processor.after_poll()
                if self._flush_due():
                    await self._flush(wait=False)
                self._measure_lag()

    def _flush_due(self) -> bool:
        f = self.flush
        if f.records >= self.settings.flush_events:
            return True
        age_s = time.monotonic() - f.started_s
        return bool(f.offsets) and age_s >= self.settings.flush_interval_s

    def _take(
        self, tp: TopicPartition, state: PartitionState, records: list[Record]
    ) -> None:
        """Decode, check and count one partition's records from one poll."""
        partition, topic = tp.partition, self.topic
        rollup = self.flush.rollups.get(partition)
        if rollup is None:
            rollup = self.flush.rollups[partition] = MinuteRollup()
        seen, accepted, offsets = self.flush.seen, [], []
        replayed = duplicates = 0
        for record in records:
            if record.offset <= state.high_water:
                replayed += 1
                continue
            event = self._decode(record)
            if event is None:
                continue
            ts_s = event.ts.timestamp()
            if state.dedup.check_and_add(event.event_id, ts_s):
                duplicates += 1
                continue
            rollup.add(event, ts_s)
            seen.append(
                (event.event_id, int(ts_s * 1000), topic, partition, record.offset)
            )
            accepted.append(event)
            offsets.append(record.offset)
        if records:
            self.flush.offsets[tp] = state.last_read = records[-1].offset
        self.flush.records += len(accepted)
        self._measure(accepted, replayed, duplicates)
        for processor in self.processors:
            processor.add_read(partition, accepted, offsets)

    @staticmethod
    def _measure(accepted: list[CostEvent], replayed: int, duplicates: int) -> None:
        """Count a poll's outcomes once, not per event: metrics cost per call."""
        if accepted:
            metrics.COUNTED.inc(len(accepted))
            metrics.SPEND_USD.inc(float(sum(e.cost for e in accepted)))
        if replayed:
            metrics.REPLAYED.inc(replayed)
        if duplicates:
            metrics.DUPLICATES.inc(duplicates)

    def _decode(self, record: Record) -> CostEvent | None:
        size = len(record.value or b"")
        try:
            if size > self.settings.max_event_bytes:
                limit = self.settings.max_event_bytes
                msg = f"value of {size} bytes exceeds the limit of {limit} bytes"
                raise InvalidRecord(msg, kind="too_large")
            return decode_cost_event(record.value or b"")
        except InvalidRecord as exc:
            self._reject(record, exc)
            return None

    def _reject(self, record: Record, exc: InvalidRecord) -> None:
        assert self._producer is not None
        letter = dead_letter(record, exc.reason)
        send = self._producer.send(self.dlq_topic, encode(letter), key=record.key)
        self.flush.dlq_sends.append(asyncio.ensure_future(send))
        metrics.REJECTED.inc()
        metrics.DLQ_RECORDS.labels(exc.kind).inc()
        log.debug(
            "rejected topic=%s partition=%d offset=%d reason=%s",
            record.topic,
            record.partition,
            record.offset,
            exc.reason,
        )

    def _minute_rows(self, flush: Flush) -> list[tuple[Any, ...]]:
        last = {tp.partition: off for tp, off in flush.offsets.items()}
        return [
            (
                *key,
                t.events,
                t.input_tokens,
                t.output_tokens,
                t.cost_usd,
                self.topic,
                partition,
                last[partition],
            )
            for partition, rollup in flush.rollups.items()
            for key, t in rollup.items()
        ]

    async def _flush(self, *, wait: bool) -> None:
        """Cut the held flush and start landing it (steps in the module docstring).

        With a flush still landing, a new one is cut only if `wait`, or once
        the held one is twice `flush_events`; meanwhile the loop reads on.
        """
        if self._landing is not None and not self._landing.done():
            if not wait and self.flush.records < 2 * self.settings.flush_events:
                return
            await self._drain()
        flush, self.flush = self.flush, Flush()
        if not flush.offsets:
            return
        for processor in self.processors:
            await processor.flush()
        self._landing_offsets = flush.offsets
        self._landing = asyncio.create_task(self._land(flush), name="land-flush")
        self._landing.add_done_callback(self._landed)

    async def _drain(self) -> None:
        """Wait until the flush being landed, if any, has landed."""
        if self._landing is not None:
            await asyncio.shield(self._landing)

    def _landed(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("landing a flush failed; stopping the worker")
            self._crashing = asyncio.ensure_future(self.crash(exc))

    async def _land(self, flush: Flush) -> None:
        """Wait for the flush's Kafka outputs, write ClickHouse, then commit."""
        started_s = time.monotonic()
        for send in flush.dlq_sends:
            await (await send)
        for processor in self.processors:
            await processor.flushed()
        minutes = self._minute_rows(flush)
        await self._write(flush.seen, minutes)
        for tp, offset in flush.offsets.items():
            state = self.partitions.get(tp.partition)
            if state is None:
                continue
            state.last_flushed = offset
            if tp.partition in flush.rollups:
                state.high_water = offset
        commit = {
            tp: off + 1
            for tp, off in flush.offsets.items()
            if tp.partition in self.partitions
        }
        if commit:
            await self._commit(commit)
        self._landing_offsets = {}
        metrics.FLUSH_SECONDS.observe(time.monotonic() - started_s)
        log.debug("flushed records=%d rows=%d", flush.records, len(minutes))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # Harmless: ClickHouse holds the flush, and its high water makes
            # the next owner skip what this commit would have covered.
            log.info("offset commit lost to a rebalance; ClickHouse has the flush")

    async def _write(self, seen: list[Any], minutes: list[Any]) -> None:
        delay_s = 0.2
        while True:
            try:
                await self.store.run(self.store.write_flush, seen, minutes)
                return
            except Exception:
                metrics.FLUSH_FAILURES.inc()
                log.exception("flush to ClickHouse failed; retrying in %.1fs", delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        """Load the state of partitions new to this worker."""
        mine = [tp.partition for tp in assigned if tp.topic == self.topic]
        async with self.lock:
            for partition in mine:
                await self._state(partition)
        for processor in self.processors:
            await processor.on_assigned(mine)

    async def _state(self, partition: int) -> PartitionState:
        """A partition's state, restored on first use.

        Records of a new partition can arrive before the assignment callback
        has run, so whichever comes first restores it.
        """
        state = self.partitions.get(partition)
        if state is None:
            state = self.partitions[partition] = await self._restore(partition)
        return state

    async def _restore(self, partition: int) -> PartitionState:
        """Where ClickHouse ends for `partition`, and its recent event ids."""
        s = self.settings
        high = await self.store.run(self.store.high_water, self.topic)
        high_water = high.get(partition, -1)
        window = DedupWindow(s.dedup_horizon_s, s.dedup_max_ids)
        if high_water >= 0:
            ids = await self.store.run(
                self.store.recent_ids,
                self.topic,
                partition,
                high_water,
                s.dedup_horizon_s,
                s.dedup_max_ids,
            )
            for event_id, ts in ids:
                window.add(event_id, ts.timestamp())
        log.info(
            "restored topic=%s partition=%d high_water=%d ids=%d",
            self.topic,
            partition,
            high_water,
            len(window),
        )
        committed = await self.consumer.committed(TopicPartition(self.topic, partition))
        done = max(high_water, (committed or 0) - 1)
        return PartitionState(high_water, window, last_read=done, last_flushed=done)

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Land what is held for partitions leaving this worker, then forget them."""
        async with self.lock:
            await self._flush(wait=True)
            await self._drain()
        for tp in revoked:
            self.partitions.pop(tp.partition, None)
        for processor in self.processors:
            await processor.on_revoked([tp.partition for tp in revoked])
        if revoked:
            log.info(
                "revoked topic=%s partitions=%s",
                self.topic,
                sorted(tp.partition for tp in revoked),
            )

    def progress(self) -> dict[str, Any]:
        """Per owned partition: last offset read, flushed and the topic's end."""
        parts: dict[str, Any] = {}
        caught_up = bool(self.partitions)
        for partition, state in sorted(self.partitions.items()):
            tp = TopicPartition(self.topic, partition)
            end = self._consumer.highwater(tp) if self._consumer else None
            pending = tp in self.flush.offsets or tp in self._landing_offsets
            parts[str(partition)] = {
                "read": state.last_read,
                "flushed": state.last_flushed,
                "end": end,
            }
            if end is None or state.last_read + 1 < end or pending:
                caught_up = False
        return {"partitions": parts, "caught_up": caught_up}

    def _measure_lag(self) -> None:
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            state = self.partitions.get(tp.partition)
            if end is None or state is None:
                continue
            lag = max(end - state.last_read - 1, 0)
            metrics.CONSUMER_LAG.labels(str(tp.partition)).set(lag)
