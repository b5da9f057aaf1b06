"""Money and share amounts: exact decimals with 8 places."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal

SCALE = 8
QUANTUM = Decimal(1).scaleb(-SCALE)
_MIN_PRECISION = 28


def _quantize(amount: Decimal, rounding: str) -> Decimal:
    # quantize raises InvalidOperation when the result has more digits than the
    # context's precision (28 by default, i.e. amounts from 1e20 up), so the
    # context is sized to the amount instead of relying on the ambient one.
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount}")
    digits = max(amount.adjusted() + 1, 1) + SCALE + 1
    context = Context(prec=max(_MIN_PRECISION, digits), rounding=rounding)
    return amount.quantize(QUANTUM, context=context)


def charge(amount: Decimal) -> Decimal:
    """Round an amount the user pays up: the house never loses a fraction."""
    return _quantize(amount, ROUND_CEILING)


def payout(amount: Decimal) -> Decimal:
    """Round an amount the user receives down."""
    return _quantize(amount, ROUND_FLOOR)


def is_exact(amount: Decimal) -> bool:
    """True when the amount is finite with no non-zero digit beyond the 8th decimal place.

    Reads the digits instead of quantizing, so it answers for any magnitude
    rather than raising on amounts wider than the decimal context.
    """
    if not amount.is_finite():
        return False
    _sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    beyond = -SCALE - exponent
    return beyond <= 0 or not any(digits[-beyond:])
