"""The grants HTTP API's bodies: the authorize request, and the answers.

>>> request = authorize_request(b'{"amount_usd": "0.10"}')
>>> request.amount_usd, request.reservation_id
(Decimal('0.100000000'), None)
>>> authorize_request(b'{"amount_usd": 0}')
Traceback (most recent call last):
...
models.errors.InvalidRecord: invalid authorize request: amount_usd: value error, \
amount_usd must be positive, got 0.000000000
"""

from decimal import Decimal
from typing import Any

from pydantic import Field, ValidationError, field_validator

from models.codec import loads
from models.errors import InvalidRecord
from models.grant_outcomes import AuthorizeResult
from models.money import usd_text
from models.validation import Name, Record, Usd, explain

MAX_HOLD_S = 86_400.0
"""The longest hold a caller may ask for: a day."""


class AuthorizeRequest(Record):
    """`POST /v1/grants/{id}/authorize`: how much to hold, for which call.

    Without `reservation_id` the worker makes one; a caller that may retry
    names its own, so a retry holds nothing more. `hold_s` overrides the
    worker's default hold.
    """

    amount_usd: Usd
    reservation_id: Name | None = None
    hold_s: float | None = Field(default=None, gt=0, le=MAX_HOLD_S)

    @field_validator("amount_usd")
    @classmethod
    def _positive(cls, amount: Decimal) -> Decimal:
        if amount <= 0:
            raise ValueError(f"amount_usd must be positive, got {usd_text(amount)}")
        return amount


def authorize_request(body: bytes) -> AuthorizeRequest:
    """Parse a request body; `InvalidRecord` with the reason (a 400) if bad."""
    try:
        return AuthorizeRequest.model_validate(loads(body or b"{}"))
    except ValidationError as exc:
        raise InvalidRecord(f"invalid authorize request: {explain(exc)}") from None


def authorize_answer(result: AuthorizeResult) -> dict[str, Any]:
    """The body of the 200 (the reservation) or the 402 (the balance and why)."""
    body: dict[str, Any] = {
        "grant_id": result.grant_id,
        "reservation_id": result.reservation_id,
        "approved": result.approved,
        "amount_usd": usd_text(result.amount_usd),
        "balance_usd": usd_text(result.balance_usd),
        "reserved_usd": usd_text(result.reserved_usd),
    }
    if result.expires_at is not None:
        body["expires_at"] = result.expires_at.isoformat()
    if result.reason is not None:
        body["reason"] = result.reason
    return body
