from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from models.codec import dumps
from models.errors import InvalidRecord, PricingError
from models.events import decode_cost_event


def raw(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "ts": "2026-11-30T12:00:00+01:00",
        "session_id": "s-1",
        "agent": "copywriter",
        "principal": "marketing",
        "cost_usd": "0.05",
    }
    base.update(fields)
    return dumps({k: v for k, v in base.items() if v is not None})


def test_a_minimal_event_gets_its_defaults() -> None:
    event = decode_cost_event(raw())
    assert event.ts == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert event.owner == "marketing"
    assert event.kind == "llm"
    assert event.cost == Decimal("0.05")


def test_unknown_fields_are_kept() -> None:
    event = decode_cost_event(raw(region="eu-west-1", attributes={"retry": 2}))
    assert event.to_json_dict()["region"] == "eu-west-1"
    assert event.attributes == {"retry": 2}


def test_cost_may_be_a_json_number_or_a_string() -> None:
    assert decode_cost_event(
        b'{"event_id":"e","ts":"2026-11-30T12:00:00Z",'
        b'"session_id":"s","agent":"a","principal":"p",'
        b'"cost_usd":0.1}'
    ).cost == Decimal("0.1")
    assert decode_cost_event(raw(cost_usd="0.1")).cost == Decimal("0.1")


def test_missing_cost_is_priced_from_the_catalogue() -> None:
    event = decode_cost_event(
        raw(
            cost_usd=None,
            model="gpt-4o",
            provider="openai",
            input_tokens=1_000_000,
            output_tokens=0,
        )
    )
    assert event.cost == Decimal("2.5")


def test_cached_input_is_priced_as_cache_reads() -> None:
    full = decode_cost_event(raw(cost_usd=None, model="gpt-4o", input_tokens=1000))
    cached = decode_cost_event(
        raw(cost_usd=None, model="gpt-4o", input_tokens=1000, cached_input_tokens=1000)
    )
    assert cached.cost < full.cost


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"agent": None}, "agent: field required"),
        ({"event_id": ""}, "event_id: string should have at least 1 character"),
        ({"cost_usd": "-0.01"}, "greater than or equal to 0"),
        ({"ts": "2026-11-30T12:00:00"}, "ts: input should have timezone info"),
        ({"ts": "yesterday"}, "ts: input should be a valid datetime"),
        ({"input_tokens": -1}, "input_tokens"),
        ({"input_tokens": "12"}, "input_tokens: input should be a valid integer"),
        ({"kind": "human"}, "kind: input should be 'llm', 'tool' or 'agent'"),
        ({"input_tokens": 1, "cached_input_tokens": 2}, "exceeds input_tokens"),
    ],
)
def test_invalid_events_name_the_field_and_why(
    fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidRecord) as caught:
        decode_cost_event(raw(**fields))
    assert reason in caught.value.reason


def test_an_unknown_model_without_cost_cannot_be_priced() -> None:
    with pytest.raises(PricingError, match="not in the price catalogue"):
        decode_cost_event(raw(cost_usd=None, model="no-such-model"))
    with pytest.raises(PricingError, match="no model"):
        decode_cost_event(raw(cost_usd=None))
