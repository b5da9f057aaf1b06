"""markets keep their shown YES price

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Reads showed each market's price by computing the LMSR's exponentials from
q_yes, q_no and liquidity on every read. The price is now stored on the row by
whatever changes the shares; existing rows are priced here with the same
function the application uses (domain.pricing.quoted_yes_price), so the stored
price is exactly what reads used to show.
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from domain.pricing import quoted_yes_price

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNITS = 8
_HALF = 50_000_000  # 0.5 in units of 1e-8: the price of a market nobody has traded


def _units(amount: Decimal) -> int:
    return int(amount.scaleb(_UNITS))


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-_UNITS)


def upgrade() -> None:
    with op.batch_alter_table("markets") as batch:
        batch.add_column(
            sa.Column("yes_price", sa.BigInteger(), nullable=False, server_default=str(_HALF))
        )
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, q_yes, q_no, liquidity FROM markets WHERE q_yes <> 0 OR q_no <> 0")
    ).all()
    priced = [
        {
            "id": row.id,
            "price": _units(
                quoted_yes_price(_amount(row.q_yes), _amount(row.q_no), _amount(row.liquidity))
            ),
        }
        for row in rows
    ]
    if priced:
        bind.execute(sa.text("UPDATE markets SET yes_price = :price WHERE id = :id"), priced)
    # No default from here on: a write that forgot the price must fail, not show 0.5.
    with op.batch_alter_table("markets") as batch:
        batch.alter_column("yes_price", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("markets") as batch:
        batch.drop_column("yes_price")
