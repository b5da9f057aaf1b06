"""A position's value and unrealized gain, open, awaiting settlement and settled."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.entities import Market, MarketStatus, Outcome, Position
from domain.valuation import position_value, unrealized_pnl

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MARKET = Market(
    id=uuid.uuid4(),
    name="Will it?",
    description=None,
    status=MarketStatus.ACTIVE,
    outcome=None,
    creator_id=uuid.uuid4(),
    end_date=NOW + timedelta(days=1),
    liquidity=Decimal(100),
    q_yes=Decimal(0),
    q_no=Decimal(0),
    volume=Decimal(0),
    created_at=NOW,
    updated_at=NOW,
    yes_price=Decimal("0.5"),
)
HELD = Position(
    id=uuid.uuid4(),
    user_id=uuid.uuid4(),
    market_id=MARKET.id,
    outcome=Outcome.YES,
    shares=Decimal(10),
    cost_basis=Decimal("5.12494796"),
    created_at=NOW,
)


def test_an_open_position_gains_what_its_shares_are_worth_over_their_cost() -> None:
    # 10 shares at 0.5.
    assert position_value(HELD, MARKET) == 5
    assert unrealized_pnl(HELD, MARKET) == Decimal("-0.12494796")


@pytest.mark.parametrize(
    ("status", "outcome", "worth"),
    [
        pytest.param(MarketStatus.RESOLVED, Outcome.YES, Decimal(10), id="won"),
        pytest.param(MarketStatus.RESOLVED, Outcome.NO, Decimal(0), id="lost"),
        pytest.param(MarketStatus.CANCELLED, None, Decimal("5.12494796"), id="cancelled"),
    ],
)
def test_awaiting_settlement_the_gain_is_what_settlement_will_pay_over_the_cost(
    status: MarketStatus, outcome: Outcome | None, worth: Decimal
) -> None:
    ended = replace(MARKET, status=status, outcome=outcome)
    assert position_value(HELD, ended) == worth
    assert unrealized_pnl(HELD, ended) == worth - HELD.cost_basis


@pytest.mark.parametrize(
    ("status", "outcome", "paid"),
    [
        pytest.param(MarketStatus.RESOLVED, Outcome.YES, Decimal(10), id="won"),
        pytest.param(MarketStatus.RESOLVED, Outcome.NO, Decimal(0), id="lost"),
        pytest.param(MarketStatus.CANCELLED, None, Decimal("5.12494796"), id="cancelled"),
    ],
)
def test_a_settled_position_has_no_unrealized_gain(
    status: MarketStatus, outcome: Outcome | None, paid: Decimal
) -> None:
    # Settlement paid it: the gain or loss (payout - cost basis) is realized, none is left.
    ended = replace(MARKET, status=status, outcome=outcome)
    settled = replace(HELD, settled_at=NOW, settled_amount=paid)
    assert unrealized_pnl(settled, ended) == 0
