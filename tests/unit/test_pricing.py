"""LMSR pricing against an independent high-precision reference, plus its money properties."""

from __future__ import annotations

from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.entities import Outcome
from domain.money import QUANTUM, is_exact
from domain.pricing import buy_cost, no_price, sell_proceeds, shares_for_amount, yes_price

# Far more digits than the code's 34, and an exponent range wide enough that
# e^(q/b) never overflows: the textbook formula needs no tricks here.
REFERENCE = Context(prec=80, Emax=MAX_EMAX, Emin=MIN_EMIN)
# Agreement expected between the reference and the code's 34-digit arithmetic.
TOLERANCE = Decimal("1e-28")
# How far the 80-digit reference itself may be off for the amounts generated here
# (it rounds 3e-8 · (1 - e^-2000) up to 3e-8, say): the house-favour checks allow that.
REFERENCE_ERROR = Decimal("1e-60")
# The code pushes raw amounts by a bound on its own arithmetic error before rounding,
# which may cost one unit more than rounding the exact value would (never less).
ROUNDING_SLACK = QUANTUM + Decimal("1e-20")

amounts = st.decimals(
    min_value=0, max_value=10_000_000, places=8, allow_nan=False, allow_infinity=False
)
liquidities = st.decimals(
    min_value=1, max_value=1_000_000, places=8, allow_nan=False, allow_infinity=False
)
trade_sizes = st.decimals(
    min_value=Decimal("0.00000001"),
    max_value=1_000_000,
    places=8,
    allow_nan=False,
    allow_infinity=False,
)
outcomes = st.sampled_from(list(Outcome))
# No deadline: the suite asserts results, never timings. No example database: nothing
# is written into the working tree.
properties = settings(max_examples=300, deadline=None, database=None)


def reference_cost(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    with localcontext(REFERENCE):
        return b * ((q_yes / b).exp() + (q_no / b).exp()).ln()


def reference_yes_price(q_yes: Decimal, q_no: Decimal, b: Decimal) -> Decimal:
    with localcontext(REFERENCE):
        yes, no = (q_yes / b).exp(), (q_no / b).exp()
        return yes / (yes + no)


def reference_trade(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, delta: Decimal
) -> Decimal:
    """C(q after) - C(q before) for adding ``delta`` shares of ``outcome`` (negative sells)."""
    with localcontext(REFERENCE):
        if outcome is Outcome.YES:
            return reference_cost(q_yes + delta, q_no, b) - reference_cost(q_yes, q_no, b)
        return reference_cost(q_yes, q_no + delta, b) - reference_cost(q_yes, q_no, b)


def after(
    q_yes: Decimal, q_no: Decimal, outcome: Outcome, delta: Decimal
) -> tuple[Decimal, Decimal]:
    return (q_yes + delta, q_no) if outcome is Outcome.YES else (q_yes, q_no + delta)


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities)
def test_yes_price_lies_strictly_between_0_and_1(q_yes: Decimal, q_no: Decimal, b: Decimal) -> None:
    assert 0 < yes_price(q_yes, q_no, b) < 1


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities)
def test_yes_price_matches_the_reference(q_yes: Decimal, q_no: Decimal, b: Decimal) -> None:
    assert abs(yes_price(q_yes, q_no, b) - reference_yes_price(q_yes, q_no, b)) < TOLERANCE


@properties
@given(q=amounts, b=liquidities)
def test_an_untraded_or_balanced_market_prices_at_one_half(q: Decimal, b: Decimal) -> None:
    assert yes_price(q, q, b) == Decimal("0.5")
    assert no_price(q, q, b) == Decimal("0.5")


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities)
def test_yes_and_no_prices_sum_to_one(q_yes: Decimal, q_no: Decimal, b: Decimal) -> None:
    assert yes_price(q_yes, q_no, b) + no_price(q_yes, q_no, b) == 1
    # NO is YES with the outcomes swapped.
    assert abs(no_price(q_yes, q_no, b) - yes_price(q_no, q_yes, b)) < TOLERANCE


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities, shares=trade_sizes)
def test_buying_yes_never_lowers_the_yes_price(
    q_yes: Decimal, q_no: Decimal, b: Decimal, shares: Decimal
) -> None:
    assert yes_price(q_yes + shares, q_no, b) >= yes_price(q_yes, q_no, b)


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities, outcome=outcomes, shares=trade_sizes)
def test_buy_cost_is_rounded_up_to_8_places(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> None:
    cost = buy_cost(q_yes, q_no, b, outcome, shares)
    exact = reference_trade(q_yes, q_no, b, outcome, shares)
    assert cost >= QUANTUM
    assert is_exact(cost)
    assert cost >= exact - REFERENCE_ERROR
    assert cost - exact < ROUNDING_SLACK


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities, outcome=outcomes, shares=trade_sizes)
def test_buy_cost_lies_between_the_prices_before_and_after(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> None:
    def price(state: tuple[Decimal, Decimal]) -> Decimal:
        return yes_price(*state, b) if outcome is Outcome.YES else no_price(*state, b)

    cost = buy_cost(q_yes, q_no, b, outcome, shares)
    # The price only rises while buying, so the average price paid is between the two ends;
    # and since a price is below 1, no share costs more than 1.
    assert cost >= shares * price((q_yes, q_no))
    assert cost <= shares * price(after(q_yes, q_no, outcome, shares)) + QUANTUM
    assert cost <= shares


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities, outcome=outcomes, shares=trade_sizes)
def test_sell_proceeds_are_rounded_down_to_8_places(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> None:
    held_yes, held_no = after(q_yes, q_no, outcome, shares)
    proceeds = sell_proceeds(held_yes, held_no, b, outcome, shares)
    exact = -reference_trade(held_yes, held_no, b, outcome, -shares)
    assert proceeds >= 0
    assert is_exact(proceeds)
    assert proceeds <= exact + REFERENCE_ERROR
    assert exact - proceeds < ROUNDING_SLACK


@properties
@given(q_yes=amounts, q_no=amounts, b=liquidities, outcome=outcomes, shares=trade_sizes)
def test_buying_then_selling_the_same_shares_never_profits(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, shares: Decimal
) -> None:
    paid = buy_cost(q_yes, q_no, b, outcome, shares)
    held_yes, held_no = after(q_yes, q_no, outcome, shares)
    received = sell_proceeds(held_yes, held_no, b, outcome, shares)
    assert received <= paid
    # The round trip is exact but for the two roundings, each under one unit.
    assert paid - received <= 2 * QUANTUM


def test_a_tiny_purchase_of_an_unlikely_outcome_is_never_free() -> None:
    # NO costs about 2.6e-25 here: C(q + 1e-8 NO) - C(q) vanishes at 34 digits.
    q_yes, q_no, b = Decimal("56.61429105"), Decimal(0), Decimal(1)
    assert no_price(q_yes, q_no, b) < Decimal("1e-24")
    assert buy_cost(q_yes, q_no, b, Outcome.NO, QUANTUM) == QUANTUM
    assert sell_proceeds(q_yes, QUANTUM, b, Outcome.NO, QUANTUM) == 0


@pytest.mark.parametrize("shares", ["0", "-1"])
def test_a_trade_needs_a_positive_number_of_shares(shares: str) -> None:
    for trade in (buy_cost, sell_proceeds):
        with pytest.raises(ValueError, match="positive number of shares"):
            trade(Decimal(0), Decimal(0), Decimal(100), Outcome.YES, Decimal(shares))


def test_a_known_value() -> None:
    # Buying 10 YES at b = 100 from 0/0: 100·ln((e^0.1 + 1)/2) = 5.124947951362...
    assert buy_cost(Decimal(0), Decimal(0), Decimal(100), Outcome.YES, Decimal(10)) == Decimal(
        "5.12494796"
    )
    assert sell_proceeds(Decimal(10), Decimal(0), Decimal(100), Outcome.YES, Decimal(10)) == (
        Decimal("5.12494795")
    )


@pytest.mark.parametrize(
    ("q_yes", "q_no", "b"),
    [
        pytest.param("0", "10000000", "1", id="no-side-far-ahead"),
        pytest.param("10000000", "0", "1", id="yes-side-far-ahead"),
        pytest.param("92233720368", "0", "1", id="largest-storable-shares"),
        pytest.param("0", "1e21", "1", id="beyond-the-default-decimal-context"),
    ],
)
def test_lopsided_markets_do_not_overflow_and_keep_prices_inside_0_1(
    q_yes: str, q_no: str, b: str
) -> None:
    state = (Decimal(q_yes), Decimal(q_no), Decimal(b))
    yes, no = yes_price(*state), no_price(*state)
    assert 0 < yes < 1
    assert 0 < no < 1
    assert yes + no == 1
    # The side that is far ahead is the likely one.
    assert (yes > no) == (state[0] > state[1])


@pytest.mark.parametrize("shares", ["1e6", "1e12", "92233720368", "1e21"])
def test_large_share_counts_do_not_overflow(shares: str) -> None:
    size = Decimal(shares)
    b = Decimal(1)
    cost = buy_cost(Decimal(0), Decimal(0), b, Outcome.NO, size)
    proceeds = sell_proceeds(Decimal(0), size, b, Outcome.NO, size)
    with localcontext(REFERENCE):
        # From 0/0 with Δ ≫ b: C = b·ln(e^(Δ/b) + 1) - b·ln 2 ≈ Δ - b·ln 2.
        expected = size - b * Decimal(2).ln()
        assert expected <= cost < expected + ROUNDING_SLACK
        assert expected - ROUNDING_SLACK < proceeds <= expected
    assert is_exact(cost)
    assert is_exact(proceeds)
    assert proceeds <= cost


budgets = st.decimals(min_value=Decimal("0.00000001"), max_value=100_000, places=8, allow_nan=False)


def reference_shares_for(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, amount: Decimal
) -> Decimal:
    """The exact inverse of the cost function, from the textbook formula at 80 digits."""
    with localcontext(REFERENCE):
        this, other = (q_yes, q_no) if outcome is Outcome.YES else (q_no, q_yes)
        total = reference_cost(q_yes, q_no, b) + amount
        # e^((this + Δ)/b) = e^(C(q) + A)/b) - e^(other/b)
        return b * ((total / b).exp() - (other / b).exp()).ln() - this


@properties
@given(
    q_yes=amounts,
    q_no=amounts,
    b=liquidities,
    outcome=outcomes,
    smaller=trade_sizes,
    extra=trade_sizes,
)
def test_buy_cost_is_monotonic_in_the_shares(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, smaller: Decimal, extra: Decimal
) -> None:
    assert buy_cost(q_yes, q_no, b, outcome, smaller) <= buy_cost(
        q_yes, q_no, b, outcome, smaller + extra
    )


small_states = st.decimals(min_value=0, max_value=2_000, places=8, allow_nan=False)


@properties
@given(q_yes=small_states, q_no=small_states, b=liquidities, outcome=outcomes, amount=budgets)
def test_the_inverse_is_within_one_unit_of_the_last_place(
    q_yes: Decimal, q_no: Decimal, b: Decimal, outcome: Outcome, amount: Decimal
) -> None:
    shares = shares_for_amount(q_yes, q_no, b, outcome, amount)
    exact = reference_shares_for(q_yes, q_no, b, outcome, amount)
    assert is_exact(shares)
    # Never more shares than the money buys exactly, and less by at most one unit.
    assert shares <= exact + REFERENCE_ERROR
    assert exact - shares <= QUANTUM + REFERENCE_ERROR
    # The largest affordable count at 8 places under the charge actually made.
    if shares > 0:
        assert buy_cost(q_yes, q_no, b, outcome, shares) <= amount
    assert buy_cost(q_yes, q_no, b, outcome, shares + QUANTUM) > amount


def test_the_inverse_of_a_known_value() -> None:
    # 5.12494796 pays for the 10 YES shares test_a_known_value priced, and, at a price
    # near 0.5, for one more unit (half a unit of money, inside the same rounding).
    state = (Decimal(0), Decimal(0), Decimal(100), Outcome.YES)
    assert shares_for_amount(*state, Decimal("5.12494796")) == Decimal("10.00000001")
    assert buy_cost(*state, Decimal("10.00000002")) == Decimal("5.12494797")


@pytest.mark.parametrize(
    ("q_yes", "q_no", "b"), [("0", "1", "1"), ("0", "3", "7"), ("0.5", "2.5", "100")]
)
def test_an_inverse_that_lands_on_the_last_place_is_one_unit_short(
    q_yes: str, q_no: str, b: str
) -> None:
    # With d = q_no - q_yes > 0, buying 2d YES costs exactly d: e^(2d/b) + e^(d/b) over
    # 1 + e^(d/b) is e^(d/b) (in units of e^(q_yes/b)). So d buys exactly 2d shares, but the
    # charge for them, rounded up against its error bound, is a unit more than d: the
    # inverse is one unit short, the furthest it may be.
    state = (Decimal(q_yes), Decimal(q_no), Decimal(b), Outcome.YES)
    d = state[1] - state[0]
    exact = reference_shares_for(*state, d)
    assert abs(exact - 2 * d) <= REFERENCE_ERROR
    assert buy_cost(*state, 2 * d) == d + QUANTUM
    assert shares_for_amount(*state, d) == 2 * d - QUANTUM


def test_an_amount_a_hair_above_an_exact_cost_buys_the_unit_it_pays_for() -> None:
    # 48.37701465 buys exactly 96.7540293 YES here (the case above); one unit more buys one
    # more share but for 1e-29 (the price is 1 - e^-48), and the charge for them, exactly
    # 48.37701466 minus that, lies inside 34 digits' error bound of the amount: decided at
    # 34 digits alone, the house took a unit and the inverse fell two units short.
    state = (Decimal(0), Decimal("48.37701465"), Decimal(1), Outcome.YES)
    amount = Decimal("48.37701466")
    exact = reference_shares_for(*state, amount)
    assert Decimal(0) < exact - Decimal("96.75402931") < Decimal("1e-28")
    assert buy_cost(*state, Decimal("96.75402931")) == amount
    assert shares_for_amount(*state, amount) == Decimal("96.75402931")


@pytest.mark.parametrize("q_no", ["0", "56.61429105"])
def test_the_smallest_amount_buys_one_unit(q_no: str) -> None:
    # One unit never costs less (or more) than one unit of money, however likely.
    assert shares_for_amount(Decimal(0), Decimal(q_no), Decimal(1), Outcome.NO, QUANTUM) == (
        QUANTUM
    )
