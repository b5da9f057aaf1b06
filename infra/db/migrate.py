"""Apply migrations and check that a database is at the latest one."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseBehind(Exception):
    """The database is not at the latest migration."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> list[tuple[str, str]]:
    """Apply migrations up to ``revision``; the (revision, description) pairs applied, in order."""

    def run(connection: Connection) -> list[tuple[str, str]]:
        before = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
        if after is None or after == before:
            return []
        scripts = ScriptDirectory.from_config(config).iterate_revisions(after, before or "base")
        return [(script.revision, script.doc) for script in reversed(list(scripts))]

    async with engine.begin() as conn:
        return await conn.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def ensure_current(engine: AsyncEngine) -> None:
    """Raise ``DatabaseBehind`` unless the database is at the head revision."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise DatabaseBehind(
            f"database is at migration {current or 'none'}, the code needs {head}:"
            " run `marketgraph migrate`"
        )
