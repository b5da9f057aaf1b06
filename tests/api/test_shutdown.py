"""An app shuts down whole: a dependency gone by then does not leave the others open."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.app import create_app
from infra.settings import Settings
from tests.support import RedisProcess


async def sessions(db: AsyncEngine, database: str) -> int:
    """Connections open to ``database`` other than the checking one."""
    async with db.connect() as conn:
        found = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        )
    return int(found or 0)


async def test_with_redis_gone_at_shutdown_the_database_pools_still_close(
    settings: Settings, db: AsyncEngine, own_redis: RedisProcess
) -> None:
    assert settings.compiled_reads, "both pools: the resolvers' and the compiled reads'"
    tuned = dataclasses.replace(settings, redis_url=own_redis.url, jobs_in_process=False)
    database = make_url(settings.database_url).database
    assert database
    # Other servers of the test session may keep idle connections to the same database.
    before = await sessions(db, database)
    app = create_app(tuned)
    async with app.router.lifespan_context(app):
        async with app.state.engine.connect() as conn:  # the pool holds one now, at least
            await conn.execute(sa.text("SELECT 1"))
        assert await sessions(db, database) > before
        own_redis.stop()
    # Shutdown met a Redis that was gone; every pool was closed all the same.
    assert await sessions(db, database) == before
