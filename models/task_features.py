"""A task's features, validated before the shadow model sees them.

Bad input (no prompt, a blank or unknown agent, an oversized prompt, wrong
types) raises `InvalidTask`, a subclass of `InvalidRecord`: the HTTP layer
answers 4xx, the learner skips the task, and the model is never touched.

>>> parse_task_features({"prompt": "Refactor the parser", "agent": "coder"}).agent
'coder'
>>> parse_task_features({"prompt": "", "agent": "coder"})
Traceback (most recent call last):
...
models.errors.InvalidTask: prompt is empty; send the task's prompt
"""

from collections.abc import Collection, Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import InvalidTask
from models.records import TaskRecord
from models.validation import explain

MAX_PROMPT_BYTES = 100_000
"""The largest prompt accepted, in UTF-8 bytes: ample for a task, and it keeps
featurising (about 1 ms per 10 kB) and the open-task state bounded."""

_Text = Annotated[str, Field(strict=True, min_length=1, max_length=512)]


class TaskFeatures(BaseModel):
    """What the shadow model learns from and predicts for: prompt and identity."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    prompt: Annotated[str, Field(strict=True)]
    agent: _Text
    model: _Text | None = None
    user: _Text | None = None
    principal: _Text | None = None


def parse_task_features(
    raw: object,
    *,
    known_agents: Collection[str] | None = None,
    max_prompt_bytes: int = MAX_PROMPT_BYTES,
) -> TaskFeatures:
    """Validate decoded JSON into `TaskFeatures`, or raise `InvalidTask`.

    `known_agents`, when given, is the set an agent must belong to (the
    configured agents, the ones the model has learnt, or both); None accepts
    any agent, as the learner must to meet new ones.
    """
    if not isinstance(raw, Mapping):
        kind = type(raw).__name__
        raise InvalidTask(f"task features must be a JSON object, got {kind}")
    _check_prompt(raw.get("prompt"), max_prompt_bytes)
    try:
        features = TaskFeatures.model_validate(raw)
    except ValidationError as exc:
        raise InvalidTask(f"invalid task features: {explain(exc)}") from None
    if not features.agent.strip():
        raise InvalidTask("agent is blank; name the agent that will run the task")
    if known_agents is not None and features.agent not in known_agents:
        msg = f"agent {features.agent!r} is unknown; use a configured agent"
        raise InvalidTask(msg)
    return features


def features_of(
    record: TaskRecord,
    *,
    known_agents: Collection[str] | None = None,
    max_prompt_bytes: int = MAX_PROMPT_BYTES,
) -> TaskFeatures:
    """The features a task record carries (see `parse_task_features`)."""
    raw = record.to_json_dict()
    return parse_task_features(
        raw, known_agents=known_agents, max_prompt_bytes=max_prompt_bytes
    )


def _check_prompt(prompt: object, max_prompt_bytes: int) -> None:
    if prompt is None:
        raise InvalidTask("prompt is missing; send the task's prompt")
    if not isinstance(prompt, str):
        kind = type(prompt).__name__
        raise InvalidTask(f"prompt must be a string, got {kind}")
    if not prompt.strip():
        raise InvalidTask("prompt is empty; send the task's prompt")
    # A character is 1 to 4 bytes: the length alone refuses a huge prompt fast.
    too_long = len(prompt) > max_prompt_bytes
    if too_long or len(prompt.encode("utf-8", "surrogatepass")) > max_prompt_bytes:
        msg = (
            f"prompt is over the {max_prompt_bytes}-byte limit "
            f"({len(prompt)} characters); shorten it or send a summary"
        )
        raise InvalidTask(msg, kind="too_large")
