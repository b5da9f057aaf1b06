"""Inputs of the use cases, already translated out of GraphQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final
from uuid import UUID


class Unset(enum.Enum):
    """Marks a field a partial update leaves alone (distinct from an explicit None)."""

    UNSET = enum.auto()


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class SignUp:
    email: str
    password: str
    display_name: str
    client_ip: str | None = None


@dataclass(frozen=True, slots=True)
class SignIn:
    email: str
    password: str
    client_ip: str | None = None


@dataclass(frozen=True, slots=True)
class ChangePassword:
    current_password: str
    new_password: str


@dataclass(frozen=True, slots=True)
class CreateMarket:
    name: str
    description: str | None
    end_date: datetime
    liquidity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class UpdateMarket:
    market_id: UUID
    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    end_date: datetime | Unset = UNSET
