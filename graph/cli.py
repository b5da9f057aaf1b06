"""The ``marketgraph`` command: serve, migrate, seed, create-admin, worker,
register-operations, export-schema.

Each subcommand is a function taking the parsed arguments, registered in
``build_parser`` with ``set_defaults(run=...)``. A start-up failure is one line on
standard error (``marketgraph: VARIABLE: what is wrong``) and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import getpass
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from infra.settings import ConfigError, Settings

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def _fail(message: str) -> NoReturn:
    print(f"marketgraph: {message}", file=sys.stderr)
    raise SystemExit(2)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as error:
        _fail(str(error))


@dataclass
class Prepared:
    """What checking the database did."""

    applied: list[tuple[str, str]] = field(default_factory=list)
    demo_loaded: bool = False


async def _prepare(settings: Settings, *, migrate: bool, demo: bool) -> Prepared:
    """Check the database before any worker starts; on the embedded default, set it up."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from infra.db.engine import create_engine
    from infra.db.migrate import DatabaseBehind, ensure_current, upgrade
    from infra.passwords import Argon2Hasher
    from infra.seed import DEMO, DEMO_PASSWORD, is_empty, seed

    prepared = Prepared()
    try:
        # Making the engine creates the SQLite file's directory, which can fail too.
        engine = create_engine(settings)
    except OSError as error:
        _fail(f"DATABASE_URL: cannot create the database file ({error.strerror or error})")
    try:
        if migrate:
            prepared.applied = await upgrade(engine)
        await ensure_current(engine)
        if demo and await is_empty(engine):
            await seed(engine, DEMO, await Argon2Hasher().hash(DEMO_PASSWORD))
            prepared.demo_loaded = True
    except DatabaseBehind as error:
        _fail(f"DATABASE_URL: {error}")
    except (OSError, OperationalError, DBAPIError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        _fail(f"DATABASE_URL: database unreachable ({reason})")
    finally:
        await engine.dispose()
    return prepared


async def _redis_state(settings: Settings) -> str:
    """``none`` (not configured), ``ok`` or ``unreachable``."""
    if settings.redis_url is None:
        return "none"
    from infra.redis import create_redis

    redis = create_redis(settings.redis_url)
    try:
        async with asyncio.timeout(1.0):
            await redis.ping()
    except Exception:
        return "unreachable"
    finally:
        await redis.aclose(close_connection_pool=True)
    return "ok"


def _metrics_dir() -> Path:
    """Give the worker processes one ``PROMETHEUS_MULTIPROC_DIR``, emptied at start.

    prometheus_client picks its multiprocess mode when first imported, so this runs
    before anything imports it: the workers uvicorn spawns inherit the variable.
    """
    assert "prometheus_client" not in sys.modules, "metrics directory set up too late"
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        path = Path(given)
        try:
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.db"):  # values of an earlier run's processes
                stale.unlink()
        except OSError as error:
            _fail(f"{MULTIPROC_DIR}: cannot use {path} ({error.strerror or error})")
    else:
        path = Path(tempfile.mkdtemp(prefix="marketgraph-metrics-"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        # uvicorn re-raises SIGTERM once it has shut down; the default action would end
        # the process without running atexit.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ[MULTIPROC_DIR] = str(path)
    return path


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _serve(args: argparse.Namespace) -> None:
    settings = _settings()
    _metrics_dir()

    import structlog
    import uvicorn

    from graph.app import uvicorn_options
    from infra.logging import configure_logging, uvicorn_log_config

    configure_logging(settings.log_level, settings.log_format)
    log = structlog.get_logger("marketgraph.cli")
    # Production never loads demo data: its accounts have a published password.
    embedded_demo = settings.is_sqlite and not settings.production
    prepared = asyncio.run(_prepare(settings, migrate=settings.is_sqlite, demo=embedded_demo))
    for revision, description in prepared.applied:
        log.info("migration.applied", revision=revision, description=description)
    if prepared.demo_loaded:
        from infra.seed import DEMO_PASSWORD

        log.info("demo.loaded", sign_in=f"user0@example.com / {DEMO_PASSWORD}", admin="user0")
    workers = args.workers
    if settings.is_sqlite and workers > 1:
        log.warning("server.one_worker", reason="the embedded SQLite default runs one worker")
        workers = 1
    if workers > 1 and settings.response_cache and not settings.redis_url:
        # Each worker would keep a cache of its own that the others' writes never reach.
        log.warning("server.cache_off", reason="several workers share a response cache on Redis")
        os.environ["RESPONSE_CACHE"] = "false"
    redis = asyncio.run(_redis_state(settings))
    starting = {
        "url": _url(args.host, args.port) + "/graphql",
        "environment": settings.environment,
        "database": "sqlite" if settings.is_sqlite else "postgresql",
        "redis": redis,
        "workers": workers,
        "graphiql": settings.graphiql,
    }
    if redis == "unreachable":
        log.warning("server.starting", **starting, fallback="in-process limits, no cache")
    else:
        log.info("server.starting", **starting)
    uvicorn.run(
        "graph.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        access_log=False,
        log_config=uvicorn_log_config(settings.log_level, settings.log_format),
        **uvicorn_options(settings),
        log_level=settings.log_level.lower(),
    )


def _admin_password() -> str:
    password = os.environ.get("MARKETGRAPH_ADMIN_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        _fail(
            "create-admin: no terminal to ask for the password;"
            " pass it as MARKETGRAPH_ADMIN_PASSWORD=... in the environment"
        )
    try:
        return getpass.getpass("Password for the new admin: ")
    except (EOFError, KeyboardInterrupt):
        _fail("create-admin: no password given")


def _create_admin(args: argparse.Namespace) -> None:
    """Create the first admin, or promote an existing account, without going through the API.

    Its writes invalidate the servers' response cache on Redis like the API's own, so a
    promoted account's cached answers (its role, its permissions) go at once. Without
    Redis the cache lives inside the server process, out of this command's reach: a
    running server shows the promotion within ``CACHE_MAX_AGE_SECONDS``.
    """
    from datetime import UTC, datetime

    from domain.commands import SignUp
    from domain.errors import DomainError, NotFound
    from domain.services.admin import AdminService
    from domain.services.users import UserService
    from infra.cache import RedisResponseStore, StoreInvalidator, cache_wire, response_store
    from infra.db.engine import create_engine
    from infra.db.uow import SqlUnitOfWork
    from infra.passwords import Argon2Hasher
    from infra.redis import RedisBreaker

    settings = _settings()

    async def run() -> tuple[str, bool]:
        await _prepare(settings, migrate=settings.is_sqlite, demo=False)
        engine = create_engine(settings)
        wire = cache_wire(settings)
        store = response_store(settings, wire, RedisBreaker()) if wire is not None else None
        invalidator = StoreInvalidator(store) if store is not None else None

        def clock() -> datetime:
            return datetime.now(UTC)

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(engine, invalidator)

        users = UserService(uow, Argon2Hasher(), clock, settings.starting_balance)
        admin = AdminService(uow, clock)
        try:
            try:
                await admin.promote_to_admin(args.email)
                outcome = "promoted existing account"
            except NotFound:
                await users.sign_up(SignUp(args.email, _admin_password(), args.display_name))
                await admin.promote_to_admin(args.email)
                outcome = "created"
            # Redis did not confirm the invalidation: the servers flush their cache only
            # when a process of theirs misses one, and this one is about to exit.
            lost = isinstance(store, RedisResponseStore) and store.flush_pending
            return outcome, lost
        except DomainError as error:
            _fail(error.message)
        finally:
            if store is not None:
                await store.close()
            if wire is not None:
                await wire.close()
            await engine.dispose()

    outcome, lost = asyncio.run(run())
    if lost:
        print(
            "marketgraph: create-admin: Redis did not confirm the cache invalidation;"
            f" cached answers may show the old role for up to {settings.cache_max_age_seconds} s",
            file=sys.stderr,
        )
    print(f"marketgraph: {args.email} is an admin ({outcome})", file=sys.stderr)


def _migrate(_args: argparse.Namespace) -> None:
    from infra.db.migrate import head_revision

    prepared = asyncio.run(_prepare(_settings(), migrate=True, demo=False))
    if prepared.applied:
        applied = ", ".join(f"{revision} ({doc})" for revision, doc in prepared.applied)
        print(
            f"marketgraph: applied {applied}; the database is at {head_revision()}",
            file=sys.stderr,
        )
    else:
        print(
            f"marketgraph: the database was already at the latest migration ({head_revision()});"
            " nothing applied",
            file=sys.stderr,
        )


def _seed(args: argparse.Namespace) -> None:
    from infra.db.engine import create_engine
    from infra.passwords import Argon2Hasher
    from infra.seed import DEMO_PASSWORD, SeedSize, is_empty, seed

    settings = _settings()
    if settings.production:
        _fail(
            "seed: refused with MARKETGRAPH_ENV=production: every seeded account, the admin"
            f" user0@example.com among them, has the published password {DEMO_PASSWORD}"
        )

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


def _worker(args: argparse.Namespace) -> None:
    from infra.db.migrate import DatabaseBehind

    settings = _settings()
    if not settings.redis_url:
        _fail("REDIS_URL: workers take their jobs from Redis (without it, serve runs them)")
    from graph.worker import run_worker

    try:
        asyncio.run(run_worker(settings, args.concurrency))
    except DatabaseBehind as error:
        _fail(f"DATABASE_URL: {error}")


def _register_operations(args: argparse.Namespace) -> None:
    """Register the documents of an Apollo or Relay persisted-query manifest as trusted.

    Every document must parse, fit the query limits and validate against the
    schema this version serves; any that does not is named and nothing is
    registered. An id already registered for another document is refused too.
    """
    import dataclasses
    from datetime import UTC, datetime

    from graphql import GraphQLError

    from domain.errors import Conflict
    from graph.app import document_limits
    from graph.documents import DocumentRefused, Documents
    from graph.persisted import ManifestError, parse_manifest
    from graph.schema import build_schema
    from infra.db.engine import create_engine
    from infra.db.trusted import SqlTrustedDocuments

    settings = _settings()
    path = Path(args.file)
    try:
        raw = path.read_bytes()
    except OSError as error:
        _fail(f"register-operations: cannot read {path} ({error.strerror or error})")
    try:
        documents = parse_manifest(raw)
    except ManifestError as error:
        _fail(f"register-operations: {path}: {error}")
    schema = build_schema()._schema
    preparing = Documents(schema, document_limits(settings))
    problems: list[str] = []
    named = []
    for document in documents:
        try:
            prepared = preparing.prepare(document.body)
        except (GraphQLError, DocumentRefused) as error:
            problems.append(f"{document.id}: {getattr(error, 'message', str(error))}")
            continue
        if prepared.errors:
            problems.append(f"{document.id}: {prepared.errors[0].message}")
            continue
        first = prepared.figures.operations[0].name if prepared.figures.operations else None
        named.append(dataclasses.replace(document, name=document.name or first))
    if problems:
        _fail(
            f"register-operations: {len(problems)} of {len(documents)} documents do not fit"
            " this schema, nothing registered:\n  " + "\n  ".join(problems[:20])
        )
    unique = list({document.id: document for document in named}.values())

    async def run() -> int:
        await _prepare(settings, migrate=settings.is_sqlite, demo=False)
        engine = create_engine(settings)
        try:
            return await SqlTrustedDocuments(engine).register(unique, datetime.now(UTC))
        finally:
            await engine.dispose()

    try:
        added = asyncio.run(run())
    except Conflict as error:
        _fail(f"register-operations: {error.message} Nothing registered.")
    print(
        f"marketgraph: registered {added} new trusted documents"
        f" ({len(unique) - added} already registered) from {path}",
        file=sys.stderr,
    )


def _export_schema(args: argparse.Namespace) -> None:
    from graph.schema import schema

    sdl = schema.as_str()
    if args.possible_types:
        import json

        from graph.codegen import possible_types

        sys.stdout.write(json.dumps(possible_types(sdl), indent=2) + "\n")
    else:
        sys.stdout.write(sdl + "\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default after its help, unless there is nothing to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    try:
        return version("marketgraph")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketgraph",
        description="GraphQL API server for a prediction market. Configured by environment"
        " variables (see README.md, Configuration).",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            formatter_class=_HelpFormatter,
        )

    serve = command("serve", "run the API server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (PostgreSQL only; each has its own DB_POOL_SIZE connections)",
    )
    serve.set_defaults(run=_serve)

    command("migrate", "apply database migrations and say which").set_defaults(run=_migrate)

    seed = command("seed", "load demo or benchmark data into an empty database")
    seed.add_argument("--users", type=int, default=12, help="users to create")
    seed.add_argument("--markets", type=int, default=40, help="markets to create")
    seed.add_argument("--positions", type=int, default=240, help="positions to create")
    seed.add_argument("--random-seed", type=int, default=7, help="seed of the data generator")
    seed.set_defaults(run=_seed)

    worker = command("worker", "run background jobs (payouts, refunds, closing markets)")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="jobs at once (default: JOB_CONCURRENCY)"
    )
    worker.set_defaults(run=_worker)

    register = command(
        "register-operations",
        "register the documents of an Apollo or Relay persisted-query manifest as trusted"
        " (see TRUSTED_DOCUMENTS)",
    )
    register.add_argument("file", help="the manifest (JSON)")
    register.set_defaults(run=_register_operations)

    schema = command("export-schema", "print the schema in SDL")
    schema.add_argument(
        "--possible-types",
        action="store_true",
        help="print Apollo Client's possibleTypes (JSON) instead of the SDL",
    )
    schema.set_defaults(run=_export_schema)

    admin = command(
        "create-admin",
        "create (or promote) an admin account; the password is read from"
        " MARKETGRAPH_ADMIN_PASSWORD or asked for in a terminal",
    )
    admin.add_argument("--email", required=True, help="email address of the account")
    admin.add_argument(
        "--display-name", default="Administrator", help="display name of a new account"
    )
    admin.set_defaults(run=_create_admin)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
