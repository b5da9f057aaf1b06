"""Logarithmic market scoring rule (LMSR), in exact decimal arithmetic.

``C(q) = b · ln(e^(q_yes/b) + e^(q_no/b))``. Prices are the partial
derivatives of C and always lie strictly between 0 and 1. The exponentials are
computed relative to the larger exponent so that large share counts do not
overflow the decimal context.
"""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

from domain.entities import Outcome
from domain.money import charge, payout

_PRECISION = Context(prec=34)


def _cost(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    with localcontext(_PRECISION):
        top = max(q_yes, q_no) / b
        total = (q_yes / b - top).exp() + (q_no / b - top).exp()
        return b * (top + total.ln())


def yes_price(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    """The instantaneous price of one YES share, in (0, 1)."""
    with localcontext(_PRECISION):
        # e^(q_yes/b) / (e^(q_yes/b) + e^(q_no/b)) == 1 / (1 + e^((q_no - q_yes)/b))
        return Decimal(1) / (Decimal(1) + ((q_no - q_yes) / b).exp())


def buy_cost(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> Decimal:
    """What buying ``shares`` of ``outcome`` costs, rounded up to 8 places."""
    if outcome is Outcome.YES:
        raw = _cost(q_yes + shares, q_no, b) - _cost(q_yes, q_no, b)
    else:
        raw = _cost(q_yes, q_no + shares, b) - _cost(q_yes, q_no, b)
    return charge(raw)


def sell_proceeds(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> Decimal:
    """What selling ``shares`` of ``outcome`` pays, rounded down to 8 places."""
    if outcome is Outcome.YES:
        raw = _cost(q_yes, q_no, b) - _cost(q_yes - shares, q_no, b)
    else:
        raw = _cost(q_yes, q_no, b) - _cost(q_yes, q_no - shares, b)
    return payout(raw)
