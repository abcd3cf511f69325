"""`spend.tasks` to the learner's log: a Faust agent on every worker.

Task records are few (two a task), so Faust's per-record stream fits here.
Each worker validates the records of the tasks partitions it owns
(`models.task_log.decode_task_record`), sends bad ones to the DLQ with the
reason and forwards good ones to the single-partition task log that the one
learner reads. Faust flushes its producer before it commits the offsets, so
a crash forwards a record again at worst; the learner's task tracker takes a
record twice as once.
"""

import logging
from typing import Any

import faust

from models.errors import InvalidRecord
from models.task_log import decode_task_record, encode_task
from streams import metrics
from streams.dlq import dead_letter, encode
from streams.topics import Topics

log = logging.getLogger(__name__)


def install_task_router(app: faust.App, topics: Topics) -> None:
    """Register the agent that forwards task records on `app`."""
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(topics.tasks, **raw)
    task_log = app.topic(topics.task_log, **raw)
    dlq = app.topic(topics.dlq, **raw)

    @app.agent(source, name="task-router")
    async def route_tasks(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            try:
                record = decode_task_record(message.value or b"")
            except InvalidRecord as exc:
                letter = dead_letter(message, exc.reason)
                await dlq.send(key=message.key, value=encode(letter))
                metrics.TASK_RECORDS.labels("rejected").inc()
                metrics.DLQ_RECORDS.labels(exc.kind).inc()
                log.debug(
                    "rejected topic=%s partition=%d offset=%d reason=%s",
                    message.topic,
                    message.partition,
                    message.offset,
                    exc.reason,
                )
                continue
            await task_log.send(key=record.task_id.encode(), value=encode_task(record))
            metrics.TASK_RECORDS.labels("forwarded").inc()
