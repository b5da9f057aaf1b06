"""Logarithmic market scoring rule (LMSR), in exact decimal arithmetic.

``C(q) = b · ln(e^(q_yes/b) + e^(q_no/b))``. Prices are the partial
derivatives of C and lie strictly between 0 and 1. Every exponential is taken
of a non-positive number (relative to the larger exponent) so that large share
counts or lopsided markets do not overflow the decimal context.

A trade's amount is a difference of two costs, which loses digits when the
trade is small next to the market (a tiny share count, or a price near 0).
So amounts are rounded in the house's favour against a bound on that
arithmetic error, not against the computed value alone: a buy is never
charged less than its exact cost (and a positive buy never costs nothing), a
sale never pays more than its exact proceeds. Where the bound straddles a
multiple of the unit, 34 digits cannot tell which way the exact amount rounds,
and the amount is computed again at 80; only where that cannot tell either
(an exact amount on the unit grid: from ``q_no - q_yes = d``, 2d YES cost
exactly d) does the house take the unit.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Context, Decimal, localcontext

from domain.entities import Outcome
from domain.money import QUANTUM, charge, payout

_PRECISION = Context(prec=34)
# Where 34 digits leave a rounding undecided (rare: the exact amount within about 1e-31 of
# a multiple of the unit), the trade is computed again with this many.
_FINER = Context(prec=80)
# The closest a price may come to 0 or 1 at this precision: beyond it the exact
# price would round to 0 or 1, which the LMSR never reaches.
_EDGE = Decimal(1).scaleb(1 - _PRECISION.prec)
# e^-80 < 1e-34: past this the smaller exponential is below the precision.
_FAR = Decimal(80)
_ZERO = Decimal(0).quantize(QUANTUM)


def _cost(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    """C(q) at the precision of the current context."""
    top = max(q_yes, q_no) / b
    total = (q_yes / b - top).exp() + (q_no / b - top).exp()
    return b * (top + total.ln())


def _trade(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, delta: Decimal, context: Context
) -> tuple[Decimal, Decimal]:
    """``C(q + delta on outcome) - C(q)`` as computed at ``context``'s precision, and a bound
    on its error.

    At p digits, _cost(q) is within about 10^(2-p) · (max|q| + b) of the exact value (a
    few roundings of magnitude |q|/b and ln 2, scaled by b); the bound is ten times that.
    """
    with localcontext(context):
        after = (q_yes + delta, q_no) if outcome is Outcome.YES else (q_yes, q_no + delta)
        raw = _cost(*after, b) - _cost(q_yes, q_no, b)
        largest = max(abs(q_yes), abs(q_no), abs(after[0]), abs(after[1]))
        return raw, (largest + b) * Decimal(1).scaleb(3 - context.prec)


def _rounded(
    q_yes: Decimal,
    q_no: Decimal,
    b: Decimal,
    outcome: Outcome,
    delta: Decimal,
    rounding: Callable[[Decimal], Decimal],
    house: int,
) -> Decimal:
    """The exact ``C(q + delta) - C(q)``, times ``house`` (+1: what a buyer pays, -1: what a
    seller gets), rounded by ``rounding``: decided at 34 digits when the whole error interval
    rounds alike, else at 80, else at the end of the interval the house prefers."""
    for context in (_PRECISION, _FINER):
        raw, error = _trade(q_yes, q_no, b, outcome, delta, context)
        with localcontext(context):
            low, high = rounding(house * raw - error), rounding(house * raw + error)
        if low == high:
            return low
    return high if house > 0 else low


def yes_price(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    """The instantaneous price of one YES share, strictly inside (0, 1)."""
    with localcontext(_PRECISION):
        # e^(q_yes/b) / (e^(q_yes/b) + e^(q_no/b)) == 1 / (1 + e^(-x)) with x = (q_yes - q_no)/b
        x = (q_yes - q_no) / b
        if x > _FAR:
            return 1 - _EDGE
        if x < -_FAR:
            return _EDGE
        if x >= 0:
            price = 1 / (1 + (-x).exp())
        else:
            tail = x.exp()
            price = tail / (1 + tail)
        return min(max(price, _EDGE), 1 - _EDGE)


def no_price(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    """The instantaneous price of one NO share: ``1 - yes_price``, so the two sum to 1."""
    with localcontext(_PRECISION):
        return 1 - yes_price(q_yes, q_no, b)


def buy_cost(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> Decimal:
    """What buying ``shares`` (> 0) of ``outcome`` costs, rounded up to 8 places."""
    if not shares > 0:
        raise ValueError("a purchase needs a positive number of shares")
    cost = _rounded(q_yes, q_no, b, outcome, shares, charge, house=1)
    # The exact cost lies strictly between 0 and ``shares`` (every price is in (0, 1)),
    # so its rounding up is at least one unit and at most ``shares`` rounded up.
    return min(max(cost, QUANTUM), charge(shares))


def sell_proceeds(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> Decimal:
    """What selling ``shares`` (> 0) of ``outcome`` pays, rounded down to 8 places."""
    if not shares > 0:
        raise ValueError("a sale needs a positive number of shares")
    return max(_rounded(q_yes, q_no, b, outcome, -shares, payout, house=-1), _ZERO)


def price(q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome) -> Decimal:
    """The instantaneous price of one share of ``outcome``."""
    return yes_price(q_yes, q_no, b) if outcome is Outcome.YES else no_price(q_yes, q_no, b)


def _exact_shares_for(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, amount: Decimal
) -> Decimal:
    """The real number of shares whose cost is exactly ``amount`` (the inverse of C).

    From ``C(q + Δ) - C(q) = A``: ``Δ = A + b·ln(1 + e^s·(1 - e^(-A/b)))`` with
    ``s = (q_other - q_this)/b``. Written as ``A + b·softplus(s + ln(1 - e^(-A/b)))``
    so that no exponential of a large positive number is ever taken.
    """
    with localcontext(_PRECISION):
        this, other = (q_yes, q_no) if outcome is Outcome.YES else (q_no, q_yes)
        s = (other - this) / b
        t = s + (1 - (-amount / b).exp()).ln()
        softplus = t + (1 + (-t).exp()).ln() if t > 0 else (1 + t.exp()).ln()
        return amount + b * softplus


def shares_for_amount(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, amount: Decimal
) -> Decimal:
    """The most shares, at 8 places, that ``amount`` (> 0) buys: ``buy_cost`` of the result
    is at most ``amount`` and of one unit more above it. An amount of one unit or more
    always buys at least one unit (no purchase costs less than a unit, or more per unit).

    The exact inverse is rounded down and then moved by a unit while the charge (which
    rounds up, against an error bound) disagrees, which takes at most a step or two.
    """
    if not amount > 0:
        raise ValueError("a purchase needs a positive amount")
    shares = max(payout(_exact_shares_for(q_yes, q_no, b, outcome, amount)), _ZERO)
    while shares > 0 and buy_cost(q_yes, q_no, b, outcome, shares) > amount:
        shares -= QUANTUM
    while buy_cost(q_yes, q_no, b, outcome, shares + QUANTUM) <= amount:
        shares += QUANTUM
    return shares


_LOWEST = QUANTUM
_HIGHEST = 1 - QUANTUM


def display_price(price: Decimal) -> Decimal:
    """A price at 8 places that still lies strictly in (0, 1), however lopsided the market."""
    return min(max(price.quantize(QUANTUM), _LOWEST), _HIGHEST)


def quoted_yes_price(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    """The YES price a market shows, at 8 places. Stored on the market's row by whatever
    changes its shares, so that reads (far more frequent than trades) never compute it."""
    return display_price(yes_price(q_yes, q_no, b))
