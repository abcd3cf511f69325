"""JSON in and out of Kafka, with decimals kept exact.

>>> loads(b'{"cost_usd": 0.1}')["cost_usd"]
Decimal('0.1')
"""

import json
from decimal import Decimal
from typing import Any

from models.errors import InvalidRecord


def _refuse_constant(name: str) -> Any:
    msg = f"JSON constant {name} is not a number spendstream accepts"
    raise InvalidRecord(msg, kind="malformed_json")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)
"""One decoder for every record: building one per call costs more than decoding."""


def loads(raw: bytes | str) -> dict[str, Any]:
    """Decode one record's value: a UTF-8 JSON object, numbers as `Decimal`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        msg = f"value is not UTF-8: {exc.reason} at byte {exc.start}"
        raise InvalidRecord(msg, kind="not_utf8") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        msg = f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise InvalidRecord(msg, kind="malformed_json") from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise InvalidRecord(
            f"value must be a JSON object, got a JSON {kind}", kind="not_an_object"
        )
    return value


def int_or_none(value: Any) -> int | None:
    """`value` if it is a JSON integer or null; TypeError otherwise (bools too)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"expected an integer or null, got {value!r}")


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{value:f}"
    msg = f"cannot encode {type(value).__name__} as JSON"
    raise TypeError(msg)


def dumps(value: dict[str, Any]) -> bytes:
    """Encode a record as compact UTF-8 JSON; decimals become strings."""
    return json.dumps(value, default=_default, separators=(",", ":")).encode()
