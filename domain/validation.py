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


# Names are shown to other people and must be unique, so nothing in them may be invisible
# or rearrange the text around it: two names that look the same must be the same name.
# Refused: format characters (Cf: bidi controls such as U+202E, zero-width spaces, soft
# hyphens, the BOM, tag characters), private-use characters (Co, which render as whatever
# a font makes of them), line and paragraph separators (Zl, Zp), and the default-ignorable
# characters outside Cf that render as blank (the combining grapheme joiner, Hangul
# fillers, the blank Braille pattern).
_INVISIBLE = frozenset({"Cf", "Co", "Zl", "Zp"})
_BLANK = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")
# Zero-width (non-)joiners are Cf but written inside words of Arabic and Indic scripts
# and in emoji sequences; allowed only between two non-ASCII letters, marks or symbols,
# so that they cannot hide inside Latin text.
_JOINERS = frozenset("\u200c\u200d")


def _has_unprintable(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    return any(unicodedata.category(char) in _UNPRINTABLE and char not in allowed for char in value)


def _joinable(char: str) -> bool:
    return ord(char) > 0x7F and unicodedata.category(char)[0] in "LMS"


def _invisible(value: str) -> str | None:
    """The first character of ``value`` that a reader could not see, if any."""
    for index, char in enumerate(value):
        if char in _JOINERS:
            if (
                0 < index < len(value) - 1
                and _joinable(value[index - 1])
                and _joinable(value[index + 1])
            ):
                continue
            return char
        if char in _BLANK or unicodedata.category(char) in _INVISIBLE:
            return char
    return None


def _name(value: str, field: str, what: str, longest: int) -> str:
    """A name as stored and compared: NFC, trimmed, visible, 1 to ``longest`` characters.

    NFC first, so that the same text typed with precomposed or combining accents is one
    name (for uniqueness too) and its length is the length people see.
    """
    name = unicodedata.normalize("NFC", value).strip()
    if not 1 <= len(name) <= longest:
        raise InvalidInput(field, f"The {what} must be 1 to {longest} characters long.")
    if _has_unprintable(name):
        raise InvalidInput(field, f"The {what} must not contain control characters.")
    hidden = _invisible(name)
    if hidden is not None:
        raise InvalidInput(
            field,
            f"The {what} must not contain invisible or text-direction characters"
            f" (it contains U+{ord(hidden):04X}).",
        )
    return name


def market_name(value: str) -> str:
    return _name(value, "name", "name", NAME_MAX)


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
    return _name(value, "displayName", "display name", DISPLAY_NAME_MAX)


def password(value: str, field: str = "password") -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidInput(
            field, f"The password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long."
        )
    return value
