"""Dead letters: a rejected record, where it came from and why, on `spend.dlq`."""

import base64
import logging
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from models.codec import dumps
from models.records import DlqRecord

log = logging.getLogger(__name__)


def _as_text(raw: bytes | None) -> tuple[str, str]:
    if raw is None:
        return "", "text"
    try:
        return raw.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def dead_letter(record: ConsumerRecord[bytes, bytes], reason: str) -> DlqRecord:
    """The DLQ record for `record`, its value kept as received."""
    value, encoding = _as_text(record.value)
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    return DlqRecord(
        ts=datetime.now(UTC),
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
        value=value,
        value_encoding=encoding,
        reason=reason,
    )


def encode(letter: DlqRecord) -> bytes:
    return dumps(letter.to_json_dict())
