"""Opaque global ids: base64 of ``Type:uuid``. Clients must not parse them."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from domain.errors import InvalidInput
from graph.errors import bad_input

TYPES = ("Market", "User", "Position", "Trade", "LedgerEntry", "Job")


def to_global_id(type_name: str, ident: UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{ident}".encode()).decode().rstrip("=")


def from_global_id(value: str) -> tuple[str, UUID] | None:
    """The type name and UUID of a global id, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        type_name, _, ident = raw.partition(":")
        if type_name not in TYPES:
            return None
        return type_name, UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def expect_id(value: str, type_name: str, argument: str) -> UUID:
    """The UUID of a global id of ``type_name``, or a BAD_USER_INPUT error."""
    parsed = from_global_id(value)
    if parsed is None or parsed[0] != type_name:
        raise bad_input(f"'{argument}' is not a {type_name} id.", argument)
    return parsed[1]


def input_id(value: str, type_name: str, field: str) -> UUID:
    """The UUID of a global id in a mutation input; a wrong one is invalid input of ``field``."""
    parsed = from_global_id(value)
    if parsed is None or parsed[0] != type_name:
        raise InvalidInput(field, f"This is not a {type_name} id.")
    return parsed[1]
