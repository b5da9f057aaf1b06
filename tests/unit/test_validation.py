"""The input rules of domain/validation.py and the rounding of domain/money.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import validation
from domain.errors import InvalidInput
from domain.money import QUANTUM, charge, is_exact, payout

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
properties = settings(max_examples=300, deadline=None, database=None)


def field_of(error: pytest.ExceptionInfo[InvalidInput]) -> str:
    assert error.value.message
    return error.value.field


# -- market fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Will it rain?", "Will it rain?"),
        ("  padded  ", "padded"),
        ("x", "x"),
        ("n" * 200, "n" * 200),
        ("  " + "n" * 200 + "  ", "n" * 200),
        ("émoji 🎲 ünïcode", "émoji 🎲 ünïcode"),
    ],
)
def test_market_name_accepts_1_to_200_characters_after_trimming(raw: str, expected: str) -> None:
    assert validation.market_name(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "\t\n", "n" * 201, "nul\x00", "bell\x07", "two\nlines", "\ud800"]
)
def test_market_name_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validation.market_name(raw)
    assert field_of(error) == "name"


@pytest.mark.parametrize("raw", [None, "", "d" * 2000, "line one\r\nline two\ttab"])
def test_market_description_accepts(raw: str | None) -> None:
    assert validation.market_description(raw) == raw


@pytest.mark.parametrize("raw", ["d" * 2001, "nul\x00", "escape\x1b[31m", "\udfff"])
def test_market_description_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validation.market_description(raw)
    assert field_of(error) == "description"


def test_end_date_is_returned_in_utc() -> None:
    local = datetime(2031, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    result = validation.end_date(local, NOW)
    assert result == local
    assert result.utcoffset() == timedelta(0)
    assert (result.hour, result.minute) == (4, 0)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(NOW, id="now"),
        pytest.param(NOW - timedelta(microseconds=1), id="just-past"),
        pytest.param(NOW.astimezone(timezone(timedelta(hours=14))), id="now-in-another-zone"),
        pytest.param(NOW.replace(tzinfo=None) + timedelta(days=1), id="naive"),
        pytest.param(
            datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))), id="past-9999"
        ),
    ],
)
def test_end_date_rejects(value: datetime) -> None:
    with pytest.raises(InvalidInput) as error:
        validation.end_date(value, NOW)
    assert field_of(error) == "endDate"


def test_end_date_accepts_the_next_microsecond() -> None:
    later = NOW + timedelta(microseconds=1)
    assert validation.end_date(later, NOW) == later


@pytest.mark.parametrize("raw", ["1", "100", "1000000", "12.34567891", "1E+2"])
def test_liquidity_accepts(raw: str) -> None:
    assert validation.liquidity(Decimal(raw)) == Decimal(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "-1",
        "0.99999999",
        "1000000.00000001",
        "1.000000001",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "1e999999",
    ],
)
def test_liquidity_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validation.liquidity(Decimal(raw))
    assert field_of(error) == "liquidity"


# -- account fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("someone@example.com", "someone@example.com"),
        ("  Some.One@Example.COM ", "some.one@example.com"),
        ("a@b.co", "a@b.co"),
        ("first+tag@sub.example.org", "first+tag@sub.example.org"),
        ("x" * 242 + "@example.com", "x" * 242 + "@example.com"),
    ],
)
def test_email_is_normalised_to_lower_case(raw: str, expected: str) -> None:
    assert validation.email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plain",
        "@example.com",
        "someone@",
        "someone@example",
        "someone@.example.com",
        "someone@example.com.",
        "two@@example.com",
        "a@b@example.com",
        "some one@example.com",
        "tab\t@example.com",
        "nul\x00@example.com",
        "x" * 243 + "@example.com",
    ],
)
def test_email_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validation.email(raw)
    assert field_of(error) == "email"


@pytest.mark.parametrize(
    ("raw", "expected"), [("Ann", "Ann"), (" Ann ", "Ann"), ("d" * 64, "d" * 64)]
)
def test_display_name_accepts(raw: str, expected: str) -> None:
    assert validation.display_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "d" * 65, "nul\x00", "new\nline"])
def test_display_name_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validation.display_name(raw)
    assert field_of(error) == "displayName"


@pytest.mark.parametrize("raw", ["p" * 8, "p" * 1024, "  spaces count  "])
def test_password_accepts_8_to_1024_characters_unchanged(raw: str) -> None:
    assert validation.password(raw) == raw


@pytest.mark.parametrize("raw", ["", "p" * 7, "p" * 1025])
def test_password_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validation.password(raw)
    assert field_of(error) == "password"


# -- money ----------------------------------------------------------------------------------

amounts = st.decimals(
    min_value=-(10**12), max_value=10**12, places=14, allow_nan=False, allow_infinity=False
)


@properties
@given(amount=amounts)
def test_charge_rounds_up_to_the_next_unit(amount: Decimal) -> None:
    charged = charge(amount)
    assert is_exact(charged)
    with localcontext(prec=60):
        assert charged >= amount
        assert charged - amount < QUANTUM


@properties
@given(amount=amounts)
def test_payout_rounds_down_to_the_unit_below(amount: Decimal) -> None:
    paid = payout(amount)
    assert is_exact(paid)
    with localcontext(prec=60):
        assert paid <= amount
        assert amount - paid < QUANTUM


@properties
@given(amount=amounts)
def test_is_exact_means_no_digit_beyond_the_8th_place(amount: Decimal) -> None:
    assert is_exact(amount) == (amount == amount.quantize(QUANTUM))


@pytest.mark.parametrize(
    ("raw", "charged", "paid"),
    [
        ("1.000000001", "1.00000001", "1.00000000"),
        ("1.00000001", "1.00000001", "1.00000001"),
        ("0.000000009", "0.00000001", "0.00000000"),
        ("2", "2.00000000", "2.00000000"),
    ],
)
def test_rounding_examples(raw: str, charged: str, paid: str) -> None:
    assert charge(Decimal(raw)) == Decimal(charged)
    assert payout(Decimal(raw)) == Decimal(paid)


def test_rounding_works_beyond_the_default_decimal_precision() -> None:
    # 1e21 plus a fraction needs 30 digits at 8 places, more than the default 28.
    with localcontext(prec=60):
        amount = Decimal("1e21") + Decimal("0.000000001")
    assert charge(amount) == Decimal("1000000000000000000000.00000001")
    assert payout(amount) == Decimal("1000000000000000000000.00000000")


@pytest.mark.parametrize(
    ("raw", "exact"),
    [
        ("1E+30", True),
        ("1e999999", True),
        ("0E-20", True),
        ("1.000000000000", True),
        ("1E-20", False),
        ("NaN", False),
        ("Infinity", False),
    ],
)
def test_is_exact_answers_for_any_magnitude(raw: str, exact: bool) -> None:
    assert is_exact(Decimal(raw)) is exact


@pytest.mark.parametrize("raw", ["NaN", "Infinity"])
def test_rounding_refuses_non_finite_amounts(raw: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        charge(Decimal(raw))
    with pytest.raises(ValueError, match="finite"):
        payout(Decimal(raw))


# -- names: one spelling, nothing invisible ---------------------------------------------------

NAME_RULES = [
    pytest.param(validation.market_name, "name", id="market_name"),
    pytest.param(validation.display_name, "displayName", id="display_name"),
]


@pytest.mark.parametrize(("rule", "_field"), NAME_RULES)
def test_names_are_stored_in_nfc(rule: Callable[[str], str], _field: str) -> None:
    decomposed = "Cafe\u0301 Zu\u0308rich"
    assert rule(decomposed) == "Caf\u00e9 Z\u00fcrich"
    assert rule(decomposed) == rule("Caf\u00e9 Z\u00fcrich")


def test_name_length_is_counted_after_nfc() -> None:
    decomposed = "e\u0301" * validation.NAME_MAX  # 400 code points, 200 characters
    assert validation.market_name(decomposed) == "\u00e9" * validation.NAME_MAX


@pytest.mark.parametrize(("rule", "field"), NAME_RULES)
@pytest.mark.parametrize(
    "hidden",
    [
        "\u202e",  # right-to-left override
        "\u202a",  # left-to-right embedding
        "\u2066",  # left-to-right isolate
        "\u2069",  # pop directional isolate
        "\u200f",  # right-to-left mark
        "\u061c",  # Arabic letter mark
        "\u200b",  # zero-width space
        "\u2060",  # word joiner
        "\ufeff",  # byte order mark
        "\u00ad",  # soft hyphen
        "\U000e0041",  # tag latin capital letter a
        "\ue000",  # private use
        "\u2028",  # line separator
        "\u3164",  # Hangul filler
        "\u2800",  # Braille pattern blank
        "\u034f",  # combining grapheme joiner
    ],
)
def test_names_refuse_invisible_and_direction_characters(
    rule: Callable[[str], str], field: str, hidden: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        rule(f"Will it{hidden} rain?")
    assert field_of(error) == field
    assert f"U+{ord(hidden):04X}" in error.value.message


@pytest.mark.parametrize(
    "name",
    [
        "a\u200db",  # a joiner hidden in Latin text
        "\u00e9\u200d",  # at the end
        "\u200c\u00e9",  # at the start
        "caf\u00e9 \u200d\u00e9",  # next to a space
    ],
)
def test_joiners_are_refused_where_they_join_nothing(name: str) -> None:
    with pytest.raises(InvalidInput):
        validation.market_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a ZWNJ
        "\u0915\u094d\u200d\u0937",  # Devanagari, with a ZWJ
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family emoji
        "\u2764\ufe0f\u200d\U0001f525",  # heart on fire (variation selector, then ZWJ)
        "Wer gewinnt die Bundesliga? \u26bd",
    ],
)
def test_names_keep_the_joiners_that_scripts_and_emoji_need(name: str) -> None:
    assert validation.market_name(name) == name
    assert validation.display_name(name) == name
