"""The migrations build exactly the tables the code declares, and go down and up again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.db.migrate import current_revision, head_revision, upgrade
from infra.db.models import metadata
from tests.conftest import ADMIN_DATABASE_URL, _asyncpg_dsn


@pytest.fixture(params=["postgres", "sqlite"])
async def empty(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database of its own with no tables at all."""
    if request.param == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
        yield engine
        await engine.dispose()
        return
    name = f"mg_migrate_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_DATABASE_URL))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_DATABASE_URL).set(database=name)
    engine = create_async_engine(url.render_as_string(hide_password=False), pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def differences(engine: AsyncEngine) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def test_the_migrated_schema_is_the_declared_schema(empty: AsyncEngine) -> None:
    await upgrade(empty)
    assert await current_revision(empty) == head_revision() == "0005"
    assert await differences(empty) == []


@pytest.mark.parametrize("below", ["0002", "0003"])
async def test_the_later_migrations_go_down_and_up_again(empty: AsyncEngine, below: str) -> None:
    await upgrade(empty)
    await downgrade(empty, below)
    assert await current_revision(empty) == below
    await upgrade(empty)
    assert await differences(empty) == []


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    from infra.db.migrate import alembic_config

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
