"""Entities of the prediction market: plain dataclasses with their invariants."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID


class Role(enum.StrEnum):
    USER = "USER"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


class MarketStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"
    RESOLVED = "RESOLVED"
    CANCELLED = "CANCELLED"


class Outcome(enum.StrEnum):
    YES = "YES"
    NO = "NO"


class TradeSide(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class LedgerKind(enum.StrEnum):
    SIGNUP_GRANT = "SIGNUP_GRANT"
    TRADE = "TRADE"
    PAYOUT = "PAYOUT"
    REFUND = "REFUND"


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    display_name: str
    role: Role
    balance: Decimal
    disabled: bool
    token_version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserCredentials:
    """What sign-in needs to know of a user; kept apart so reads never carry the hash."""

    id: UUID
    password_hash: str
    disabled: bool
    token_version: int


@dataclass(frozen=True, slots=True)
class Market:
    id: UUID
    name: str
    description: str | None
    status: MarketStatus
    outcome: Outcome | None
    creator_id: UUID
    end_date: datetime
    liquidity: Decimal
    q_yes: Decimal
    q_no: Decimal
    volume: Decimal
    created_at: datetime
    updated_at: datetime
    # The shown YES price for q_yes/q_no: derived state, kept by every change of the shares.
    yes_price: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    id: UUID
    user_id: UUID
    market_id: UUID
    outcome: Outcome
    shares: Decimal
    cost_basis: Decimal
    created_at: datetime
