"""Money and share amounts: exact decimals with 8 places."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

SCALE = 8
QUANTUM = Decimal(1).scaleb(-SCALE)


def charge(amount: Decimal) -> Decimal:
    """Round an amount the user pays up: the house never loses a fraction."""
    return amount.quantize(QUANTUM, rounding=ROUND_CEILING)


def payout(amount: Decimal) -> Decimal:
    """Round an amount the user receives down."""
    return amount.quantize(QUANTUM, rounding=ROUND_FLOOR)


def is_exact(amount: Decimal) -> bool:
    """True when the amount has at most 8 decimal places."""
    return amount == amount.quantize(QUANTUM)
