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


class JobKind(enum.StrEnum):
    """What a tracked background job does."""

    MARKET_PAYOUT = "MARKET_PAYOUT"
    MARKET_REFUND = "MARKET_REFUND"


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETE, JobState.FAILED)


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
    """Shares held and what they cost. Once the market is resolved or cancelled,
    settlement pays the position once and records when and how much."""

    id: UUID
    user_id: UUID
    market_id: UUID
    outcome: Outcome
    shares: Decimal
    cost_basis: Decimal
    created_at: datetime
    settled_at: datetime | None = None
    settled_amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Trade:
    """An immutable record of a buy or a sale. Prices are of the traded outcome."""

    id: UUID
    user_id: UUID
    market_id: UUID
    outcome: Outcome
    side: TradeSide
    shares: Decimal
    amount: Decimal
    price_before: Decimal
    price_after: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One change of a balance; ``amount`` is signed (purchases negative)."""

    id: UUID
    user_id: UUID
    amount: Decimal
    kind: LedgerKind
    market_id: UUID | None
    trade_id: UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Job:
    """A tracked background job: its row is written in the transaction that asks for it."""

    id: UUID
    kind: JobKind
    state: JobState
    market_id: UUID | None
    attempts: int
    error: str | None
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
