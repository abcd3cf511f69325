from decimal import Decimal

import pytest

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.money import to_usd, usd_text


def test_decimal_strings_stay_exact() -> None:
    total = sum((to_usd("0.1") for _ in range(10)), Decimal(0))
    assert total == Decimal("1")


def test_nano_dollars_round_half_even() -> None:
    assert to_usd("0.0000000005") == Decimal("0")
    assert to_usd("0.0000000015") == Decimal("0.000000002")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "ten"])
def test_non_numbers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        to_usd(bad)


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError, match="binary float"):
        to_usd(0.1)  # type: ignore[arg-type]


def test_json_numbers_are_read_as_exact_decimals() -> None:
    value = loads(b'{"cost_usd": 0.30000000000000004441}')
    assert value["cost_usd"] == Decimal("0.30000000000000004441")


def test_json_output_writes_money_as_plain_strings() -> None:
    assert dumps({"usd": to_usd("1E-9")}) == b'{"usd":"0.000000001"}'
    assert usd_text(Decimal("12.5")) == "12.500000000"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"{nope", "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b"\xff\xfe{}", "not_utf8"),
        (b'{"x": NaN}', "malformed_json"),
    ],
)
def test_undecodable_values_say_why(raw: bytes, kind: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        loads(raw)
    assert caught.value.kind == kind
    assert caught.value.reason
