"""The authorize request a gateway sends, and the 200 and 402 it reads back."""

from datetime import UTC, datetime, timedelta

import pytest

from models.errors import InvalidRecord
from models.grant_api import authorize_answer, authorize_request
from models.grants import Grant
from models.money import to_usd
from models.reservations import authorize

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "amount_usd: field required"),
        (b"not json", "malformed JSON"),
        (b'{"amount_usd": "-0.10"}', "greater than or equal to 0"),
        (b'{"amount_usd": "0"}', "amount_usd must be positive"),
        (b'{"amount_usd": "ten cents"}', "amount_usd: input should be a valid decimal"),
        (b'{"amount_usd": "0.10", "hold_s": 0}', "hold_s: input should be greater"),
        (b'{"amount_usd": "0.10", "hold_s": 1e9}', "hold_s: input should be less"),
        (b'{"amount_usd": "0.10", "reservation_id": ""}', "reservation_id: string"),
    ],
)
def test_a_bad_request_says_which_field_and_why(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        authorize_request(body)


def test_a_request_reads_the_amount_exactly() -> None:
    request = authorize_request(
        b'{"amount_usd": 0.1, "reservation_id": "link-7", "hold_s": 30}'
    )
    assert request.amount_usd == to_usd("0.10")
    assert (request.reservation_id, request.hold_s) == ("link-7", 30)


def test_the_200_carries_the_reservation_and_the_402_the_balance_and_why() -> None:
    grant = Grant.root("g", to_usd("0.15"), opened_at=T0)

    approved = authorize_answer(authorize(grant, to_usd("0.10"), "r1", T0, hold_s=60))
    refused = authorize_answer(authorize(grant, to_usd("0.10"), "r2", T0))

    assert approved == {
        "grant_id": "g",
        "reservation_id": "r1",
        "approved": True,
        "amount_usd": "0.100000000",
        "balance_usd": "0.050000000",
        "reserved_usd": "0.100000000",
        "expires_at": (T0 + timedelta(seconds=60)).isoformat(),
    }
    assert refused["approved"] is False
    assert refused["balance_usd"] == "0.050000000"
    assert "short of 0.100000000 by 0.050000000" in refused["reason"]
    assert "expires_at" not in refused
