"""The learner's log: task records, usage batches, progress reports, in one order.

Workers forward valid `spend.tasks` records, and send usage batches and
progress reports from the events path, to one single-partition topic, so the
one learner reads them in one order, and a single offset says how far it got.

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
from models.task_features import features_of
from models.task_usage import ProgressReport, UsageBatch
from models.validation import validate

LogEntry = TaskRecord | UsageBatch | ProgressReport


def decode_task_record(raw: bytes) -> TaskRecord:
    """A `spend.tasks` record, checked before it enters the log.

    A started record's features are validated too (`models.task_features`),
    so the learner never holds a prompt it could not learn from. Raises
    `InvalidRecord` (or `InvalidTask`) with the reason, for the DLQ.
    """
    record = validate(TaskRecord, loads(raw))
    if record.status == "started":
        features_of(record)
    return record


def encode_task(record: TaskRecord) -> bytes:
    """A validated task record as a log entry."""
    return dumps({"kind": "task", "record": record.to_json_dict()})


def encode_usage(batch: UsageBatch) -> bytes:
    """A usage batch as a log entry."""
    return dumps({"kind": "usage", **batch.to_json_dict()})


def encode_progress(report: ProgressReport) -> bytes:
    """A progress report as a log entry."""
    return dumps({"kind": "progress", **report.to_json_dict()})


def decode_log_entry(raw: bytes) -> LogEntry:
    """Read a log entry; `InvalidRecord` says why it is not one."""
    value = loads(raw)
    kind = value.get("kind")
    if kind == "task":
        record: Any = value.get("record")
        if not isinstance(record, dict):
            raise InvalidRecord("task log entry has no record object")
        return validate(TaskRecord, record)
    if kind not in ("usage", "progress"):
        msg = f"task log entry kind {kind!r} is not task, usage or progress"
        raise InvalidRecord(msg)
    try:
        if kind == "usage":
            return UsageBatch.from_json_dict(value)
        return ProgressReport.from_json_dict(value)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise InvalidRecord(f"invalid {kind} entry: {exc!r}") from None
