"""Budget grants in the worker: the table, the agents, the timer and the views.

How a change reaches a grant (every topic below is co-partitioned, keyed by
the grant that applies the record, and has `events_partitions` partitions):

- `spend.grants` → agent `route_grant_commands`: a bad command goes to the DLQ
  with the reason; a good one is forwarded to grant-ops keyed by
  `models.wallet.route_key`, with the partition and offset it was read at;
- spend.events → `streams.grant_debits.GrantDebits` → grant-ops (debits);
- grant-ops → agent `apply_grant_ops` → `streams.grant_book.GrantBook`,
  which also produces the fund protocol's transfers back to grant-ops;
- the `grants` table holds one entry per grant (`models.grant_replay`), its
  changelog is `<prefix>grants-changelog`;
- the changelog → `streams.grant_landing.ActivityLanding` → ClickHouse
  `grant_activity` (each stored entry carries its cycle's rows).
"""

import logging
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.structs import ConsumerRecord

from models.codec import loads
from models.errors import InvalidRecord
from models.grant_ops import CommandOp, encode_op
from models.records import GrantCommand
from models.validation import validate
from streams import metrics
from streams.dlq import dead_letter, encode
from streams.grant_book import GrantBook
from streams.grant_debits import GrantDebits
from streams.grant_landing import ActivityLanding
from streams.grant_views import install_grant_views
from streams.ingest import EventIngest
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics

log = logging.getLogger(__name__)


def install_grants(
    app: faust.App, settings: Settings, store: Store, ingest: EventIngest
) -> GrantBook:
    """Declare the grants table, topics, agents, timer and views on `app`."""
    topics = Topics(settings.topic_prefix)
    table = _table(app, topics, settings.events_partitions)
    book = GrantBook(app, table, settings)
    app.service(ActivityLanding(settings, store))  # type: ignore[arg-type]
    ingest.processors.append(GrantDebits(ingest, topics.grant_ops))
    install_grant_views(app, table, book)
    _route_commands(app, topics, settings)
    _apply_ops(app, book, topics, settings)

    @app.timer(settings.grant_sweep_interval_s)
    async def sweep_grants() -> None:
        if not app.rebalancing:
            await book.sweep(datetime.now(UTC))

    @app.on_partitions_revoked.connect
    async def finish_cycle(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        await book.drain()

    @app.on_before_shutdown.connect
    async def stop_book(app: faust.App, **kwargs: Any) -> None:
        await book.stop()

    return book


def _table(app: faust.App, topics: Topics, partitions: int) -> faust.Table:
    """Grant entries by grant id (UTF-8 bytes), JSON values, written anywhere."""
    changelog = app.topic(
        topics.grants_changelog,
        key_type=bytes,
        key_serializer="raw",
        value_serializer="json",
        partitions=partitions,
        compacting=True,
        acks=False,
        internal=True,
        maxsize=131_072,
        allow_empty=True,
    )
    return app.Table(
        "grants",
        key_type=bytes,
        partitions=partitions,
        changelog_topic=changelog,
        use_partitioner=True,
        help="budget grants: state and replay marks per grant",
    )


def _raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic read as bytes: spendstream decodes and validates values itself."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def _route_commands(app: faust.App, topics: Topics, settings: Settings) -> None:
    source = app.topic(topics.grants, key_type=bytes, value_type=bytes, partitions=None)

    @app.agent(source, name="route_grant_commands")
    async def route_grant_commands(stream: faust.Stream) -> None:
        async for event in stream.events():
            await _forward_command(app, topics, event.message)


async def _forward_command(app: faust.App, topics: Topics, message: Any) -> None:
    """Send one command on to the partition of its `route_key`, or to the DLQ."""
    try:
        command = validate(GrantCommand, loads(message.value or b""))
    except InvalidRecord as exc:
        letter = dead_letter(_as_record(message), exc.reason)
        key = message.key
        await app.producer.send(topics.dlq, key, encode(letter), None, None, None)
        metrics.DLQ_RECORDS.labels(exc.kind).inc()
        return
    op = CommandOp(
        command=command,
        source_partition=message.partition,
        source_offset=message.offset,
    )
    value = encode_op(op)
    await app.producer.send(topics.grant_ops, op.key.encode(), value, None, None, None)


def _as_record(message: Any) -> ConsumerRecord[bytes, bytes]:
    """A Faust message as the aiokafka record `streams.dlq` takes."""
    return ConsumerRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=int(message.timestamp * 1000),
        timestamp_type=message.timestamp_type,
        key=message.key,
        value=message.value,
        checksum=None,
        serialized_key_size=message.serialized_key_size,
        serialized_value_size=message.serialized_value_size,
        headers=(),
    )


def _apply_ops(
    app: faust.App, book: GrantBook, topics: Topics, settings: Settings
) -> None:
    source = _raw_topic(app, topics.grant_ops)
    batch, within_s = settings.grant_batch_max, settings.grant_batch_within_s

    @app.agent(source, name="apply_grant_ops")
    async def apply_grant_ops(stream: faust.Stream) -> None:
        async for values in stream.take(batch, within=within_s):
            await book.apply_ops(values)
