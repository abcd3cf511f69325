"""Exact money: USD as `Decimal`, quantized to 1e-9 (a nano-dollar).

Binary floats never carry money. JSON numbers are read as `Decimal` by
`models.codec.loads`, so `0.1` stays exactly one tenth.

>>> to_usd("0.10") + to_usd("0.20") == to_usd("0.3")
True
>>> usd_text(to_usd("0.0000000015"))
'0.000000002'
"""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

USD_QUANTUM = Decimal("0.000000001")
"""The smallest amount spendstream keeps: ClickHouse columns are Decimal(38, 9)."""

ZERO_USD = Decimal("0.000000000")


def to_usd(value: Decimal | int | str) -> Decimal:
    """Return `value` as USD rounded half-even to 1e-9.

    Floats are refused: they would bring binary rounding into the ledger.
    """
    if isinstance(value, float):
        msg = f"money must not be a binary float, got {value!r}; pass a str or Decimal"
        raise TypeError(msg)
    try:
        amount = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        msg = f"not a decimal amount: {value!r}"
        raise ValueError(msg) from None
    if not amount.is_finite():
        msg = f"amount must be a finite number, got {value!r}"
        raise ValueError(msg)
    return amount.quantize(USD_QUANTUM, rounding=ROUND_HALF_EVEN)


def usd_text(amount: Decimal) -> str:
    """Format an amount for JSON output: plain notation, nine decimals.

    >>> usd_text(Decimal("1E-9"))
    '0.000000001'
    """
    return f"{to_usd(amount):f}"


def usd_display(amount: Decimal) -> str:
    """Format an amount for people: exact, trailing zeros dropped down to cents.

    >>> usd_display(Decimal("0.050000000")), usd_display(Decimal("-12"))
    ('0.05', '-12.00')
    >>> usd_display(Decimal("1E-9"))
    '0.000000001'
    """
    if amount == 0:
        return "0.00"
    whole, _, fraction = usd_text(amount).partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
