"""Chargeback positions per department: a Faust table fed from `spend.ledger`.

The table is keyed by department, as `spend.ledger` is, and has as many
partitions: Faust assigns partition N of both to the same worker, and its
changelog is partitioned by the key (`use_partitioner`), so the worker that
reads a department's entries holds its positions and answers for it.

The agent takes the ledger in batches (`take_events`: a batch's offsets are
needed) and writes each department once per batch. An entry is applied with
its offset, so neither a re-read of the topic nor an entry produced twice
counts twice (see `models.positions.DepartmentPositions.apply`).
"""

import logging
from collections.abc import Sequence
from typing import Any

import faust
from pydantic import ValidationError

from models.ledger import ledger_keys
from models.positions import DepartmentPositions
from models.records import LedgerEntry
from streams import metrics
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)

TABLE_NAME = "chargeback-positions"


def positions_table(app: faust.App, settings: Settings) -> Any:
    """The table of `DepartmentPositions.to_dict()` values, by UTF-8 department.

    Keys are bytes, written raw, so that a department's changelog partition is
    its partition on `spend.ledger` (murmur2 of the same bytes).
    """
    partitions = settings.output_partitions
    changelog = app.topic(
        Topics(settings.topic_prefix).positions_changelog,
        partitions=partitions,
        key_serializer="raw",
        value_serializer="json",
        compacting=True,
        deleting=False,
        acks=False,
        internal=True,
        allow_empty=True,
    )
    return app.Table(
        TABLE_NAME,
        default=None,
        partitions=partitions,
        changelog_topic=changelog,
        use_partitioner=True,
        key_type=bytes,  # the UTF-8 department, as the key on spend.ledger
    )


def install_positions(app: faust.App, settings: Settings) -> Any:
    """Create the positions table and the agent that feeds it; return the table."""
    table = positions_table(app, settings)
    ledger = app.topic(
        Topics(settings.topic_prefix).ledger,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def keep_positions(stream: Any) -> None:
        async for events in stream.take_events(
            settings.positions_batch, within=settings.positions_batch_s
        ):
            apply_batch(table, events)

    app.agent(ledger, name=f"{settings.app_id}-chargeback-positions")(keep_positions)
    return table


def apply_batch(table: Any, events: Sequence[Any]) -> None:
    """Apply a batch of ledger records; write each department once."""
    books: dict[bytes, DepartmentPositions] = {}
    outcomes = {"applied": 0, "duplicate": 0, "invalid": 0}
    for event in events:
        message = event.message
        entry = _entry(message)
        if entry is None:
            outcomes["invalid"] += 1
            continue
        book = books.get(message.key)
        if book is None:
            book = books[message.key] = load_positions(table, message.key)
        applied = book.apply(entry, offset=message.offset)
        outcomes["applied" if applied else "duplicate"] += 1
    for key, book in books.items():
        table[key] = book.to_dict()
    for outcome, count in outcomes.items():
        if count:
            metrics.POSITIONS_RECORDS.labels(outcome).inc(count)


def load_positions(table: Any, key: bytes) -> DepartmentPositions:
    """The positions of the department `key` names, empty when it has none."""
    value = table.get(key)
    if value is None:
        return DepartmentPositions(key.decode())
    return DepartmentPositions.from_dict(value)


def _entry(message: Any) -> LedgerEntry | None:
    """The entry in a ledger record, or None (logged) when it is not one.

    Only workers write `spend.ledger`, so a bad record is a bug or a stranger
    writing to it: it is skipped, not sent to the DLQ.
    """
    try:
        entry = LedgerEntry.model_validate_json(message.value)
        department = (message.key or b"").decode()
    except (ValidationError, UnicodeDecodeError) as exc:
        _skip(message, str(exc).splitlines()[0])
        return None
    if department not in ledger_keys(entry):
        _skip(message, f"keyed {department!r}, not by a department of the entry")
        return None
    return entry


def _skip(message: Any, reason: str) -> None:
    log.warning(
        "skipped record topic=%s partition=%d offset=%d reason=%s",
        message.topic,
        message.partition,
        message.offset,
        reason,
    )
