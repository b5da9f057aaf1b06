"""The composition root: ``create_app(settings)`` builds everything the API runs on."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.services.admin import AdminService
from domain.services.markets import MarketService
from domain.services.sessions import SessionService, SignInLimits
from domain.services.users import UserService
from graph.context import Services
from graph.http import ROUTED_METHODS, GraphQLEndpoint
from graph.schema import build_schema
from graph.worker import JobSystem
from infra.db.engine import create_engine, read_engine
from infra.db.identity import IdentityReader
from infra.db.migrate import ensure_current, upgrade
from infra.db.readers import Readers
from infra.db.uow import SqlUnitOfWork
from infra.logging import configure_logging
from infra.passwords import Argon2Hasher
from infra.redis import create_redis
from infra.settings import Settings
from infra.throttle import MemoryThrottle, RedisThrottle
from infra.tokens import JwtTokens

log = structlog.get_logger("marketgraph.app")

READY_TIMEOUT = 1.0
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def utcnow() -> datetime:
    return datetime.now(UTC)


class RequestIdMiddleware:
    """Take ``X-Request-ID`` from the client when it is sane, else make one; echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(settings: Settings) -> Starlette:
    configure_logging(settings.log_level, settings.log_format)
    engine = create_engine(settings)
    redis: Redis | None = create_redis(settings.redis_url) if settings.redis_url else None
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
    throttle = RedisThrottle(redis, settings.redis_key_prefix) if redis else MemoryThrottle()
    jobs = JobSystem(settings, lambda: SqlUnitOfWork(engine), utcnow)
    services = Services(
        users=UserService(
            uow=lambda: SqlUnitOfWork(engine),
            hasher=hasher,
            clock=utcnow,
            starting_balance=settings.starting_balance,
            throttle=throttle,
            sign_ups_per_client=settings.signup_client_limit,
        ),
        sessions=SessionService(
            uow=lambda: SqlUnitOfWork(engine),
            hasher=hasher,
            tokens=tokens,
            clock=utcnow,
            throttle=throttle,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            limits=SignInLimits(
                per_account=settings.signin_account_limit,
                per_client=settings.signin_client_limit,
            ),
        ),
        markets=MarketService(uow=lambda: SqlUnitOfWork(engine), clock=utcnow),
        admin=AdminService(uow=lambda: SqlUnitOfWork(engine), clock=utcnow),
        readers=Readers(reads),
        identities=IdentityReader(reads),
        trading=jobs.trading,
        lifecycle=jobs.lifecycle,
        jobs=jobs.runner,
        positions_public=settings.positions_public,
    )
    schema = build_schema(
        introspection=settings.introspection, field_suggestions=not settings.production
    )
    graphql = GraphQLEndpoint(
        schema, services, tokens, settings.max_body_bytes, graphiql=settings.graphiql
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if settings.is_sqlite:
            await upgrade(engine)  # the embedded default keeps itself current
        else:
            await ensure_current(engine)
        await jobs.start_in_process()
        log.info("app.started", environment=settings.environment, redis=redis is not None)
        try:
            yield
        finally:
            await jobs.close()
            if redis is not None:
                # The pool was passed in, so aclose() alone would leave its connections open.
                await redis.aclose(close_connection_pool=True)
            await engine.dispose()

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> Response:
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
                    await redis.ping()
                checks["redis"] = "ok"
            except Exception as error:
                checks["redis"] = f"unavailable: {type(error).__name__}"
        ok = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/graphql", graphql.handle, methods=ROUTED_METHODS),
            Route("/health", health, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    app.state.engine = engine
    app.state.services = services
    app.state.jobs = jobs
    app.state.tokens = tokens
    return app


def create_app_from_env() -> Starlette:
    """The factory ``marketgraph serve`` hands to uvicorn (each worker builds its own)."""
    return create_app(Settings.from_env())


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn must run the app: client addresses come from X-Forwarded-For only when
    the connection is from one of ``TRUSTED_PROXIES`` (uvicorn's own default trusts
    127.0.0.1, which would let anyone on the box spoof the per-client sign-in limit)."""
    return {
        "proxy_headers": True,
        "forwarded_allow_ips": list(settings.trusted_proxies) or "",
        "server_header": False,
    }
