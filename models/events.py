"""The cost event: one record per LLM call, tool call or agent-to-agent call."""

from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from models.codec import loads
from models.pricing import price_tokens
from models.validation import Name, Record, Tokens, Usd, validate

CallKind = Literal["llm", "tool", "agent"]


class CostEvent(Record):
    """What one call cost, as a gateway reports it on `spend.events`.

    `ts` keeps the offset it came with (converting every event to UTC showed
    up in profiles); compare and bucket it as an instant, never by its fields.

    `input_tokens` counts every input token, cached ones included;
    `cached_input_tokens` says how many of them were cache reads.
    `reservation_id` names the grant reservation (from authorize) this call
    draws on; `reservation_final` marks the reservation's last call, so its
    remainder is released at once instead of at its timeout.
    """

    event_id: Name
    ts: AwareDatetime
    session_id: Name
    agent: Name
    principal: Name
    owner: Name | None = None
    user: Name | None = None
    grant_id: Name | None = None
    task_id: Name | None = None
    reservation_id: Name | None = None
    reservation_final: bool = False
    kind: CallKind = "llm"
    model: Name | None = None
    provider: Name | None = None
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cached_input_tokens: Tokens = 0
    cost_usd: Usd | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _owner_defaults_to_principal(self) -> "CostEvent":
        if self.owner is None:
            object.__setattr__(self, "owner", self.principal)
        if self.cached_input_tokens > self.input_tokens:
            msg = (
                f"cached_input_tokens ({self.cached_input_tokens}) exceeds "
                f"input_tokens ({self.input_tokens}); input_tokens counts cached ones"
            )
            raise ValueError(msg)
        return self

    @property
    def payer(self) -> str:
        """The department that pays: the caller."""
        return self.principal

    @property
    def payee(self) -> str:
        """The department that owns the agent (the caller's own by default)."""
        return self.owner or self.principal

    @property
    def cost(self) -> Decimal:
        """The call's cost; set on every event that `decode_cost_event` returns."""
        if self.cost_usd is None:
            msg = f"event {self.event_id} has not been priced"
            raise ValueError(msg)
        return self.cost_usd


def decode_cost_event(raw: bytes | str) -> CostEvent:
    """Parse, validate and, where `cost_usd` is absent, price one cost event.

    Raises `InvalidRecord` (or its `PricingError`) with the reason.
    """
    event = validate(CostEvent, loads(raw))
    if event.cost_usd is not None:
        return event
    cost = price_tokens(
        model=event.model,
        provider=event.provider,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cached_input_tokens=event.cached_input_tokens,
        at=event.ts,
    )
    return event.model_copy(update={"cost_usd": cost})
