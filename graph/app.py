"""The composition root: ``create_app(settings)`` builds everything the API runs on."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from domain.cursors import CursorKey
from domain.policy import POSITIONS
from domain.ports import Budgets, PersistedQueries, ResponseStore
from domain.services.admin import AdminService
from domain.services.markets import MarketService
from domain.services.sessions import SessionPolicy, SessionService, SignInLimits
from domain.services.users import UserService
from graph.budgets import BudgetGate
from graph.cache_policy import CacheHints
from graph.caching import CacheSettings, ResponseCache, fingerprint
from graph.compiled import Planner
from graph.context import Services
from graph.documents import DocumentLimits, Documents
from graph.graphiql import ASSETS_PATH, missing_assets
from graph.http import ROUTED_METHODS, GraphQLEndpoint
from graph.middleware import Edge, RequestIds, cors
from graph.persisted import PersistedDocuments, Registry, TrustMode
from graph.schema import build_schema
from graph.worker import JobSystem
from infra.budgets import MemoryBudgets, RedisBudgets
from infra.cache import RedisResponseStore, StoreInvalidator, cache_wire, response_store
from infra.db.compiled_reads import PgCompiledReads, asyncpg_dsn
from infra.db.engine import create_engine, observe_pool, read_engine
from infra.db.identity import IdentityReader
from infra.db.migrate import ensure_current, upgrade
from infra.db.outages import is_outage
from infra.db.readers import Readers
from infra.db.trusted import SqlTrustedDocuments
from infra.db.uow import SqlUnitOfWork
from infra.logging import configure_logging
from infra.metrics import (
    exposition,
    observe_cache,
    observe_database_outage,
    observe_operation,
    observe_request,
    process_started,
    process_stopped,
)
from infra.passwords import Argon2Hasher
from infra.persisted import MemoryPersistedQueries, RedisPersistedQueries
from infra.redis import RedisBreaker, create_redis, warm_up
from infra.redis import is_outage as redis_outage
from infra.redis_wire import RedisWire
from infra.settings import Settings
from infra.throttle import MemoryThrottle, RedisThrottle
from infra.tokens import JwtTokens

log = structlog.get_logger("marketgraph.app")

READY_TIMEOUT = 1.0
HTTP_PROTOCOL = (
    "graph.uvicorn_protocol:LimitedHttpToolsProtocol"
    if importlib.util.find_spec("httptools")
    else "h11"
)


# gc's threshold for its youngest generation in ``marketgraph serve``'s processes (see lifespan).
YOUNG_COLLECTION_THRESHOLD = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, freeze_startup_heap: bool = False) -> Starlette:
    """The application. ``freeze_startup_heap``: once started, move every object made so far
    out of the garbage collector's sight (``marketgraph serve``'s processes; see lifespan)."""
    configure_logging(settings.log_level, settings.log_format)
    engine = create_engine(settings)
    redis: Redis | None = (
        create_redis(settings.redis_url, settings.redis_pool_size) if settings.redis_url else None
    )
    # One breaker for every Redis user of the process: one outage, one log line.
    breaker = RedisBreaker()
    observe_pool(engine)
    tokens = JwtTokens(
        keys=dict(settings.jwt_keys),
        current_kid=settings.jwt_keys[0][0],
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        clock=utcnow,
    )
    hasher = Argon2Hasher()
    reads = read_engine(engine)
    throttle = (
        RedisThrottle(redis, settings.redis_key_prefix, breaker) if redis else MemoryThrottle()
    )
    # The request path's hot Redis commands (budgets, the response cache) each go over a
    # multiplexed connection of their own (infra/redis_wire.py); the rest uses redis-py.
    wires: list[RedisWire] = []
    budgets: Budgets | None = None
    if settings.rate_limits:
        budgets = MemoryBudgets()
        if settings.redis_url is not None:
            wires.append(budget_wire := RedisWire(settings.redis_url))
            budgets = RedisBudgets(budget_wire, settings.redis_key_prefix, breaker)
    if (store_wire := cache_wire(settings)) is not None:
        wires.append(store_wire)
    cache_store = response_store(settings, store_wire, breaker)
    # Every committed write, from a mutation or a job, invalidates what it changed.
    invalidator = StoreInvalidator(cache_store) if cache_store is not None else None

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, invalidator)

    jobs = JobSystem(settings, uow, utcnow)
    # Both read paths sign the cursors they write and accept no other (domain/cursors.py).
    cursor_key = CursorKey.derive(secret for _, secret in settings.jwt_keys)
    services = Services(
        users=UserService(
            uow=uow,
            hasher=hasher,
            clock=utcnow,
            starting_balance=settings.starting_balance,
            throttle=throttle,
            sign_ups_per_client=settings.signup_client_limit,
        ),
        sessions=SessionService(
            uow=uow,
            hasher=hasher,
            tokens=tokens,
            clock=utcnow,
            throttle=throttle,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            limits=SignInLimits(
                per_account_and_client=settings.signin_account_limit,
                per_client=settings.signin_client_limit,
                account_ceiling=settings.signin_account_ceiling,
            ),
            policy=SessionPolicy(
                lifetime=timedelta(seconds=settings.session_lifetime_seconds),
                reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
            ),
        ),
        markets=MarketService(uow=uow, clock=utcnow),
        admin=AdminService(uow=uow, clock=utcnow),
        readers=Readers(reads),
        identities=IdentityReader(
            reads, timedelta(seconds=settings.session_lifetime_seconds), utcnow
        ),
        trading=jobs.trading,
        lifecycle=jobs.lifecycle,
        jobs=jobs.runner,
        cursor_key=cursor_key,
        positions_public=settings.positions_public,
        budgets=budgets,
    )
    suggestions = not settings.production
    schema = build_schema(field_suggestions=suggestions)
    documents = Documents(
        schema._schema,
        document_limits(settings),
        introspection=settings.introspection,
        suggestions=suggestions,
    )
    # Queries that read only what the read model declares are compiled to one SQL statement
    # per root field (PostgreSQL only: the embedded SQLite default runs the resolvers).
    compiled_reads = (
        PgCompiledReads(
            asyncpg_dsn(settings.database_url),
            settings.db_read_pool_size,
            public=frozenset({POSITIONS.name}) if settings.positions_public else frozenset(),
            signing=cursor_key,
        )
        if settings.compiled_reads and not settings.is_sqlite
        else None
    )
    graphiql_assets_url = _graphiql_assets(settings)
    cache = ResponseCache(
        cache_store,
        CacheHints(
            schema._schema,
            positions_public=settings.positions_public,
            default_max_age=settings.cache_max_age_seconds,
            per_caller=budgets is not None,
        ),
        CacheSettings(
            stale_seconds=settings.cache_stale_seconds,
            wait_seconds=settings.cache_wait_seconds,
            max_entry_bytes=settings.cache_max_entry_bytes,
            fingerprint=fingerprint(schema.as_str(), settings.positions_public),
        ),
        observe=observe_cache,
    )
    apq: PersistedQueries | None = None
    if settings.apq:
        apq = (
            RedisPersistedQueries(
                redis,
                settings.redis_key_prefix,
                breaker,
                settings.apq_ttl_seconds,
                settings.cache_timeout_seconds,
            )
            if redis is not None
            else MemoryPersistedQueries()
        )
    planner = (
        Planner(schema, cursor_key, settings.plan_cache_size)
        if compiled_reads is not None
        else None
    )
    registry = Registry(
        SqlTrustedDocuments(engine), documents, pin=planner.pin if planner is not None else None
    )
    persisted = PersistedDocuments(
        registry,
        apq,
        TrustMode(settings.trusted_documents),
        admins_exempt=settings.trusted_documents_admin,
    )
    request_ids = RequestIds()
    graphql = GraphQLEndpoint(
        schema._schema,
        documents,
        services,
        tokens.decode_access,
        is_outage,
        BudgetGate(budgets, settings.budgets),
        max_body_bytes=settings.max_body_bytes,
        graphiql=settings.graphiql,
        suggestions=suggestions,
        observe=observe_operation,
        outage_started=observe_database_outage,
        graphiql_assets_url=graphiql_assets_url,
        compiled=(planner, compiled_reads) if planner is not None and compiled_reads else None,
        cache=cache,
        persisted=persisted,
        ids=request_ids,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if settings.is_sqlite:
            await upgrade(engine)  # the embedded default keeps itself current
        else:
            await ensure_current(engine)
        if compiled_reads is not None:
            await compiled_reads.open()
        if redis is not None:
            try:
                await warm_up(redis, settings.redis_pool_size)
                for wire in wires:
                    await wire.connect()
            except Exception as error:
                if not redis_outage(error):
                    raise
                breaker.failed(error)  # serve anyway: limits start in process
        trusted = await registry.load()
        await jobs.start_in_process()
        started = {
            "pid": os.getpid(),
            "environment": settings.environment,
            "database": "sqlite" if settings.is_sqlite else "postgresql",
            "reads": "compiled" if compiled_reads is not None else "resolvers",
            "cache": _cache_kind(cache_store),
            "trusted_documents": f"{settings.trusted_documents} ({trusted} registered)",
        }
        if redis is None:
            log.info("app.started", **started, redis="none")
        elif breaker.available:
            log.info("app.started", **started, redis="ok")
        else:
            # The breaker logged the outage and retries Redis by itself.
            log.warning("app.started", **started, redis="unreachable", fallback="in-process")
        process_started()
        if freeze_startup_heap:
            # The schema, documents, plans and pools built at start (about 140,000 objects)
            # live as long as the process, yet every full collection walked them all again:
            # under a burst of cache hits that was a tenth of the CPU and most of the p99.
            # Frozen, a collection walks only what requests made. Not for tests: their
            # processes start and stop many apps, and frozen objects are never freed.
            gc.collect()
            gc.freeze()
            # And the young generation collected after 10,000 net allocations, not 700: 32
            # requests in flight hold about a thousand objects, so at 700 a collection ran
            # every 25 cache hits and walked them all, 2 µs a hit to find next to nothing
            # (2,140 objects in 1,250 collections: reference counting frees the rest).
            gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            process_stopped()
            steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [("jobs", jobs.close)]
            if cache_store is not None:
                steps.append(("response_cache", cache_store.close))
            steps += [("redis_wire", wire.close) for wire in wires]
            if redis is not None:
                # The pool was passed in, so aclose() alone would leave its connections open.
                steps.append(("redis", lambda: redis.aclose(close_connection_pool=True)))
            if compiled_reads is not None:
                steps.append(("compiled_reads", compiled_reads.close))
            steps.append(("database", engine.dispose))
            await shut_down(steps)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> Response:
        """503 only when this process cannot serve: its database does not answer. Without
        Redis it serves all the same (limits in process, no shared cache): ready, degraded,
        so that a load balancer keeps a working server and an operator sees why."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                async with engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as error:
            checks["database"] = f"unavailable: {type(error).__name__}"
        if redis is not None:
            try:
                async with asyncio.timeout(READY_TIMEOUT):
                    checks["redis"] = await breaker.check(redis)
            except Exception as error:
                checks["redis"] = f"unavailable: {type(error).__name__}"
        if checks["database"] != "ok":
            return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
        degraded = any(value != "ok" for value in checks.values())
        return JSONResponse({"status": "degraded" if degraded else "ready", "checks": checks})

    async def metrics(_request: Request) -> Response:
        body, media_type = exposition()
        return Response(body, media_type=media_type)

    routes: list[BaseRoute] = [
        # Reached through Edge's short way in; the route documents it and serves tests that
        # mount the app without Edge.
        Route("/graphql", graphql, methods=ROUTED_METHODS),
        Route("/health", health, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if graphiql_assets_url is not None:
        assert settings.graphiql_assets_dir is not None
        routes.append(
            Mount(graphiql_assets_url, StaticFiles(directory=settings.graphiql_assets_dir))
        )

    def edge(inner: ASGIApp) -> ASGIApp:
        origins, localhost = settings.cors_origins, settings.cors_localhost
        return Edge(
            inner,
            graphql=cors(graphql, origins, localhost),
            routes=["/graphql", "/health", "/health/ready", "/metrics", f"{ASSETS_PATH}/"],
            observe=observe_request,
            ids=request_ids,
            graphql_at_edge=cors(graphql.at_edge, origins, localhost),
        )

    app = Api(edge, routes=routes, lifespan=lifespan)
    app.add_middleware(cors, origins=settings.cors_origins, localhost=settings.cors_localhost)
    app.state.engine = engine
    app.state.compiled_reads = compiled_reads
    app.state.planner = planner  # None when reads are not compiled
    app.state.services = services
    app.state.jobs = jobs
    app.state.tokens = tokens
    app.state.redis_breaker = breaker
    app.state.budgets = budgets  # None when RATE_LIMITS=off
    app.state.response_store = cache_store  # None when RESPONSE_CACHE=off
    app.state.documents = documents
    app.state.trusted_documents = registry
    app.state.graphiql_assets_url = graphiql_assets_url
    return app


async def shut_down(steps: list[tuple[str, Callable[[], Awaitable[object]]]]) -> None:
    """Run every step, whatever the ones before it raised: with Redis gone at shutdown,
    closing the job queue raised and the database pools were left open."""
    for name, step in steps:
        try:
            await step()
        except Exception as error:
            log.warning("app.shutdown_step_failed", step=name, error=type(error).__name__)


class Api(Starlette):
    """Starlette with ``edge`` (``graph.middleware.Edge``) around everything, Starlette's own
    error middleware included: every response, CORS preflights and unhandled-error 500s
    too, is counted and carries its request id, and ``/graphql`` goes from ``Edge`` straight
    to the endpoint (which answers its own errors) without Starlette's outer layers, a few
    µs of every cache hit."""

    def __init__(self, edge: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self._edge = edge
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._edge(super().build_middleware_stack())


def _cache_kind(store: ResponseStore | None) -> str:
    if store is None:
        return "off"
    return "redis" if isinstance(store, RedisResponseStore) else "in-process"


def document_limits(settings: Settings) -> DocumentLimits:
    return DocumentLimits(
        max_tokens=settings.query_max_tokens,
        max_depth=settings.query_max_depth,
        max_introspection_depth=settings.query_max_introspection_depth,
        max_aliases=settings.query_max_aliases,
        max_directives=settings.query_max_directives,
        max_selections=settings.query_max_selections,
        max_operations=settings.query_max_operations,
        max_cost=settings.query_max_cost,
        max_operation_name=settings.operation_name_max_chars,
    )


def _graphiql_assets(settings: Settings) -> str | None:
    """Where GraphiQL's assets are served from, or None for the CDN."""
    if not settings.graphiql or settings.graphiql_assets_dir is None:
        return None
    missing = missing_assets(settings.graphiql_assets_dir)
    if missing:
        log.warning(
            "graphiql.assets_missing",
            directory=str(settings.graphiql_assets_dir),
            missing=missing,
            using="CDN",
        )
        return None
    return ASSETS_PATH


def create_app_from_env() -> Starlette:
    """The factory ``marketgraph serve`` hands to uvicorn (each worker builds its own)."""
    return create_app(Settings.from_env(), freeze_startup_heap=True)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn must run the app: client addresses come from X-Forwarded-For only when
    the connection is from one of ``TRUSTED_PROXIES`` (uvicorn's own default trusts
    127.0.0.1, which would let anyone on the box spoof the per-client sign-in limit)."""
    return {
        "proxy_headers": True,
        "forwarded_allow_ips": list(settings.trusted_proxies) or "",
        "server_header": False,
        # The request line and headers together: h11 enforces it itself, our httptools
        # protocol (uvicorn's own has no limit) reads the same setting.
        "http": HTTP_PROTOCOL,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
