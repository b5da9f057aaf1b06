"""``marketgraph serve`` refuses to start on bad configuration with one line naming the variable."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from infra.db.migrate import head_revision
from infra.settings import Settings
from tests.support import PASSWORD, GraphQLClient, MakeAccount, free_port

MARKETGRAPH = str(Path(sys.executable).with_name("marketgraph"))
ADMIN_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "c" * 40
# Variables the command reads; the test's own values replace whatever the shell has.
OWN = (
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "MARKETGRAPH_ENV",
    "MARKETGRAPH_DATA_DIR",
    "TRUSTED_PROXIES",
    "GRAPHIQL_ENABLED",
    "INTROSPECTION_ENABLED",
    "LOG_LEVEL",
    "LOG_FORMAT",
)


@dataclass
class Run:
    returncode: int
    stderr_lines: list[str]


async def marketgraph(tmp_path: Path, *args: str, **env: str) -> Run:
    environment = {k: v for k, v in os.environ.items() if k not in OWN}
    environment |= {"MARKETGRAPH_DATA_DIR": str(tmp_path / "data"), **env}
    process = await asyncio.create_subprocess_exec(
        MARKETGRAPH,
        *args,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # A guard against a server that starts after all, not a measure of speed.
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"marketgraph {' '.join(args)} kept running") from None
    assert process.returncode is not None
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    return Run(process.returncode, lines)


def serve_args() -> tuple[str, ...]:
    return ("serve", "--port", str(free_port()))


def asyncpg_dsn(database: str) -> str:
    url = make_url(ADMIN_DATABASE_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def test_malformed_database_url_stops_serve(tmp_path: Path) -> None:
    run = await marketgraph(
        tmp_path, *serve_args(), DATABASE_URL="postgresql://app@db:port/x", JWT_SECRET=SECRET
    )
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr_lines
    assert run.stderr_lines[0].startswith("marketgraph: DATABASE_URL: ")


async def test_unsupported_database_stops_serve(tmp_path: Path) -> None:
    run = await marketgraph(
        tmp_path, *serve_args(), DATABASE_URL="mysql://app@127.0.0.1/x", JWT_SECRET=SECRET
    )
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr_lines
    assert "DATABASE_URL" in run.stderr_lines[0]
    assert "mysql" in run.stderr_lines[0]


async def test_production_without_jwt_secret_stops_serve(tmp_path: Path) -> None:
    run = await marketgraph(
        tmp_path,
        *serve_args(),
        MARKETGRAPH_ENV="production",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x",
    )
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr_lines
    assert run.stderr_lines[0].startswith("marketgraph: JWT_SECRET: ")


async def test_unreachable_database_stops_serve(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    run = await marketgraph(
        tmp_path,
        *serve_args(),
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x",
        JWT_SECRET=SECRET,
    )
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr_lines
    line = run.stderr_lines[0]
    assert line.startswith("marketgraph: DATABASE_URL: ")
    assert "unreachable" in line
    assert "Traceback" not in line


async def test_missing_database_stops_serve(tmp_path: Path) -> None:
    """The server answers, but the database named in the URL does not exist."""
    missing = f"mg_missing_{uuid.uuid4().hex[:12]}"
    url = make_url(ADMIN_DATABASE_URL).set(database=missing).render_as_string(hide_password=False)
    run = await marketgraph(tmp_path, *serve_args(), DATABASE_URL=url, JWT_SECRET=SECRET)
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr_lines
    assert run.stderr_lines[0].startswith("marketgraph: DATABASE_URL: ")
    assert missing in run.stderr_lines[0]


async def test_unmigrated_database_stops_serve_until_migrated(tmp_path: Path) -> None:
    name = f"mg_cli_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(False)
        run = await marketgraph(tmp_path, *serve_args(), DATABASE_URL=url, JWT_SECRET=SECRET)
        assert run.returncode != 0
        assert len(run.stderr_lines) == 1, run.stderr_lines
        line = run.stderr_lines[0]
        assert line.startswith("marketgraph: DATABASE_URL: ")
        assert "`marketgraph migrate`" in line

        # The advice works: after it, the database is at the revision the code needs.
        migrated = await marketgraph(tmp_path, "migrate", DATABASE_URL=url, JWT_SECRET=SECRET)
        assert migrated.returncode == 0, migrated.stderr_lines
        conn = await asyncpg.connect(asyncpg_dsn(name))
        try:
            revision = await conn.fetchval("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()
        assert revision == head_revision()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_sqlite_file_that_cannot_be_created_stops_serve(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    run = await marketgraph(
        tmp_path, *serve_args(), DATABASE_URL=f"sqlite+aiosqlite:///{blocker / 'mg.db'}"
    )
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr_lines
    assert run.stderr_lines[0].startswith("marketgraph: DATABASE_URL: ")


async def test_sqlite_file_that_is_not_a_database_stops_serve(tmp_path: Path) -> None:
    impostor = tmp_path / "mg.db"
    impostor.write_text("this is a text file, not SQLite\n" * 100)
    run = await marketgraph(tmp_path, *serve_args(), DATABASE_URL=f"sqlite+aiosqlite:///{impostor}")
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr_lines
    assert run.stderr_lines[0].startswith("marketgraph: DATABASE_URL: ")
    assert "not a database" in run.stderr_lines[0]
    assert impostor.read_text() == "this is a text file, not SQLite\n" * 100


async def test_create_admin_creates_then_promotes(
    tmp_path: Path, settings: Settings, gql: GraphQLClient, make_account: MakeAccount
) -> None:
    env = {"DATABASE_URL": settings.database_url, "JWT_SECRET": SECRET}
    email = f"first.admin.{uuid.uuid4().hex[:8]}@example.com"
    created = await marketgraph(
        tmp_path,
        "create-admin",
        "--email",
        email,
        "--display-name",
        "First Admin",
        MARKETGRAPH_ADMIN_PASSWORD=PASSWORD,
        **env,
    )
    assert created.returncode == 0, created.stderr_lines
    assert "created" in created.stderr_lines[-1]
    signed = await gql.data(
        "mutation ($i: SignInInput!) { signIn(input: $i) {"
        " ... on SignInSuccess { user { role displayName } } } }",
        {"i": {"email": email, "password": PASSWORD}},
    )
    assert signed["signIn"]["user"] == {"role": "ADMIN", "displayName": "First Admin"}

    existing = await make_account("Promoted Later")
    promoted = await marketgraph(
        tmp_path, "create-admin", "--email", existing.email, MARKETGRAPH_ADMIN_PASSWORD="x", **env
    )
    assert promoted.returncode == 0, promoted.stderr_lines
    assert "promoted" in promoted.stderr_lines[-1]
    viewer = await gql.data("{ viewer { role permissions } }", token=existing.token)
    assert viewer["viewer"]["role"] == "ADMIN"
    assert "user:manage" in viewer["viewer"]["permissions"]
