"""Inputs of the use cases, already translated out of GraphQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final
from uuid import UUID

from domain.entities import Outcome
from domain.errors import FieldProblem


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
class InitialPurchase:
    """The creator's first purchase, made in the transaction that creates the market."""

    outcome: Outcome
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CreateMarket:
    name: str
    description: str | None
    end_date: datetime
    liquidity: Decimal | None = None
    initial_purchase: InitialPurchase | None = None


@dataclass(frozen=True, slots=True)
class UpdateMarket:
    market_id: UUID
    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    end_date: datetime | Unset = UNSET


# ``problems`` on the trading commands: what the API edge already found wrong with the
# input (a malformed id, say), reported together with the use case's own findings so
# that one answer names every bad field. A command with problems is never executed.


@dataclass(frozen=True, slots=True)
class BuyShares:
    """Exactly one of ``amount`` (money to spend) and ``shares``."""

    market_id: UUID | None
    outcome: Outcome
    amount: Decimal | None = None
    shares: Decimal | None = None
    max_average_price: Decimal | None = None
    idempotency_key: str | None = None
    problems: tuple[FieldProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class SellShares:
    market_id: UUID | None
    outcome: Outcome
    shares: Decimal
    min_average_price: Decimal | None = None
    idempotency_key: str | None = None
    problems: tuple[FieldProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolveMarket:
    market_id: UUID
    outcome: Outcome
