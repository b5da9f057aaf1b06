"""Input rules shared by the use cases."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from decimal import Decimal

from domain.errors import InvalidInput
from domain.money import is_exact

NAME_MAX = 200
DESCRIPTION_MAX = 2000
DISPLAY_NAME_MAX = 64
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
EMAIL_MAX = 254
LIQUIDITY_MIN = Decimal(1)
LIQUIDITY_MAX = Decimal(1_000_000)
# Control characters (NUL above all, which PostgreSQL cannot store in text)
# and lone surrogates (which cannot be encoded as UTF-8) are refused in text
# input; a description may still hold line breaks and tabs.
_UNPRINTABLE = frozenset({"Cc", "Cs"})
_LAYOUT = frozenset("\n\r\t")


def _has_unprintable(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    return any(unicodedata.category(char) in _UNPRINTABLE and char not in allowed for char in value)


def market_name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput("name", f"The name must be 1 to {NAME_MAX} characters long.")
    if _has_unprintable(name):
        raise InvalidInput("name", "The name must not contain control characters.")
    return name


def market_description(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > DESCRIPTION_MAX:
        raise InvalidInput(
            "description", f"The description must be at most {DESCRIPTION_MAX} characters long."
        )
    if _has_unprintable(value, _LAYOUT):
        raise InvalidInput("description", "The description must not contain control characters.")
    return value


def end_date(value: datetime, now: datetime) -> datetime:
    """The end date in UTC; it must carry a time zone and lie in the future."""
    if value.utcoffset() is None:
        raise InvalidInput("endDate", "The end date must carry a time zone.")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00-05:00 is a valid input but lies past the last UTC datetime.
        raise InvalidInput("endDate", "The end date is out of range.") from None
    if utc <= now:
        raise InvalidInput("endDate", "The end date must be in the future.")
    return utc


def liquidity(value: Decimal) -> Decimal:
    if not value.is_finite() or not LIQUIDITY_MIN <= value <= LIQUIDITY_MAX or not is_exact(value):
        raise InvalidInput(
            "liquidity",
            f"The liquidity must be between {LIQUIDITY_MIN} and {LIQUIDITY_MAX}"
            " with at most 8 decimal places.",
        )
    return value


def email(value: str) -> str:
    address = value.strip().lower()
    local, at, domain = address.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or domain.startswith(".")
        or domain.endswith(".")
        or "@" in domain
        or any(c.isspace() for c in address)
        or _has_unprintable(address)
        or len(address) > EMAIL_MAX
    ):
        raise InvalidInput("email", "The email address is not valid.")
    return address


def display_name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= DISPLAY_NAME_MAX:
        raise InvalidInput(
            "displayName", f"The display name must be 1 to {DISPLAY_NAME_MAX} characters long."
        )
    if _has_unprintable(name):
        raise InvalidInput("displayName", "The display name must not contain control characters.")
    return name


def password(value: str, field: str = "password") -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidInput(
            field, f"The password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long."
        )
    return value
