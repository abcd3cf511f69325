"""Task features: bad input is refused with a reason, before any model sees it."""

from datetime import UTC, datetime
from typing import Any

import pytest

from models.errors import InvalidRecord, InvalidTask
from models.records import TaskRecord
from models.task_features import MAX_PROMPT_BYTES, features_of, parse_task_features

GOOD = {"prompt": "Write tests for the parser", "agent": "coder", "model": "large"}


def test_good_features_parse_and_unknown_fields_are_ignored() -> None:
    features = parse_task_features({**GOOD, "user": "ana", "priority": 3})
    assert (features.agent, features.model, features.user) == ("coder", "large", "ana")
    assert features.principal is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"prompt": None}, "prompt is missing"),
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": " \n\t"}, "prompt is empty"),
        ({"prompt": 42}, "prompt must be a string, got int"),
        ({"prompt": ["a", "b"]}, "prompt must be a string, got list"),
        ({"agent": None}, "agent: field required"),
        ({"agent": ""}, "agent: string should have at least 1 character"),
        ({"agent": "   "}, "agent is blank"),
        ({"agent": 7}, "agent: input should be a valid string"),
        ({"agent": "x" * 513}, "agent: string should have at most 512"),
        ({"user": {"id": 1}}, "user: input should be a valid string"),
        ({"model": b"large"}, "model: input should be a valid string"),
    ],
)
def test_bad_features_raise_a_domain_error_naming_the_field(
    change: dict[str, Any], reason: str
) -> None:
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(InvalidTask, match=reason) as caught:
        parse_task_features(raw)
    assert isinstance(caught.value, InvalidRecord), "the HTTP layer answers 4xx"


@pytest.mark.parametrize("raw", [["prompt"], "prompt", None, 3.5])
def test_features_must_be_an_object(raw: object) -> None:
    with pytest.raises(InvalidTask, match="must be a JSON object"):
        parse_task_features(raw)


def test_an_unknown_agent_is_refused_when_agents_are_known() -> None:
    parse_task_features(GOOD, known_agents={"coder"})
    with pytest.raises(InvalidTask, match="agent 'coder' is unknown"):
        parse_task_features(GOOD, known_agents={"writer", "researcher"})


def test_a_10_mb_prompt_is_refused_and_the_limit_is_in_bytes() -> None:
    too_long = f"over the {MAX_PROMPT_BYTES}-byte limit"
    with pytest.raises(InvalidTask, match=too_long) as refused:
        parse_task_features({**GOOD, "prompt": "word " * 2_000_000})
    assert refused.value.kind == "too_large"  # the HTTP layer answers 413 for it

    at_limit = "a" * MAX_PROMPT_BYTES
    assert parse_task_features({**GOOD, "prompt": at_limit}).prompt == at_limit
    two_bytes_each = "é" * (MAX_PROMPT_BYTES // 2 + 1)
    with pytest.raises(InvalidTask, match="byte limit"):
        parse_task_features({**GOOD, "prompt": two_bytes_each})


def test_a_lone_surrogate_from_json_is_measured_not_a_crash() -> None:
    features = parse_task_features({**GOOD, "prompt": "half a pair \ud800 here"})
    assert "\ud800" in features.prompt


def test_a_started_record_carries_its_features() -> None:
    record = TaskRecord(
        status="started",
        task_id="t1",
        ts=datetime(2026, 11, 2, tzinfo=UTC),
        prompt="Plan the release",
        agent="planner",
        principal="eng",
    )
    features = features_of(record, known_agents={"planner"})
    assert (features.prompt, features.principal) == ("Plan the release", "eng")
