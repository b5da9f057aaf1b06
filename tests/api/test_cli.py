"""``marketgraph serve`` refuses to start on bad configuration with one line naming the variable."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from graphql import (
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    UnionTypeDefinitionNode,
    parse,
)
from sqlalchemy.engine import make_url

from graph.cli import build_parser, main
from infra.db.migrate import alembic_config, head_revision
from infra.settings import Settings
from tests.api.caching import cache_server, cached_settings
from tests.serving import ServeProcess
from tests.support import PASSWORD, GraphQLClient, MakeAccount, free_port, sign_up_and_in

MARKETGRAPH = str(Path(sys.executable).with_name("marketgraph"))
ADMIN_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "c" * 40
ROOT = Path(__file__).resolve().parents[2]
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
        stdin=asyncio.subprocess.DEVNULL,
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


async def test_create_admin_reaches_the_servers_response_cache_at_once(
    tmp_path: Path, settings: Settings
) -> None:
    """The promotion drops the user's cached answers like setUserRole does: the next query
    shows the role, long before the max age (an hour here) would have."""
    tuned = cached_settings(settings, cache_max_age_seconds=3_600)
    async with cache_server(tuned) as client:
        user = await sign_up_and_in(GraphQLClient(client.http), "Promoted By Command")
        query = f"query {{ viewer {{ id role permissions }} }} # {uuid.uuid4().hex}"
        await client.ask(query, token=user.token)
        cached = await client.ask(query, token=user.token)
        assert (cached.cache, cached.data["viewer"]["role"]) == ("HIT", "USER")
        promoted = await marketgraph(
            tmp_path,
            "create-admin",
            "--email",
            user.email,
            DATABASE_URL=tuned.database_url,
            JWT_SECRET=SECRET,
            REDIS_URL=tuned.redis_url or "",
            REDIS_KEY_PREFIX=tuned.redis_key_prefix,
            MARKETGRAPH_ADMIN_PASSWORD="unused for an existing account",
        )
        assert promoted.returncode == 0, promoted.stderr_lines
        assert promoted.stderr_lines[-1].endswith("is an admin (promoted existing account)")
        after = await client.ask(query, token=user.token)
    assert after.cache == "MISS"
    assert after.data["viewer"]["role"] == "ADMIN"
    assert "user:manage" in after.data["viewer"]["permissions"]


async def test_create_admin_says_when_redis_did_not_take_the_invalidation(
    tmp_path: Path, settings: Settings, make_account: MakeAccount
) -> None:
    account = await make_account("Promoted Without Redis")
    run = await marketgraph(
        tmp_path,
        "create-admin",
        "--email",
        account.email,
        DATABASE_URL=settings.database_url,
        JWT_SECRET=SECRET,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        MARKETGRAPH_ADMIN_PASSWORD="unused for an existing account",
    )
    # The promotion stands; the command says what the cache may still show.
    assert run.returncode == 0, run.stderr_lines
    assert run.stderr_lines == [
        "marketgraph: create-admin: Redis did not confirm the cache invalidation;"
        " cached answers may show the old role for up to 60 s",
        f"marketgraph: {account.email} is an admin (promoted existing account)",
    ]


async def test_seed_refuses_production_with_one_line(tmp_path: Path) -> None:
    """Seeded accounts share a published password, user0 an admin among them."""
    name = f"mg_cli_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(False)
        migrated = await marketgraph(tmp_path, "migrate", DATABASE_URL=url, JWT_SECRET=SECRET)
        assert migrated.returncode == 0, migrated.stderr_lines
        run = await marketgraph(
            tmp_path, "seed", MARKETGRAPH_ENV="production", DATABASE_URL=url, JWT_SECRET=SECRET
        )
        assert run.returncode == 2
        assert len(run.stderr_lines) == 1, run.stderr_lines
        assert run.stderr_lines[0].startswith("marketgraph: seed: ")
        assert "MARKETGRAPH_ENV=production" in run.stderr_lines[0]
        conn = await asyncpg.connect(asyncpg_dsn(name))
        try:
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# --- production refuses the embedded defaults ---------------------------------------------


async def test_production_without_database_url_stops_with_status_2(tmp_path: Path) -> None:
    run = await marketgraph(
        tmp_path, *serve_args(), MARKETGRAPH_ENV="production", JWT_SECRET=SECRET
    )
    assert run.returncode == 2
    assert run.stderr_lines == [
        "marketgraph: DATABASE_URL: required when MARKETGRAPH_ENV=production"
        " (postgresql://user:password@host:5432/database)"
    ]
    assert not (tmp_path / "data").exists()


async def test_production_on_an_explicit_sqlite_file_loads_no_demo_data(tmp_path: Path) -> None:
    database = tmp_path / "chosen.db"
    server = ServeProcess(
        tmp_path,
        MARKETGRAPH_ENV="production",
        JWT_SECRET=SECRET,
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
    )
    with server:
        client = GraphQLClient(httpx.AsyncClient(base_url=server.url, timeout=30))
        signed = await client.data(
            "mutation ($i: SignInInput!) { signIn(input: $i) { __typename } }",
            {"i": {"email": "user0@example.com", "password": "marketgraph-demo"}},
        )
        await client.http.aclose()
    assert signed["signIn"]["__typename"] == "InvalidCredentialsError"
    assert not any("demo" in line for line in server.stderr_lines())
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
    finally:
        conn.close()


async def test_development_default_still_loads_demo_data(tmp_path: Path) -> None:
    with ServeProcess(tmp_path) as server:
        client = GraphQLClient(httpx.AsyncClient(base_url=server.url, timeout=30))
        signed = await client.data(
            "mutation ($i: SignInInput!) { signIn(input: $i) { __typename } }",
            {"i": {"email": "user0@example.com", "password": "marketgraph-demo"}},
        )
        await client.http.aclose()
    assert signed["signIn"]["__typename"] == "SignInSuccess"
    events = [json.loads(line)["event"] for line in server.stderr_lines()]
    assert "demo.loaded" in events


# --- the command line itself ------------------------------------------------------------


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_and_shows_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    commands = subcommands()
    assert {"serve", "migrate", "seed", "export-schema", "create-admin"} <= set(commands)
    for name, parser in commands.items():
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[0] if action.option_strings else action.dest
            assert action.help, f"{name} {flag} has no help"
            assert " ".join(action.help.split()) in text
            if action.default not in (None, False) and not action.required:
                assert f"(default: {action.default})" in text, f"{name} {flag}"


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"marketgraph {project['version']}"


async def test_create_admin_without_terminal_or_password_says_how(
    tmp_path: Path, settings: Settings
) -> None:
    run = await marketgraph(
        tmp_path,
        "create-admin",
        "--email",
        f"no.password.{uuid.uuid4().hex[:8]}@example.com",
        DATABASE_URL=settings.database_url,
        JWT_SECRET=SECRET,
    )
    assert run.returncode == 2
    assert len(run.stderr_lines) == 1, run.stderr_lines
    assert run.stderr_lines[0].startswith("marketgraph: create-admin: ")
    assert "MARKETGRAPH_ADMIN_PASSWORD=" in run.stderr_lines[0]


async def test_migrate_says_which_revisions_it_applied(tmp_path: Path) -> None:
    name = f"mg_cli_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(False)
        revisions = [
            (script.revision, script.doc)
            for script in reversed(
                list(ScriptDirectory.from_config(alembic_config()).walk_revisions())
            )
        ]
        assert len(revisions) >= 2
        first = await marketgraph(tmp_path, "migrate", DATABASE_URL=url, JWT_SECRET=SECRET)
        assert first.returncode == 0, first.stderr_lines
        assert first.stderr_lines == [
            "marketgraph: applied "
            + ", ".join(f"{rev} ({doc})" for rev, doc in revisions)
            + f"; the database is at {revisions[-1][0]}"
        ]
        again = await marketgraph(tmp_path, "migrate", DATABASE_URL=url, JWT_SECRET=SECRET)
        assert again.returncode == 0, again.stderr_lines
        assert again.stderr_lines == [
            f"marketgraph: the database was already at the latest migration"
            f" ({revisions[-1][0]}); nothing applied"
        ]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_export_schema_gives_apollo_possible_types(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        MARKETGRAPH,
        "export-schema",
        "--possible-types",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr
    given = json.loads(stdout)

    # What the committed contract says, read from its syntax tree.
    document = parse((ROOT / "schema.graphql").read_text())
    unions = {
        d.name.value: sorted(t.name.value for t in d.types or ())
        for d in document.definitions
        if isinstance(d, UnionTypeDefinitionNode)
    }
    objects = [d for d in document.definitions if isinstance(d, ObjectTypeDefinitionNode)]
    interfaces = {
        d.name.value: sorted(
            o.name.value
            for o in objects
            if d.name.value in {i.name.value for i in o.interfaces or ()}
        )
        for d in document.definitions
        if isinstance(d, InterfaceTypeDefinitionNode)
    }
    assert given == unions | interfaces
    assert {"Error", "Node", "CreateMarketResult"} <= set(given)
    assert "ValidationError" in given["Error"]
