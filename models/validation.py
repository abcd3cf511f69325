"""Shared pydantic pieces: the record base class and readable validation errors."""

from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from models.errors import InvalidRecord
from models.money import to_usd


class Record(BaseModel):
    """A contract record: unknown fields are kept, never rejected."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict: RFC 3339 times, decimals as strings."""
        return self.model_dump(mode="json", exclude_none=True)


def _usd(value: Decimal) -> Decimal:
    return to_usd(value)


Usd = Annotated[Decimal, Field(ge=0, allow_inf_nan=False), AfterValidator(_usd)]
"""A non-negative amount in USD, exact to 1e-9."""

SignedUsd = Annotated[Decimal, Field(allow_inf_nan=False), AfterValidator(_usd)]
"""An amount in USD that may be negative (a reversal, a net position)."""

Name = Annotated[str, Field(min_length=1, max_length=512)]
"""An identifier: a session, an agent, a department."""

Tokens = Annotated[int, Field(ge=0, strict=True)]

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

PeriodText = Annotated[str, Field(pattern=PERIOD_PATTERN)]
"""A chargeback period: a calendar month in UTC, written `YYYY-MM`."""


def explain(error: ValidationError, prefix: str = "") -> str:
    """One line naming each bad field and why, for a DLQ record or a 4xx.

    `prefix` names where the validated value sits in a larger document.
    """
    parts = []
    for item in error.errors(include_url=False):
        path = [str(p) for p in item["loc"]]
        where = ".".join([prefix, *path] if prefix else path) or "record"
        parts.append(f"{where}: {item['msg'].lower()}")
    return "; ".join(parts)


R = TypeVar("R", bound=Record)


def validate(model: type[R], value: dict[str, Any]) -> R:
    """Validate a decoded record, turning pydantic's error into `InvalidRecord`."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidRecord(f"invalid {model.__name__}: {explain(exc)}") from None
