"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db.types


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Enum('USER', 'MODERATOR', 'ADMIN', name='role', native_enum=False, create_constraint=True, length=16), server_default='USER', nullable=False),
    sa.Column('balance', infra.db.types.Money(), nullable=False),
    sa.Column('disabled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('token_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_users_balance_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('markets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=True),
    sa.Column('status', sa.Enum('ACTIVE', 'CLOSED', 'RESOLVED', 'CANCELLED', name='market_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('outcome', sa.Enum('YES', 'NO', name='market_outcome', native_enum=False, create_constraint=True, length=16), nullable=True),
    sa.Column('creator_id', sa.Uuid(), nullable=False),
    sa.Column('end_date', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('liquidity', infra.db.types.Money(), nullable=False),
    sa.Column('q_yes', infra.db.types.Money(), nullable=False),
    sa.Column('q_no', infra.db.types.Money(), nullable=False),
    sa.Column('volume', infra.db.types.Money(), nullable=False),
    sa.Column('created_at', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('liquidity > 0', name=op.f('ck_markets_liquidity_positive')),
    sa.CheckConstraint('volume >= 0', name=op.f('ck_markets_volume_not_negative')),
    sa.ForeignKeyConstraint(['creator_id'], ['users.id'], name=op.f('fk_markets_creator_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_markets')),
    sa.UniqueConstraint('name', name=op.f('uq_markets_name'))
    )
    op.create_index('ix_markets_created_at_id', 'markets', ['created_at', 'id'], unique=False)
    op.create_index('ix_markets_creator_created_id', 'markets', ['creator_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_markets_end_date_id', 'markets', ['end_date', 'id'], unique=False)
    op.create_index('ix_markets_status_volume_id', 'markets', ['status', 'volume', 'id'], unique=False)
    op.create_index('ix_markets_volume_id', 'markets', ['volume', 'id'], unique=False)
    op.create_table('positions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('market_id', sa.Uuid(), nullable=False),
    sa.Column('outcome', sa.Enum('YES', 'NO', name='position_outcome', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('shares', infra.db.types.Money(), nullable=False),
    sa.Column('cost_basis', infra.db.types.Money(), nullable=False),
    sa.Column('created_at', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('shares >= 0', name=op.f('ck_positions_shares_not_negative')),
    sa.ForeignKeyConstraint(['market_id'], ['markets.id'], name=op.f('fk_positions_market_id_markets')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_positions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_positions')),
    sa.UniqueConstraint('user_id', 'market_id', 'outcome', name='uq_positions_holder')
    )
    op.create_index('ix_positions_market_created_id', 'positions', ['market_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_positions_user_created_id', 'positions', ['user_id', 'created_at', 'id'], unique=False)
    op.create_table('trades',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('market_id', sa.Uuid(), nullable=False),
    sa.Column('outcome', sa.Enum('YES', 'NO', name='trade_outcome', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('side', sa.Enum('BUY', 'SELL', name='trade_side', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('shares', infra.db.types.Money(), nullable=False),
    sa.Column('amount', infra.db.types.Money(), nullable=False),
    sa.Column('price_before', infra.db.types.Money(), nullable=False),
    sa.Column('price_after', infra.db.types.Money(), nullable=False),
    sa.Column('created_at', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('shares > 0', name=op.f('ck_trades_shares_positive')),
    sa.ForeignKeyConstraint(['market_id'], ['markets.id'], name=op.f('fk_trades_market_id_markets')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_trades_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trades'))
    )
    op.create_index(op.f('ix_trades_market_id'), 'trades', ['market_id'], unique=False)
    op.create_index(op.f('ix_trades_user_id'), 'trades', ['user_id'], unique=False)
    op.create_table('ledger_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('amount', infra.db.types.Money(), nullable=False),
    sa.Column('kind', sa.Enum('SIGNUP_GRANT', 'TRADE', 'PAYOUT', 'REFUND', name='ledger_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('market_id', sa.Uuid(), nullable=True),
    sa.Column('trade_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', infra.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['market_id'], ['markets.id'], name=op.f('fk_ledger_entries_market_id_markets')),
    sa.ForeignKeyConstraint(['trade_id'], ['trades.id'], name=op.f('fk_ledger_entries_trade_id_trades')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ledger_entries_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    op.create_index(op.f('ix_ledger_entries_user_id'), 'ledger_entries', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ledger_entries_user_id'), table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_index(op.f('ix_trades_user_id'), table_name='trades')
    op.drop_index(op.f('ix_trades_market_id'), table_name='trades')
    op.drop_table('trades')
    op.drop_index('ix_positions_user_created_id', table_name='positions')
    op.drop_index('ix_positions_market_created_id', table_name='positions')
    op.drop_table('positions')
    op.drop_index('ix_markets_volume_id', table_name='markets')
    op.drop_index('ix_markets_status_volume_id', table_name='markets')
    op.drop_index('ix_markets_end_date_id', table_name='markets')
    op.drop_index('ix_markets_creator_created_id', table_name='markets')
    op.drop_index('ix_markets_created_at_id', table_name='markets')
    op.drop_table('markets')
    op.drop_table('users')
