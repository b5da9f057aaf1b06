"""Trade amounts, price limits and idempotency keys are domain validation."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from domain import trade_rules
from domain.entities import Outcome, TradeSide
from domain.errors import InvalidInput
from domain.services.trading import Order


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "greater than 0"),
        ("-1", "greater than 0"),
        ("-0.00000001", "greater than 0"),
        ("0.000000001", "8 decimal places"),
        ("1.123456789", "8 decimal places"),
        ("1000000.00000001", "at most 1000000"),
        ("NaN", "greater than 0"),
        ("Infinity", "greater than 0"),
    ],
)
def test_bad_amounts_and_share_counts_are_refused(raw: str, message: str) -> None:
    for rule, field in ((trade_rules.amount, "amount"), (trade_rules.shares, "shares")):
        with pytest.raises(InvalidInput, match=message) as raised:
            rule(Decimal(raw))
        assert raised.value.field == field


@pytest.mark.parametrize("raw", ["0.00000001", "1", "12.5", "1000000"])
def test_the_boundaries_of_an_amount_are_accepted(raw: str) -> None:
    assert trade_rules.amount(Decimal(raw)) == Decimal(raw)
    assert trade_rules.shares(Decimal(raw)) == Decimal(raw)


@pytest.mark.parametrize("raw", ["-0.1", "1.00000001", "0.123456789", "2"])
def test_a_price_limit_lies_between_0_and_1(raw: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        trade_rules.price_limit(Decimal(raw), "maxAveragePrice")
    assert raised.value.field == "maxAveragePrice"
    assert trade_rules.price_limit(Decimal("0.65"), "maxAveragePrice") == Decimal("0.65")


@pytest.mark.parametrize("key", ["", " ", "tab\tkey", "é", "x" * 129, "new\nline"])
def test_idempotency_keys_are_visible_ascii(key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        trade_rules.idempotency_key(key)
    assert raised.value.field == "idempotencyKey"


def test_a_uuid_is_a_good_idempotency_key() -> None:
    key = str(uuid.uuid4())
    assert trade_rules.idempotency_key(key) == key


def test_the_fingerprint_is_the_input_not_its_spelling() -> None:
    market = uuid.uuid4()
    one = Order(market, Outcome.YES, TradeSide.BUY, amount=Decimal("10"))
    same = Order(market, Outcome.YES, TradeSide.BUY, amount=Decimal("10.00000000"))
    assert one.fingerprint() == same.fingerprint()
    for other in (
        Order(market, Outcome.NO, TradeSide.BUY, amount=Decimal(10)),
        Order(market, Outcome.YES, TradeSide.BUY, shares=Decimal(10)),
        Order(market, Outcome.YES, TradeSide.SELL, shares=Decimal(10)),
        Order(uuid.uuid4(), Outcome.YES, TradeSide.BUY, amount=Decimal(10)),
        Order(market, Outcome.YES, TradeSide.BUY, amount=Decimal(10), limit=Decimal("0.9")),
    ):
        assert other.fingerprint() != one.fingerprint()
