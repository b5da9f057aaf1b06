"""trading: settlement of positions, idempotency keys, tracked jobs, trade indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSETTLED = sa.text("settled_at IS NULL")


def upgrade() -> None:
    op.add_column(
        "positions",
        sa.Column("settled_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("positions", sa.Column("settled_amount", infra.db.types.Money(), nullable=True))
    op.create_index(
        "ix_positions_unsettled",
        "positions",
        ["market_id", "id"],
        unique=False,
        postgresql_where=_UNSETTLED,
        sqlite_where=_UNSETTLED,
    )
    # Composite indexes serve both the foreign-key lookups and the newest-first pages.
    op.drop_index("ix_trades_market_id", table_name="trades")
    op.drop_index("ix_trades_user_id", table_name="trades")
    op.drop_index("ix_ledger_entries_user_id", table_name="ledger_entries")
    op.create_index(
        "ix_trades_market_created_id", "trades", ["market_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_trades_user_created_id", "trades", ["user_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_ledger_entries_user_created_id",
        "ledger_entries",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("trade_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.id"], name=op.f("fk_idempotency_keys_trade_id_trades")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "MARKET_PAYOUT",
                "MARKET_REFUND",
                name="job_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "QUEUED",
                "RUNNING",
                "RETRYING",
                "COMPLETE",
                "FAILED",
                name="job_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("market_id", sa.Uuid(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("enqueued_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", infra.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", infra.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.id"], name=op.f("fk_jobs_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_state"), "jobs", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_state"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_ledger_entries_user_created_id", table_name="ledger_entries")
    op.drop_index("ix_trades_user_created_id", table_name="trades")
    op.drop_index("ix_trades_market_created_id", table_name="trades")
    op.create_index("ix_ledger_entries_user_id", "ledger_entries", ["user_id"], unique=False)
    op.create_index("ix_trades_user_id", "trades", ["user_id"], unique=False)
    op.create_index("ix_trades_market_id", "trades", ["market_id"], unique=False)
    op.drop_index("ix_positions_unsettled", table_name="positions")
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("settled_amount")
        batch.drop_column("settled_at")
