"""What the use cases need from the outside world, as protocols the infra layer implements."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self
from uuid import UUID

from domain.entities import (
    Job,
    JobKind,
    JobState,
    LedgerKind,
    Market,
    MarketStatus,
    Outcome,
    Position,
    Role,
    Trade,
    User,
    UserCredentials,
)
from domain.limits import BudgetSpec, BudgetState
from domain.readmodel import Children, ObjectType
from domain.readplan import Bound, Plan
from domain.reads import (
    ChildPageKey,
    HistoryKey,
    MarketFilter,
    MarketOrder,
    Page,
    PageRequest,
    PriceBucket,
)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class NewUser:
    id: UUID
    email: str
    display_name: str
    password_hash: str
    balance: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token, with what rotation needs to know of its session."""

    id: UUID
    session_id: UUID
    user_id: UUID
    expires_at: datetime
    used_at: datetime | None
    session_revoked: bool
    session_created_at: datetime


@dataclass(frozen=True, slots=True)
class NewLedgerEntry:
    user_id: UUID
    amount: Decimal
    kind: LedgerKind
    at: datetime
    market_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A live idempotency key: what the request that used it asked, and its trade."""

    fingerprint: str
    trade_id: UUID | None


@dataclass(frozen=True, slots=True)
class Slot:
    """A place taken in an attempt window, or (no id) the seconds until one frees up."""

    id: str
    retry_after: int | None


class UserRepository(Protocol):
    async def add(self, user: NewUser) -> User:
        """Insert a user; raises ``Conflict`` when the email is taken."""

    async def get(self, user_id: UUID) -> User | None: ...

    async def credentials_by_email(self, email: str) -> UserCredentials | None: ...

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...

    async def credentials(self, user_id: UUID) -> UserCredentials | None: ...

    async def bump_token_version(self, user_id: UUID) -> None:
        """Invalidate every access token issued to the user so far."""

    async def set_role(self, user_id: UUID, role: Role) -> User | None: ...

    async def set_disabled(self, user_id: UUID, disabled: bool) -> User | None: ...

    async def credit(self, user_id: UUID, amount: Decimal) -> None:
        """Add to the balance in one atomic update."""

    async def debit(self, user_id: UUID, amount: Decimal) -> User | None:
        """Take ``amount`` if the balance covers it (``... WHERE balance >= amount``);
        None, and nothing taken, when it does not."""

    async def credit_returning(self, user_id: UUID, amount: Decimal) -> User: ...

    async def credit_many(self, credits: Sequence[tuple[UUID, Decimal]]) -> None:
        """Credit several users at once, locking their rows in id order."""


class MarketRepository(Protocol):
    async def add(self, market: Market) -> Market:
        """Insert a market; raises ``Conflict`` when the name is taken."""

    async def get(self, market_id: UUID) -> Market | None: ...

    async def get_for_update(self, market_id: UUID) -> Market | None:
        """Load and lock the market row for the rest of the transaction."""

    async def save(self, market: Market) -> Market:
        """Write the editable fields back; raises ``Conflict`` when the name is taken."""

    async def has_trades(self, market_id: UUID) -> bool: ...

    async def delete(self, market_id: UUID) -> None: ...

    async def set_status(self, market_id: UUID, status: MarketStatus, now: datetime) -> Market: ...

    async def resolve(self, market_id: UUID, outcome: Outcome, now: datetime) -> Market: ...

    async def apply_trade(
        self,
        market_id: UUID,
        q_yes: Decimal,
        q_no: Decimal,
        volume: Decimal,
        yes_price: Decimal,
        now: datetime,
    ) -> Market:
        """Write the shares outstanding, volume and shown price a trade left (the row is
        locked)."""

    async def close_expired(self, now: datetime) -> list[UUID]:
        """Close every active market whose end date has come; the ids closed."""


class LedgerRepository(Protocol):
    async def add(
        self,
        user_id: UUID,
        amount: Decimal,
        kind: LedgerKind,
        at: datetime,
        market_id: UUID | None = None,
        trade_id: UUID | None = None,
    ) -> None: ...

    async def add_many(self, entries: Sequence[NewLedgerEntry]) -> None: ...


class PositionRepository(Protocol):
    async def get(self, user_id: UUID, market_id: UUID, outcome: Outcome) -> Position | None: ...

    async def get_for_update(
        self, user_id: UUID, market_id: UUID, outcome: Outcome
    ) -> Position | None: ...

    async def add_shares(
        self,
        user_id: UUID,
        market_id: UUID,
        outcome: Outcome,
        shares: Decimal,
        cost: Decimal,
        now: datetime,
    ) -> Position:
        """Open the position, or add shares and cost to it (an upsert)."""

    async def remove_shares(
        self, position_id: UUID, shares: Decimal, cost_basis: Decimal, now: datetime
    ) -> Position: ...

    async def unsettled_for_update(self, market_id: UUID, limit: int) -> list[Position]:
        """Up to ``limit`` positions of the market not yet settled, by id, locked."""

    async def mark_settled(self, settled: Sequence[tuple[UUID, Decimal]], now: datetime) -> None:
        """Record per position what settlement paid; a settled position is never paid again."""


class TradeRepository(Protocol):
    async def add(self, trade: Trade) -> None: ...

    async def get(self, trade_id: UUID) -> Trade | None: ...


class IdempotencyRepository(Protocol):
    async def claim(
        self, user_id: UUID, key: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> KeyRecord | None:
        """None: the key is this transaction's now. A record: a live use holds it."""

    async def record(self, user_id: UUID, key: str, trade_id: UUID) -> None:
        """Store the result the key stands for (in the trade's own transaction)."""

    async def purge_expired(self, now: datetime, limit: int) -> int: ...


class JobRepository(Protocol):
    async def add(self, kind: JobKind, market_id: UUID | None, now: datetime) -> Job: ...

    async def get(self, job_id: UUID) -> Job | None: ...

    async def start(self, job_id: UUID, now: datetime) -> Job | None:
        """Count an attempt and mark the job running; None for an unknown job."""

    async def finish(
        self, job_id: UUID, state: JobState, error: str | None, now: datetime
    ) -> Job: ...

    async def unfinished(self, changed_before: datetime, limit: int) -> list[Job]:
        """Jobs not finished whose row has not changed since ``changed_before``."""


class SessionRepository(Protocol):
    async def start(self, session_id: UUID, user_id: UUID, now: datetime) -> None: ...

    async def add_token(
        self,
        token_id: UUID,
        session_id: UUID,
        token_hash: str,
        now: datetime,
        expires_at: datetime,
    ) -> None: ...

    async def token_for_update(self, token_hash: str) -> RefreshRecord | None:
        """Find and lock a refresh token by its hash."""

    async def mark_used(self, token_id: UUID, now: datetime) -> None: ...

    async def revoke(self, session_id: UUID, now: datetime) -> None: ...

    async def revoke_all(self, user_id: UUID, now: datetime, keep: UUID | None = None) -> None: ...


class UnitOfWork(Protocol):
    """One transaction; leaving the block without ``commit`` rolls everything back."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def markets(self) -> MarketRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def positions(self) -> PositionRepository: ...

    @property
    def trades(self) -> TradeRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def jobs(self) -> JobRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class TokenIssuer(Protocol):
    def issue_access(self, user: User, session_id: UUID) -> AccessToken: ...


class Throttle(Protocol):
    async def acquire(self, key: str, limit: int, window_seconds: int) -> Slot:
        """Take a place in the window of ``key``, unless ``limit`` places are taken."""

    async def release(self, key: str, slot_id: str) -> None:
        """Give a place back (the attempt succeeded, so it does not count)."""


class CompiledReads(Protocol):
    async def read(self, plan: Plan, bound: Bound) -> list[str | None]:
        """Each root field's JSON text (None for null), in the plan's order: one statement each."""


class Budgets(Protocol):
    """Cost budgets (``domain.limits``): buckets of points keyed by identity.

    Every call is atomic: concurrent ``take`` calls against one budget never
    take more than it holds. A budget nobody has touched (or that has refilled
    completely) is full.
    """

    async def take(self, key: str, cost: int, spec: BudgetSpec) -> BudgetState:
        """Take ``cost`` points if the budget holds them; otherwise take nothing and
        answer ``allowed=False`` with the wait until it will."""

    async def refund(self, key: str, points: int, spec: BudgetSpec) -> BudgetState:
        """Give back ``points`` (taken but not spent); a budget never exceeds its capacity."""

    async def peek(self, key: str, spec: BudgetSpec) -> BudgetState:
        """The budget as it stands, changing nothing."""

    def take_now(self, key: str, cost: int, spec: BudgetSpec) -> Coroutine[Any, Any, BudgetState]:
        """``take``, its command sent before this returns where the store has one to send,
        so that it shares a round trip with what the caller sends next (a cache hit's
        lookup); awaiting what this returns gives ``take``'s answer. Await it once, or
        close it."""

    def refund_later(self, key: str, points: int, spec: BudgetSpec, full_in: float) -> BudgetState:
        """``refund`` without waiting for the store: the state answered is worked out from
        ``full_in``, the seconds until full that the take's answer gave. A refund the store
        never runs is lost (the budget stays stricter, never looser)."""


class JobQueue(Protocol):
    """Hands tracked jobs to whoever runs them (saq workers, or the in-process runner)."""

    async def enqueue(self, job: Job) -> None:
        """Hand the job over; a no-op while it is already waiting or running.

        Never raises: a job that cannot be handed over now (Redis unreachable)
        keeps its QUEUED row, and the periodic dispatcher hands it over later.
        """


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says: whose it is, which session, which version."""

    user_id: UUID
    session_id: UUID
    token_version: int
    jti: str


class InvalidToken(Exception):
    """The token is malformed, expired, forged or not an access token."""


class AccessTokens(Protocol):
    def decode_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token; raises ``InvalidToken`` otherwise."""


@dataclass(frozen=True, slots=True)
class Identity:
    user: User
    session_active: bool


class Identities(Protocol):
    async def identity(self, user_id: UUID, session_id: UUID) -> Identity | None:
        """The user behind a token and whether its session stands (one statement)."""


# A to-many relation's count for one parent: all its rows, or one holder's (private lists).
CountKey = tuple[UUID, UUID | None]


class BatchReads(Protocol):
    """The reads behind the per-request DataLoaders: keys in, results in key order, each
    call one statement. Objects, pages and counts are answered for any type and relation
    of the read model (``domain/readmodel.py``)."""

    async def objects(self, kind: ObjectType, ids: Sequence[UUID]) -> list[Any | None]: ...

    async def pages(self, children: Children, keys: Sequence[ChildPageKey]) -> list[Page[Any]]: ...

    async def counts(self, children: Children, keys: Sequence[CountKey]) -> list[int]: ...

    async def market_page(
        self, where: MarketFilter, order: MarketOrder, page: PageRequest
    ) -> Page[Market]: ...

    async def market_count(self, where: MarketFilter) -> int: ...

    async def price_history(self, keys: Sequence[HistoryKey]) -> list[list[PriceBucket]]: ...

    async def jobs_by_ids(self, ids: Sequence[UUID]) -> list[Job | None]: ...


class Invalidator(Protocol):
    """Drops cached responses that show what a committed write changed."""

    async def invalidate(self, tags: frozenset[str]) -> None:
        """Invalidate every cached response holding one of ``tags`` (``domain.changes``).

        Called after the commit, so it never raises: a cache it cannot reach is
        flushed as soon as it answers again.
        """


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A stored query response: the bytes of ``{"data": ...}`` without ``extensions``."""

    body: bytes
    actual_cost: int
    etag: str
    # Wall-clock seconds (shared by every process on the cache).
    stored_at: float
    fresh_until: float
    # The invalidation generation the response was read at (see ``ResponseStore``).
    generation: int


@dataclass(slots=True)  # a value, not frozen only for speed (one per cache lookup)
class Lookup:
    """What a response store holds under a key, and its invalidation generation now."""

    entry: CachedResponse | None
    generation: int


class ResponseStore(Protocol):
    """Cached responses with their tags; every invalidation advances a generation.

    A response is stored with the generation its lookup saw: if any of its tags
    was invalidated since then (a write committed while it was being read), the
    store refuses it, so a slow read can never put back what a write dropped.
    """

    async def lookup(self, key: str) -> Lookup | None:
        """The entry under ``key`` (None inside when there is none); None when the store is
        unreachable (the caller bypasses it)."""

    async def store(
        self, key: str, entry: CachedResponse, tags: frozenset[str], ttl_seconds: int
    ) -> bool:
        """Keep ``entry`` for ``ttl_seconds`` unless a tag changed after ``entry.generation``;
        False when refused or unreachable."""

    async def invalidate(self, tags: frozenset[str]) -> None:
        """Drop every entry holding one of ``tags``; never raises (see ``Invalidator``)."""


class PersistedQueries(Protocol):
    """Automatic persisted queries: query texts by the SHA-256 of their text."""

    async def get(self, sha256: str) -> str | None:
        """The text stored under the hash; None when unknown (or the store is unreachable)."""

    async def put(self, sha256: str, query: str) -> None:
        """Remember a text under its (verified) hash; never raises."""


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    """A registered operation document: its id in the client's manifest, and its text."""

    id: str
    body: str
    sha256: str
    name: str | None
    registered_at: datetime | None = None


class TrustedDocuments(Protocol):
    """The registry of trusted documents (``marketgraph register-operations``)."""

    async def all(self) -> list[TrustedDocument]: ...

    async def since(self, registered_after: datetime) -> list[TrustedDocument]:
        """Documents registered after the instant (for picking up new registrations)."""

    async def register(self, documents: Sequence[TrustedDocument], now: datetime) -> int:
        """Add the documents; an id already registered with another body is a ``Conflict``.
        Returns how many were new."""
