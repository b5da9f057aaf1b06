"""trusted documents

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The registry of trusted documents that ``marketgraph register-operations``
fills from Apollo's or Relay's persisted-query manifests.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from infra.db.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_documents")),
    )
    op.create_index(
        op.f("ix_trusted_documents_sha256"), "trusted_documents", ["sha256"], unique=False
    )
    op.create_index(
        op.f("ix_trusted_documents_created_at"), "trusted_documents", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_trusted_documents_created_at"), table_name="trusted_documents")
    op.drop_index(op.f("ix_trusted_documents_sha256"), table_name="trusted_documents")
    op.drop_table("trusted_documents")
