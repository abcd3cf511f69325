"""Pricing a call from its tokens with the genai-prices catalogue."""

from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage, calc_price

from models.errors import PricingError
from models.money import to_usd


@lru_cache(maxsize=4096)
def _known(model: str, provider: str | None) -> bool:
    """Whether the catalogue prices `model`; cached, the lookup is a scan."""
    try:
        calc_price(Usage(input_tokens=0), model_ref=model, provider_id=provider)
    except LookupError:
        return False
    return True


def price_tokens(
    *,
    model: str | None,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int,
    at: datetime,
) -> Decimal:
    """The catalogue price of a call, in USD to 1e-9.

    Raises `PricingError` when there is no model, or the catalogue lacks it:
    such an event carries no cost spendstream can vouch for.

    >>> from datetime import UTC, datetime
    >>> price_tokens(model="gpt-4o", provider="openai", input_tokens=1000,
    ...              output_tokens=500, cached_input_tokens=0,
    ...              at=datetime(2026, 11, 2, tzinfo=UTC))
    Decimal('0.007500000')
    """
    if not model:
        raise PricingError("cost_usd is absent and there is no model to price from")
    if not _known(model, provider):
        where = f" from provider {provider!r}" if provider else ""
        raise PricingError(
            f"cost_usd is absent and model {model!r}{where} is not in the price "
            "catalogue; send cost_usd with the event"
        )
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached_input_tokens,
    )
    result = calc_price(
        usage, model_ref=model, provider_id=provider, genai_request_timestamp=at
    )
    return to_usd(result.total_price)
