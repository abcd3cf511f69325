"""The learner's log: validated task records and usage batches, in one order.

Workers forward valid `spend.tasks` records and send usage batches from the
events path to one single-partition topic, so the one learner reads them in
one order, and a single offset says how far it has got.

>>> from datetime import UTC, datetime
>>> record = TaskRecord(status="finished", task_id="t1",
...     ts=datetime(2026, 11, 1, tzinfo=UTC))
>>> decode_log_entry(encode_task(record)) == record
True
"""

from typing import Any

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.records import TaskRecord
from models.task_usage import UsageBatch
from models.validation import validate

LogEntry = TaskRecord | UsageBatch


def encode_task(record: TaskRecord) -> bytes:
    """A validated task record as a log entry."""
    return dumps({"kind": "task", "record": record.to_json_dict()})


def encode_usage(batch: UsageBatch) -> bytes:
    """A usage batch as a log entry."""
    return dumps({"kind": "usage", **batch.to_json_dict()})


def decode_log_entry(raw: bytes) -> LogEntry:
    """Read a log entry; `InvalidRecord` says why it is not one."""
    value = loads(raw)
    kind = value.get("kind")
    if kind == "task":
        record: Any = value.get("record")
        if not isinstance(record, dict):
            raise InvalidRecord("task log entry has no record object")
        return validate(TaskRecord, record)
    if kind == "usage":
        try:
            return UsageBatch.from_json_dict(value)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidRecord(f"invalid usage batch: {exc!r}") from None
    raise InvalidRecord(f"task log entry kind {kind!r} is neither task nor usage")
