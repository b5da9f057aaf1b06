"""The ``marketgraph`` command: serve, migrate, seed, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from infra.settings import ConfigError, Settings


def _fail(message: str) -> NoReturn:
    print(f"marketgraph: {message}", file=sys.stderr)
    raise SystemExit(2)


async def _prepare(settings: Settings, *, migrate: bool, demo: bool) -> None:
    """Check the database before any worker starts; on the embedded default, set it up."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from infra.db.engine import create_engine
    from infra.db.migrate import DatabaseBehind, ensure_current, upgrade
    from infra.passwords import Argon2Hasher
    from infra.seed import DEMO, DEMO_PASSWORD, is_empty, seed

    try:
        # Making the engine creates the SQLite file's directory, which can fail too.
        engine = create_engine(settings)
    except OSError as error:
        _fail(f"DATABASE_URL: cannot create the database file ({error.strerror or error})")
    try:
        if migrate:
            await upgrade(engine)
        await ensure_current(engine)
        if demo and await is_empty(engine):
            await seed(engine, DEMO, await Argon2Hasher().hash(DEMO_PASSWORD))
            print(
                f"marketgraph: loaded demo data; sign in as user0@example.com / {DEMO_PASSWORD}",
                file=sys.stderr,
            )
    except DatabaseBehind as error:
        _fail(f"DATABASE_URL: {error}")
    except (OSError, OperationalError, DBAPIError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        _fail(f"DATABASE_URL: database unreachable ({reason})")
    finally:
        await engine.dispose()


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from graph.app import uvicorn_options

    asyncio.run(_prepare(settings, migrate=settings.is_sqlite, demo=settings.is_sqlite))
    workers = args.workers
    if settings.is_sqlite and workers > 1:
        print("marketgraph: the embedded SQLite default runs one worker", file=sys.stderr)
        workers = 1
    uvicorn.run(
        "graph.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        access_log=False,
        **uvicorn_options(settings),
        log_level=settings.log_level.lower(),
    )


def _create_admin(settings: Settings, args: argparse.Namespace) -> None:
    """Create the first admin, or promote an existing account, without going through the API."""
    from datetime import UTC, datetime

    from domain.commands import SignUp
    from domain.errors import DomainError, NotFound
    from domain.services.admin import AdminService
    from domain.services.users import UserService
    from infra.db.engine import create_engine
    from infra.db.uow import SqlUnitOfWork
    from infra.passwords import Argon2Hasher

    async def run() -> str:
        await _prepare(settings, migrate=settings.is_sqlite, demo=False)
        engine = create_engine(settings)

        def clock() -> datetime:
            return datetime.now(UTC)

        users = UserService(
            lambda: SqlUnitOfWork(engine), Argon2Hasher(), clock, settings.starting_balance
        )
        admin = AdminService(lambda: SqlUnitOfWork(engine), clock)
        try:
            try:
                await admin.promote_to_admin(args.email)
                return "promoted existing account"
            except NotFound:
                pass
            password = os.environ.get("MARKETGRAPH_ADMIN_PASSWORD") or getpass.getpass(
                "Password for the new admin: "
            )
            await users.sign_up(SignUp(args.email, password, args.display_name))
            await admin.promote_to_admin(args.email)
            return "created"
        except DomainError as error:
            _fail(error.message)
        finally:
            await engine.dispose()

    outcome = asyncio.run(run())
    print(f"marketgraph: {args.email} is an admin ({outcome})", file=sys.stderr)


def _migrate(settings: Settings) -> None:
    asyncio.run(_prepare(settings, migrate=True, demo=False))
    print("marketgraph: database is at the latest migration", file=sys.stderr)


def _seed(settings: Settings, args: argparse.Namespace) -> None:
    from infra.db.engine import create_engine
    from infra.passwords import Argon2Hasher
    from infra.seed import DEMO_PASSWORD, SeedSize, is_empty, seed

    async def run() -> None:
        await _prepare(settings, migrate=False, demo=False)
        engine = create_engine(settings)
        try:
            if not await is_empty(engine):
                _fail("the database already has users; seed an empty database")
            size = SeedSize(users=args.users, markets=args.markets, positions=args.positions)
            await seed(engine, size, await Argon2Hasher().hash(DEMO_PASSWORD), args.random_seed)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(
        f"marketgraph: seeded {args.users} users, {args.markets} markets,"
        f" {args.positions} positions (password {DEMO_PASSWORD})",
        file=sys.stderr,
    )


def _worker(settings: Settings, args: argparse.Namespace) -> None:
    from infra.db.migrate import DatabaseBehind

    if not settings.redis_url:
        _fail("REDIS_URL: workers take their jobs from Redis (without it, serve runs them)")
    from graph.worker import run_worker

    try:
        asyncio.run(run_worker(settings, args.concurrency))
    except DatabaseBehind as error:
        _fail(f"DATABASE_URL: {error}")


def _export_schema() -> None:
    from graph.schema import schema

    sys.stdout.write(schema.as_str() + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="marketgraph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="apply database migrations")
    seed = commands.add_parser("seed", help="load demo or benchmark data into an empty database")
    seed.add_argument("--users", type=int, default=12)
    seed.add_argument("--markets", type=int, default=40)
    seed.add_argument("--positions", type=int, default=240)
    seed.add_argument("--random-seed", type=int, default=7)
    commands.add_parser("export-schema", help="print the schema in SDL")
    worker = commands.add_parser("worker", help="run background jobs (payouts, refunds, closing)")
    worker.add_argument("--concurrency", type=int, default=None, help="jobs at once")
    admin = commands.add_parser("create-admin", help="create (or promote) an admin account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--display-name", default="Administrator")
    args = parser.parse_args(argv)

    if args.command == "export-schema":
        _export_schema()
        return
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        _fail(str(error))
    if args.command == "serve":
        _serve(settings, args)
    elif args.command == "create-admin":
        _create_admin(settings, args)
    elif args.command == "migrate":
        _migrate(settings)
    elif args.command == "seed":
        _seed(settings, args)
    elif args.command == "worker":
        _worker(settings, args)


if __name__ == "__main__":
    main()
