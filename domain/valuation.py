"""What a position is worth at the market's current prices."""

from __future__ import annotations

from decimal import Decimal, localcontext

from domain.entities import Market, MarketStatus, Position
from domain.money import payout
from domain.pricing import price


def position_value(position: Position, market: Market) -> Decimal:
    """The position's value now, rounded down to 8 places.

    Open markets: shares at the current price of their outcome. A resolved market:
    1 per winning share, 0 otherwise (what settlement pays). A cancelled market: the
    cost basis (what settlement refunds).
    """
    if market.status is MarketStatus.RESOLVED:
        return position.shares if position.outcome is market.outcome else Decimal(0)
    if market.status is MarketStatus.CANCELLED:
        return position.cost_basis
    if not position.shares:
        return Decimal(0)
    current = price(market.q_yes, market.q_no, market.liquidity, position.outcome)
    with localcontext() as context:
        context.prec = 60
        worth = position.shares * current
    return payout(worth)


def unrealized_pnl(position: Position, market: Market) -> Decimal:
    """Value now minus what the shares held cost, until settlement pays the position.

    Once paid, the gain or loss is realized (``settled_amount - cost_basis``) and none is
    left unrealized: 0, not null, so that clients can keep summing it over positions.
    """
    if position.settled_at is not None:
        return Decimal(0)
    return position_value(position, market) - position.cost_basis
