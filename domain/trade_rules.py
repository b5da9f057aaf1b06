"""Input rules of trading: amounts, share counts, price limits and idempotency keys."""

from __future__ import annotations

from decimal import Decimal

from domain.errors import InvalidInput
from domain.money import is_exact

# The most one trade may spend (amount) or move (shares). Far above any balance play
# money reaches; the bound keeps every market's share counts storable however it trades.
MAX_TRADE_AMOUNT = Decimal(1_000_000)
MAX_TRADE_SHARES = Decimal(1_000_000)
# The most shares of one outcome a market may have outstanding.
MAX_MARKET_SHARES = Decimal(10_000_000_000)
IDEMPOTENCY_KEY_MAX = 128


def _positive(value: Decimal, field: str, what: str, maximum: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0:
        raise InvalidInput(field, f"The {what} must be greater than 0.")
    if not is_exact(value):
        raise InvalidInput(field, f"The {what} may have at most 8 decimal places.")
    if value > maximum:
        raise InvalidInput(field, f"The {what} may be at most {maximum}.")
    return value


def amount(value: Decimal, field: str = "amount") -> Decimal:
    """Money to spend on one trade: more than 0, at most 8 places and ``MAX_TRADE_AMOUNT``."""
    return _positive(value, field, "amount", MAX_TRADE_AMOUNT)


def shares(value: Decimal, field: str = "shares") -> Decimal:
    """Shares in one trade: more than 0, at most 8 places and ``MAX_TRADE_SHARES``."""
    return _positive(value, field, "number of shares", MAX_TRADE_SHARES)


def price_limit(value: Decimal, field: str) -> Decimal:
    """A bound on the average price per share: between 0 and 1, at most 8 places."""
    if not value.is_finite() or not 0 <= value <= 1 or not is_exact(value):
        raise InvalidInput(
            field, "The price limit must be between 0 and 1 with at most 8 decimal places."
        )
    return value


def idempotency_key(value: str) -> str:
    """1 to 128 visible ASCII characters (a UUID is the usual choice)."""
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or not all("!" <= c <= "~" for c in value):
        raise InvalidInput(
            "idempotencyKey",
            f"The idempotency key must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters.",
        )
    return value
