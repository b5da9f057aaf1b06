"""Alembic environment: runs on a connection handed over by ``infra.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from infra.db.models import metadata

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `marketgraph migrate`")
run_on(connection)
