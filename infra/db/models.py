"""The tables, as SQLAlchemy Core metadata (the migrations are written from it).

Core rather than the ORM: reads select plain rows and map them to domain
entities, so there is no identity map or lazy loading on the request path.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa

from domain.entities import JobKind, JobState, LedgerKind, MarketStatus, Outcome, Role, TradeSide
from infra.db.types import Money, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _enum(cls: type[enum.Enum], name: str) -> sa.Enum:
    # Non-native enums get a CHECK constraint only when asked, on both databases.
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("display_name", sa.String(64), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", _enum(Role, "role"), nullable=False, server_default=Role.USER.value),
    sa.Column("balance", Money, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
)

markets = sa.Table(
    "markets",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.String(2000), nullable=True),
    sa.Column("status", _enum(MarketStatus, "market_status"), nullable=False),
    sa.Column("outcome", _enum(Outcome, "market_outcome"), nullable=True),
    sa.Column("creator_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("end_date", UTCDateTime, nullable=False),
    sa.Column("liquidity", Money, nullable=False),
    sa.Column("q_yes", Money, nullable=False),
    sa.Column("q_no", Money, nullable=False),
    sa.Column("volume", Money, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Derived from q_yes, q_no and liquidity (domain.pricing.quoted_yes_price), kept by the
    # transactions that change them so that no read computes exponentials.
    sa.Column("yes_price", Money, nullable=False),
    sa.CheckConstraint("liquidity > 0", name="liquidity_positive"),
    sa.CheckConstraint("volume >= 0", name="volume_not_negative"),
)
# Keyset pagination orders by (field, id): one index per sort field, plus the
# status filter that the busiest listing (active markets by volume) uses.
sa.Index("ix_markets_volume_id", markets.c.volume, markets.c.id)
sa.Index("ix_markets_status_volume_id", markets.c.status, markets.c.volume, markets.c.id)
sa.Index("ix_markets_created_at_id", markets.c.created_at, markets.c.id)
sa.Index("ix_markets_end_date_id", markets.c.end_date, markets.c.id)
sa.Index("ix_markets_creator_created_id", markets.c.creator_id, markets.c.created_at, markets.c.id)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("market_id", sa.Uuid, sa.ForeignKey("markets.id"), nullable=False),
    sa.Column("outcome", _enum(Outcome, "position_outcome"), nullable=False),
    sa.Column("shares", Money, nullable=False),
    sa.Column("cost_basis", Money, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Set once, by settlement, in the transaction that pays the position: a position
    # with settled_at is never paid again.
    sa.Column("settled_at", UTCDateTime, nullable=True),
    sa.Column("settled_amount", Money, nullable=True),
    sa.UniqueConstraint("user_id", "market_id", "outcome", name="uq_positions_holder"),
    sa.CheckConstraint("shares >= 0", name="shares_not_negative"),
)
sa.Index(
    "ix_positions_market_created_id", positions.c.market_id, positions.c.created_at, positions.c.id
)
sa.Index(
    "ix_positions_user_created_id", positions.c.user_id, positions.c.created_at, positions.c.id
)
# Settlement walks a market's unpaid positions in id order, batch by batch.
sa.Index(
    "ix_positions_unsettled",
    positions.c.market_id,
    positions.c.id,
    postgresql_where=positions.c.settled_at.is_(None),
    sqlite_where=positions.c.settled_at.is_(None),
)

trades = sa.Table(
    "trades",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("market_id", sa.Uuid, sa.ForeignKey("markets.id"), nullable=False),
    sa.Column("outcome", _enum(Outcome, "trade_outcome"), nullable=False),
    sa.Column("side", _enum(TradeSide, "trade_side"), nullable=False),
    sa.Column("shares", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("price_before", Money, nullable=False),
    sa.Column("price_after", Money, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("shares > 0", name="shares_positive"),
)
# Trades newest first, per market and per user (connections and price history).
sa.Index("ix_trades_market_created_id", trades.c.market_id, trades.c.created_at, trades.c.id)
sa.Index("ix_trades_user_created_id", trades.c.user_id, trades.c.created_at, trades.c.id)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("kind", _enum(LedgerKind, "ledger_kind"), nullable=False),
    sa.Column("market_id", sa.Uuid, sa.ForeignKey("markets.id"), nullable=True),
    sa.Column("trade_id", sa.Uuid, sa.ForeignKey("trades.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
sa.Index(
    "ix_ledger_entries_user_created_id",
    ledger_entries.c.user_id,
    ledger_entries.c.created_at,
    ledger_entries.c.id,
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    # SHA-256 hex of the request's input: a replay must match it exactly.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # The result the key stands for; set in the same transaction as the trade.
    sa.Column("trade_id", sa.Uuid, sa.ForeignKey("trades.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", _enum(JobKind, "job_kind"), nullable=False),
    sa.Column("state", _enum(JobState, "job_state"), nullable=False, index=True),
    sa.Column("market_id", sa.Uuid, sa.ForeignKey("markets.id"), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.String(2000), nullable=True),
    sa.Column("enqueued_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("session_id", sa.Uuid, sa.ForeignKey("sessions.id"), nullable=False, index=True),
    # SHA-256 hex of the token: the token itself is never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

# Trusted documents (``marketgraph register-operations``): operations clients may run by id.
trusted_documents = sa.Table(
    "trusted_documents",
    metadata,
    # The id the client's manifest gives the document (Apollo: its SHA-256; Relay: any).
    sa.Column("id", sa.String(200), primary_key=True),
    # SHA-256 hex of the body: how a request that sends the text (or an APQ hash) finds it.
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
)
